package dev.rlsr.engine.tokenizer;

import java.util.Arrays;

/**
 * The special tokens a trainer and a sampler need, with their ids ({@link #NONE} where the model has none).
 *
 * @param bosToken  text of the beginning-of-sequence token, or null (Qwen has none)
 * @param bosId     its id, or {@link #NONE}
 * @param eosToken  text of the end-of-sequence token from tokenizer_config.json ({@code <|im_end|>} for Qwen chat
 *                  models): appended after a response in SFT, or null where the model defines none
 * @param eosId     its id, or {@link #NONE}
 * @param padToken  text of the padding token; falls back to the eos token where the model defines none, as the HF
 *                  trainers do (padding is masked out, so which id it is does not change any loss)
 * @param padId     its id, or {@link #NONE} when there is neither pad nor eos
 * @param stopIds   every id that ends generation: the eos id and every {@code eos_token_id} of
 *                  generation_config.json, without duplicates, in that order
 */
public record SpecialTokens(String bosToken, int bosId, String eosToken, int eosId, String padToken, int padId,
                            int[] stopIds) {
    public static final int NONE = -1;

    /** Checks that each token comes with its id and every id is valid; copies the stop ids. */
    public SpecialTokens {
        checkPair("bos", bosToken, bosId);
        checkPair("eos", eosToken, eosId);
        checkPair("pad", padToken, padId);
        stopIds = stopIds == null ? new int[0] : stopIds.clone();
        for (int id : stopIds) {
            if (id < 0) {
                throw new IllegalArgumentException("stop token ids must be >= 0, got " + Arrays.toString(stopIds));
            }
        }
    }

    private static void checkPair(String what, String token, int id) {
        if ((token == null) != (id == NONE)) {
            throw new IllegalArgumentException(what + " token '" + token + "' and id " + id + " must be given together");
        }
        if (id < NONE) {
            throw new IllegalArgumentException(what + " token id must be >= 0 (or NONE), got " + id);
        }
    }

    /** {@return whether the model has a bos token} */
    public boolean hasBos() {
        return bosId != NONE;
    }

    /** {@return whether the model has an eos token} */
    public boolean hasEos() {
        return eosId != NONE;
    }

    /** {@return whether a pad token (or the eos token standing in for it) exists} */
    public boolean hasPad() {
        return padId != NONE;
    }

    /** {@return a copy of the stop ids}: records hand out their components, and a caller must not change the stop set of a tokenizer. */
    @Override
    public int[] stopIds() {
        return stopIds.clone();
    }

    /**
     * Whether generation ends at {@code id}.
     *
     * @param id a token id
     * @return true for one of the stop ids
     */
    public boolean isStop(int id) {
        for (int s : stopIds) {
            if (s == id) {
                return true;
            }
        }
        return false;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SpecialTokens s && java.util.Objects.equals(bosToken, s.bosToken) && bosId == s.bosId
                && java.util.Objects.equals(eosToken, s.eosToken) && eosId == s.eosId
                && java.util.Objects.equals(padToken, s.padToken) && padId == s.padId
                && Arrays.equals(stopIds, s.stopIds);
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(bosToken, bosId, eosToken, eosId, padToken, padId, Arrays.hashCode(stopIds));
    }

    @Override
    public String toString() {
        return "SpecialTokens[bos=" + bosToken + "(" + bosId + "), eos=" + eosToken + "(" + eosId + "), pad=" + padToken
                + "(" + padId + "), stop=" + Arrays.toString(stopIds) + "]";
    }
}
