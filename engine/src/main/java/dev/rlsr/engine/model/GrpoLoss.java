package dev.rlsr.engine.model;

import dev.rlsr.kernels.GrpoLevel;
import dev.rlsr.kernels.GrpoLossReference;

/**
 * The GRPO objective on per-token log-probabilities (B, L), L = completion positions (T-1 after the causal shift):
 * <pre>
 *   r        = exp(logp - oldLogp)
 *   perToken = -min(r*A, clip(r, 1-clipLow, 1+clipHigh)*A) + beta*(exp(ref-logp) - (ref-logp) - 1)
 * </pre>
 * with A the advantage of the row, aggregated over the mask by {@link Level}: TOKEN {@code sum(pt*m)/sum(m)},
 * SEQUENCE {@code mean_b(sum_t(pt*m)/sum_t(m))}, DR_GRPO {@code sum(pt*m)/(B*maxCompletionLength)} (Dr. GRPO's
 * constant normaliser). Mask sums are clamped to >= 1 as TRL does, so an empty row contributes 0, not NaN.
 * Computed in double by {@link GrpoLossReference} (the same math runs on a GPU as
 * {@code dev.rlsr.kernels.GrpoLossKernel}); the gradient w.r.t. logp follows torch's autograd rules
 * ({@code torch.min} splits the gradient evenly on ties; {@code clamp} passes it inside the closed interval).
 *
 * @param clipLow             epsilon below 1 (0.2 in GRPO)
 * @param clipHigh            epsilon above 1 (0.2; DAPO's clip-higher uses 0.28)
 * @param beta                KL coefficient (0 disables the KL term and the reference log-probs)
 * @param level               aggregation
 * @param maxCompletionLength DR_GRPO only: the constant per-row normaliser (0 = use L)
 */
public record GrpoLoss(double clipLow, double clipHigh, double beta, Level level, int maxCompletionLength) {

    /** How per-token losses are aggregated over the mask. */
    public enum Level {
        /** {@code sum(pt*m)/sum(m)}: every completion token weighs the same (DAPO). */
        TOKEN,
        /** {@code mean_b(sum_t(pt*m)/sum_t(m))}: every completion weighs the same (GRPO). */
        SEQUENCE,
        /** {@code sum(pt*m)/(B*maxCompletionLength)}: a constant normaliser (Dr. GRPO). */
        DR_GRPO
    }

    /** Checks the clip epsilons, beta, the level and the length, naming the bad one. */
    public GrpoLoss {
        if (!(clipLow >= 0 && clipLow < 1) || !(clipHigh >= 0)) {
            throw new IllegalArgumentException("clip epsilons must satisfy 0 <= clipLow < 1 and clipHigh >= 0, got "
                    + clipLow + ", " + clipHigh);
        }
        if (!(beta >= 0)) {
            throw new IllegalArgumentException("KL beta must be >= 0, got " + beta);
        }
        if (level == null) {
            throw new IllegalArgumentException("aggregation level is required (TOKEN, SEQUENCE or DR_GRPO)");
        }
        if (maxCompletionLength < 0) {
            throw new IllegalArgumentException("maxCompletionLength must be >= 0, got " + maxCompletionLength);
        }
    }

    /**
     * This loss as the constants of a backend evaluation over rows of {@code len} per-token positions.
     *
     * @param len the completion length L of the rows (DR_GRPO's normaliser when {@code maxCompletionLength} is 0)
     * @return the spec
     */
    public dev.rlsr.engine.tensor.GrpoSpec spec(int len) {
        return new dev.rlsr.engine.tensor.GrpoSpec(clipLow, clipHigh, beta,
                dev.rlsr.engine.tensor.GrpoSpec.Aggregation.valueOf(level.name()),
                maxCompletionLength == 0 ? len : maxCompletionLength);
    }

    /**
     * GRPO with a symmetric clip and the given KL coefficient and level.
     *
     * @param clipEps epsilon below and above 1
     * @param beta    KL coefficient
     * @param level   aggregation
     * @return the loss
     */
    public static GrpoLoss of(double clipEps, double beta, Level level) {
        return new GrpoLoss(clipEps, clipEps, beta, level, 0);
    }

    /**
     * Loss, its gradient w.r.t. each logp, and diagnostics.
     *
     * @param loss       the aggregated loss
     * @param dLogp      (B, L) d loss / d logp (0 where masked)
     * @param meanRatio  mean of r over masked tokens
     * @param clipFraction fraction of masked tokens where the clipped branch was taken
     * @param meanKl     mean k3 KL over masked tokens (0 when beta = 0)
     */
    public record Result(double loss, float[] dLogp, double meanRatio, double clipFraction, double meanKl) {}

    /**
     * The loss and its gradient for one batch.
     *
     * @param logp       (B, L) current policy log-probs of the sampled tokens
     * @param oldLogp    (B, L) log-probs of the sampling policy (equal to logp when fully on-policy)
     * @param refLogp    (B, L) reference-model log-probs, or null when beta = 0
     * @param advantages (B)
     * @param mask       (B, L) 1 on completion tokens, 0 elsewhere
     * @param batch      B
     * @param len        L
     * @return the loss, d loss / d logp and diagnostics
     * @throws IllegalArgumentException for arrays of the wrong length, or beta &gt; 0 without reference log-probs
     */
    public Result compute(float[] logp, float[] oldLogp, float[] refLogp, float[] advantages, float[] mask,
                          int batch, int len) {
        GrpoLossReference.Result r = GrpoLossReference.compute(clipLow, clipHigh, beta, GrpoLevel.valueOf(level.name()),
                maxCompletionLength, logp, oldLogp, refLogp, advantages, mask, batch, len);
        return new Result(r.loss(), r.dLogp(), r.meanRatio(), r.clipFraction(), r.meanKl());
    }
}
