package dev.rlsr.kernels;

/**
 * The GRPO objective on per-token log-probabilities (B, L), in double precision: the CPU implementation behind
 * {@code dev.rlsr.engine.model.GrpoLoss} and the reference of {@link GrpoLossKernel}.
 * <pre>
 *   r        = exp(logp - oldLogp)
 *   perToken = -min(r*A, clip(r, 1-clipLow, 1+clipHigh)*A) + beta*(exp(ref-logp) - (ref-logp) - 1)
 * </pre>
 * with A the advantage of the row, aggregated over the mask by {@link GrpoLevel}. The gradient w.r.t. logp follows
 * torch's autograd rules ({@code torch.min} splits the gradient evenly on ties; {@code clamp} passes it inside the
 * closed interval).
 */
public final class GrpoLossReference {
    private GrpoLossReference() {
    }

    /**
     * Loss, its gradient w.r.t. each logp, and diagnostics.
     *
     * @param loss         the aggregated loss
     * @param dLogp        (B, L) d loss / d logp (0 where masked)
     * @param meanRatio    mean of r over masked tokens
     * @param clipFraction fraction of masked tokens where the clipped branch was taken
     * @param meanKl       mean k3 KL over masked tokens (0 when beta = 0)
     */
    public record Result(double loss, float[] dLogp, double meanRatio, double clipFraction, double meanKl) {
    }

    /**
     * The loss of one batch.
     *
     * @param clipLow             epsilon below 1, in [0, 1)
     * @param clipHigh            epsilon above 1, &gt;= 0
     * @param beta                KL coefficient, &gt;= 0 (0 disables the KL term and the reference log-probs)
     * @param level               aggregation
     * @param maxCompletionLength DR_GRPO only: the constant per-row normaliser (0 = use L)
     * @param logp                (B, L) current policy log-probs of the sampled tokens
     * @param oldLogp             (B, L) log-probs of the sampling policy, or null when fully on-policy (= logp)
     * @param refLogp             (B, L) reference-model log-probs, or null when beta = 0
     * @param advantages          (B)
     * @param mask                (B, L) weight of each token: 1 on completion tokens, 0 elsewhere
     * @param batch               B
     * @param len                 L
     * @return loss, gradient and diagnostics
     */
    public static Result compute(double clipLow, double clipHigh, double beta, GrpoLevel level,
            int maxCompletionLength, float[] logp, float[] oldLogp, float[] refLogp, float[] advantages, float[] mask,
            int batch, int len) {
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
        int n = batch * len;
        if (logp.length != n || (oldLogp != null && oldLogp.length != n) || mask.length != n || advantages.length != batch
                || (refLogp != null && refLogp.length != n)) {
            throw new IllegalArgumentException("GRPO inputs must be (B, L) = (" + batch + ", " + len + ") and "
                    + "advantages (B); got logp " + logp.length + ", oldLogp "
                    + (oldLogp == null ? "null" : oldLogp.length) + ", refLogp "
                    + (refLogp == null ? "null" : refLogp.length) + ", mask " + mask.length + ", advantages "
                    + advantages.length);
        }
        if (beta > 0 && refLogp == null) {
            throw new IllegalArgumentException("beta = " + beta + " needs reference log-probs");
        }
        double lo = 1 - clipLow, hi = 1 + clipHigh;
        double[] rowWeight = new double[batch];
        double totalMask = 0;
        for (int b = 0; b < batch; b++) {
            double s = 0;
            for (int t = 0; t < len; t++) {
                s += mask[b * len + t];
            }
            rowWeight[b] = s;
            totalMask += s;
        }
        // per-token weight w so that loss = sum(w * perToken * mask)
        double tokenNorm = Math.max(1.0, totalMask);
        double drNorm = (double) batch * (maxCompletionLength > 0 ? maxCompletionLength : len);
        float[] dLogp = new float[n];
        double loss = 0, ratioSum = 0, clipped = 0, klSum = 0;
        for (int b = 0; b < batch; b++) {
            double w = switch (level) {
                case TOKEN -> 1.0 / tokenNorm;
                case SEQUENCE -> 1.0 / (batch * Math.max(1.0, rowWeight[b]));
                case DR_GRPO -> 1.0 / drNorm;
            };
            double a = advantages[b];
            for (int t = 0; t < len; t++) {
                int i = b * len + t;
                double m = mask[i];
                if (m == 0) {
                    continue;
                }
                double lp = logp[i];
                double r = Math.exp(lp - (oldLogp == null ? logp[i] : oldLogp[i]));
                double rc = Math.min(Math.max(r, lo), hi);
                double u = r * a, c = rc * a;
                double pg = -Math.min(u, c);
                // d(min)/dr: torch.min sends the gradient to the smaller input, half to each on a tie
                double dClipped = (r >= lo && r <= hi) ? a : 0.0;
                double dMin = u < c ? a : u > c ? dClipped : 0.5 * (a + dClipped);
                double dpt = -dMin * r;
                double kl = 0;
                if (beta > 0) {
                    double d = refLogp[i] - lp;
                    double e = Math.exp(d);
                    kl = e - d - 1;
                    dpt += beta * (1 - e);
                }
                double pt = pg + beta * kl;
                loss += w * m * pt;
                dLogp[i] = (float) (w * m * dpt);
                ratioSum += m * r;
                clipped += (u > c) ? m : 0;
                klSum += m * kl;
            }
        }
        double denom = Math.max(1.0, totalMask);
        return new Result(loss, dLogp, ratioSum / denom, clipped / denom, klSum / denom);
    }
}
