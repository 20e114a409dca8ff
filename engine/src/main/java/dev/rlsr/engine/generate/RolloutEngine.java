package dev.rlsr.engine.generate;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.model.KvCache;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.engine.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Batched sampling with the KV cache: P prompts are left-padded and prefilled once (P rows), the cache rows are then
 * replicated G times ({@link KvCache#replicateFrom}) and all P*G rows decode together, one token per row per step,
 * until every row has stopped or maxNewTokens is reached. Finished rows are fed the pad id (their outputs are
 * ignored) so the batch shape never changes and the model's buffers are reused.
 *
 * <p>Reproducible: row r's token at step t is drawn with the Philox4x32-10 numbers of (seed, r, t) by
 * {@link Sampler} ({@link dev.rlsr.kernels.SamplingReference}, the CPU twin of the device's sampling kernel), so the
 * tokens are a function of (seed, model, prompts, G, config) only, a row's tokens do not depend on when the other rows
 * stop, and the device draws the same tokens from the same logits. Device-independent: only {@link DecoderModel} and
 * {@link dev.rlsr.engine.tensor.Backend} calls; one (R, V) logits download per step is the only host-device
 * synchronisation point of the loop.
 */
public final class RolloutEngine {
    private final DecoderModel model;
    private final int[] stopIds;
    private final int padId;
    private final Function<int[], String> decoder;

    /**
     * An engine over a model with explicit stop and pad ids.
     *
     * @param model        the policy
     * @param stopTokenIds ids that end a completion (EOS / {@code <|im_end|>}); may be empty
     * @param padTokenId   id written after a completion ends and into prompt padding
     * @param decoder      ids to text (for stop strings and {@link Rollouts#texts()}), or null
     */
    public RolloutEngine(DecoderModel model, int[] stopTokenIds, int padTokenId, Function<int[], String> decoder) {
        this.model = model;
        this.stopIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
        if (padTokenId < 0 || padTokenId >= model.config().vocabSize()) {
            throw new IllegalArgumentException("pad token id " + padTokenId + " is outside the model's vocabulary [0, "
                    + model.config().vocabSize() + ")");
        }
        this.padId = padTokenId;
        this.decoder = decoder;
    }

    /**
     * An engine with the stop ids, pad id (pad, else eos, else 0) and decoder of a tokenizer.
     *
     * @param model     the policy
     * @param tokenizer the model's tokenizer
     * @return the engine
     */
    public static RolloutEngine of(DecoderModel model, Tokenizer tokenizer) {
        var sp = tokenizer.specialTokens();
        int pad = sp.hasPad() ? sp.padId() : sp.hasEos() ? sp.eosId() : 0;
        return new RolloutEngine(model, sp.stopIds(), pad, ids -> tokenizer.decode(ids, false));
    }

    /** {@return the id written into prompt padding and after a completion ended} */
    public int padId() {
        return padId;
    }

    /**
     * Samples {@code groupSize} completions for each prompt.
     *
     * @param prompts   prompt ids (unpadded, each non-empty)
     * @param groupSize G, completions per prompt
     * @param cfg       sampling settings (its seed fixes the tokens)
     * @return the P*G completions
     */
    public Rollouts generate(List<int[]> prompts, int groupSize, SamplingConfig cfg) {
        int P = prompts.size();
        if (P == 0) {
            throw new IllegalArgumentException("no prompts to sample from");
        }
        if (groupSize < 1) {
            throw new IllegalArgumentException("group size must be >= 1, got " + groupSize);
        }
        if (!cfg.stopStrings().isEmpty() && decoder == null) {
            throw new IllegalArgumentException("stop strings need a decoder (build the engine with a tokenizer)");
        }
        int G = groupSize, R = P * G, Lmax = cfg.maxNewTokens(), V = model.config().vocabSize();
        int Tp = 0;
        for (int[] p : prompts) {
            if (p.length == 0) {
                throw new IllegalArgumentException("every prompt needs at least one token");
            }
            Tp = Math.max(Tp, p.length);
        }
        int[] promptIds = new int[P * Tp], promptMask = new int[P * Tp];
        Arrays.fill(promptIds, padId);
        for (int p = 0; p < P; p++) {
            int[] ids = prompts.get(p);
            int off = p * Tp + Tp - ids.length;
            System.arraycopy(ids, 0, promptIds, off, ids.length);
            Arrays.fill(promptMask, off, off + ids.length, 1);
        }
        int[] out = new int[R * Lmax];
        Arrays.fill(out, padId);
        int[] lengths = new int[R];
        Rollouts.FinishReason[] finish = new Rollouts.FinishReason[R];
        int[] nextPos = new int[R];
        for (int r = 0; r < R; r++) {
            nextPos[r] = prompts.get(r / G).length;
        }
        Sampler sampler = new Sampler(cfg, V);
        StopStrings stops = new StopStrings(cfg.stopStrings());
        double entropySum = 0;
        long sampled = 0;
        long t0 = System.nanoTime(), tPrefill;
        try (KvCache cache = model.newKvCache(R, Tp + Lmax)) {
            float[] logits;
            if (G == 1) {
                logits = model.backend().download(model.prefill(cache, promptIds, promptMask, null));
            } else {
                try (KvCache shared = model.newKvCache(P, Tp)) {
                    logits = model.backend().download(model.prefill(shared, promptIds, promptMask, null));
                    cache.replicateFrom(shared, G);
                }
            }
            tPrefill = System.nanoTime();
            int[] tok = new int[R], pos = new int[R];
            boolean[] done = new boolean[R];
            int active = R;
            for (int step = 0; step < Lmax && active > 0; step++) {
                if (step > 0) {
                    for (int r = 0; r < R; r++) {
                        pos[r] = nextPos[r]++;
                    }
                    // host-device sync: the next tokens depend on these logits
                    logits = model.backend().download(model.decode(cache, tok, pos));
                }
                for (int r = 0; r < R; r++) {
                    if (done[r]) {
                        tok[r] = padId;
                        continue;
                    }
                    // the first step's logits are per prompt (P rows), later ones per sample (R rows)
                    int row = step == 0 ? r / G : r;
                    int id = sampler.sample(logits, row * V, r, step);
                    entropySum += sampler.lastEntropy();
                    sampled++;
                    tok[r] = id;
                    out[r * Lmax + step] = id;
                    lengths[r] = step + 1;
                    Rollouts.FinishReason f = null;
                    if (isStop(id)) {
                        f = Rollouts.FinishReason.STOP_TOKEN;
                    } else if (stops.any() && stops.foundAtEnd(decoder, out, r * Lmax, step + 1)) {
                        f = Rollouts.FinishReason.STOP_STRING;
                    } else if (step + 1 == Lmax) {
                        f = Rollouts.FinishReason.LENGTH;
                    }
                    if (f != null) {
                        finish[r] = f;
                        done[r] = true;
                        active--;
                    }
                }
            }
        }
        long t1 = System.nanoTime();
        List<String> texts = null;
        if (decoder != null) {
            String[] decoded = new String[R];
            for (int r = 0; r < R; r++) {
                int n = lengths[r] - (finish[r] == Rollouts.FinishReason.STOP_TOKEN ? 1 : 0);
                String text = decoder.apply(Arrays.copyOfRange(out, r * Lmax, r * Lmax + n));
                decoded[r] = stops.cut(text);
            }
            texts = List.of(decoded);
        }
        return new Rollouts(P, G, Tp, promptIds, promptMask, Lmax, out, lengths, finish, texts, entropySum, sampled,
                tPrefill - t0, t1 - tPrefill);
    }

    private boolean isStop(int id) {
        for (int s : stopIds) {
            if (s == id) {
                return true;
            }
        }
        return false;
    }

    /** Stop-string matching on the tail of a completion, so each check decodes O(longest stop string) tokens. */
    private static final class StopStrings {
        private final List<String> strings;
        private final int window;

        StopStrings(List<String> strings) {
            this.strings = strings;
            int longest = 0;
            for (String s : strings) {
                longest = Math.max(longest, s.length());
            }
            // a token decodes to >= 1 byte and a char to <= 4 bytes (2 UTF-16 units), so a stop string ending in the
            // newest token lies within its last 4*len + 1 tokens; one more for a char split across tokens
            this.window = 4 * longest + 2;
        }

        boolean any() {
            return !strings.isEmpty();
        }

        boolean foundAtEnd(Function<int[], String> decoder, int[] ids, int offset, int length) {
            int from = Math.max(0, length - window);
            String tail = decoder.apply(Arrays.copyOfRange(ids, offset + from, offset + length));
            for (String s : strings) {
                if (tail.contains(s)) {
                    return true;
                }
            }
            return false;
        }

        /** The text before the first stop string, if any. */
        String cut(String text) {
            int cut = text.length();
            for (String s : strings) {
                int i = text.indexOf(s);
                if (i >= 0) {
                    cut = Math.min(cut, i);
                }
            }
            return text.substring(0, cut);
        }
    }
}
