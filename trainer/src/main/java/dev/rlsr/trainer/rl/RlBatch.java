package dev.rlsr.trainer.rl;

import dev.rlsr.engine.generate.Rollouts;
import dev.rlsr.engine.model.Generator;

import java.util.Arrays;

/**
 * Rollouts laid out for the policy forward: R = P*G rows of T = Tp + Lc tokens, Lc the longest completion rounded
 * up to a multiple of 8 (so that step-to-step shapes repeat and the model's buffers are reused), capped at
 * maxNewTokens. Row r = left-padded prompt of r/G, then its completion, then padding.
 *
 * @param ids            (R, T)
 * @param mask           (R, T) 1 = token
 * @param positions      (R, T) {@code clamp(cumsum(mask) - 1, 0)}: the positions the tokens had while sampling
 * @param completionMask (R, T-1) 1 where position t predicts a completion token (t+1 in [Tp, Tp + len))
 * @param oldLogp        (R, T) per position: the sampling policy's log-prob of the next token, from the rollout
 *                       pass (0 where no completion token is predicted)
 */
record RlBatch(int rows, int len, int[] ids, int[] mask, int[] positions, float[] completionMask,
               float[] oldLogp, long completionTokens) {

    static RlBatch of(Rollouts ro, int padId) {
        int R = ro.rows(), G = ro.groupSize(), Tp = ro.promptLen();
        int lc = Math.max(1, Math.min(ro.maxNewTokens(), (ro.maxLength() + 7) / 8 * 8));
        int T = Tp + lc;
        int[] ids = new int[R * T], mask = new int[R * T];
        float[] cm = new float[R * (T - 1)];
        float[] old = new float[R * T];
        Arrays.fill(ids, padId);
        long tokens = 0;
        for (int r = 0; r < R; r++) {
            int p = r / G, len = ro.completionLengths()[r];
            System.arraycopy(ro.promptIds(), p * Tp, ids, r * T, Tp);
            System.arraycopy(ro.promptMask(), p * Tp, mask, r * T, Tp);
            System.arraycopy(ro.completionIds(), r * ro.maxNewTokens(), ids, r * T + Tp, len);
            Arrays.fill(mask, r * T + Tp, r * T + Tp + len, 1);
            for (int t = Tp - 1; t < Tp - 1 + len; t++) {
                cm[r * (T - 1) + t] = 1f;
            }
            // position Tp-1+t predicts completion token t, sampled with log-prob completionLogprobs[r, t]
            System.arraycopy(ro.completionLogprobs(), r * ro.maxNewTokens(), old, r * T + Tp - 1, len);
            tokens += len;
        }
        return new RlBatch(R, T, ids, mask, Generator.positionsFromMask(R, T, mask), cm, old, tokens);
    }

    /** Rows [from, to) as their own batch. */
    record Chunk(int rows, int[] ids, int[] mask, int[] positions, float[] completionMask, float[] oldLogp,
                 long completionTokens) {}

    Chunk chunk(int from, int to) {
        int T = len, n = to - from;
        if (from == 0 && to == rows) {
            return new Chunk(rows, ids, mask, positions, completionMask, oldLogp, completionTokens);
        }
        float[] cm = Arrays.copyOfRange(completionMask, from * (T - 1), to * (T - 1));
        long tokens = 0;
        for (float v : cm) {
            tokens += (long) v;
        }
        return new Chunk(n, Arrays.copyOfRange(ids, from * T, to * T), Arrays.copyOfRange(mask, from * T, to * T),
                Arrays.copyOfRange(positions, from * T, to * T), cm, Arrays.copyOfRange(oldLogp, from * T, to * T),
                tokens);
    }
}
