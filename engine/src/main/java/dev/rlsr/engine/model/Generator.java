package dev.rlsr.engine.model;

import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.util.Collection;
import java.util.Set;

/** Batched decoding with a {@link KvCache}: prefill the (left-padded) prompts once, then one token per row per step. */
public final class Generator {
    private Generator() {}

    /**
     * HF-style position ids for a left-padded batch: {@code clamp(cumsum(mask) - 1, 0)} per row; null mask gives
     * 0..T-1.
     */
    public static int[] positionsFromMask(int batch, int len, int[] mask) {
        int[] p = new int[batch * len];
        for (int b = 0; b < batch; b++) {
            int c = 0;
            for (int t = 0; t < len; t++) {
                c += mask == null ? 1 : mask[b * len + t];
                p[b * len + t] = Math.max(0, c - 1);
            }
        }
        return p;
    }

    /**
     * Greedy decoding (argmax, as HF {@code generate(do_sample=False)}) of up to {@code maxNewTokens} tokens.
     * Returns (B, Tp + maxNewTokens): the prompts followed by the generated tokens; a row that emitted a stop
     * token continues with {@code padTokenId}. Stops early only when every row has finished (the tail is padding).
     *
     * @param promptIds  (B, Tp), left-padded
     * @param promptMask (B, Tp) 1 = token, 0 = padding, or null
     */
    public static int[] greedy(DecoderModel model, int batch, int[] promptIds, int[] promptMask, int maxNewTokens,
                               Collection<Integer> stopTokenIds, int padTokenId) {
        if (batch < 1 || promptIds.length % batch != 0 || promptIds.length == 0) {
            throw new IllegalArgumentException("prompt ids (" + promptIds.length + ") are not a (B,T) batch, B = "
                    + batch);
        }
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
        }
        Set<Integer> stop = stopTokenIds == null ? Set.of() : Set.copyOf(stopTokenIds);
        int tp = promptIds.length / batch, total = tp + maxNewTokens;
        int[] out = new int[batch * total];
        java.util.Arrays.fill(out, padTokenId);
        for (int b = 0; b < batch; b++) {
            System.arraycopy(promptIds, b * tp, out, b * total, tp);
        }
        if (maxNewTokens == 0) {
            return out;
        }
        int[] nextPos = new int[batch];
        for (int b = 0; b < batch; b++) {
            int c = 0;
            for (int t = 0; t < tp; t++) {
                c += promptMask == null ? 1 : promptMask[b * tp + t];
            }
            nextPos[b] = c;
        }
        boolean[] done = new boolean[batch];
        try (KvCache cache = model.newKvCache(batch, total);
             Tensor argmax = model.backend().zeros(DType.I32, batch)) {
            Tensor logits = model.prefill(cache, promptIds, promptMask, null);
            int[] tok = new int[batch];
            for (int step = 0; step < maxNewTokens; step++) {
                // host-device sync: the B new token ids (stop tokens are decided on the host)
                model.backend().argmaxRows(logits, argmax);
                int[] best = model.backend().downloadInts(argmax);
                boolean all = true;
                for (int b = 0; b < batch; b++) {
                    tok[b] = done[b] ? padTokenId : best[b];
                    out[b * total + tp + step] = tok[b];
                    if (!done[b] && stop.contains(tok[b])) {
                        done[b] = true;
                    }
                    all &= done[b];
                }
                if (all || step == maxNewTokens - 1) {
                    break;
                }
                int[] pos = new int[batch];
                for (int b = 0; b < batch; b++) {
                    pos[b] = nextPos[b]++;
                }
                logits = model.decode(cache, tok, pos);
            }
        }
        return out;
    }
}
