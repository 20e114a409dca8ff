package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * grpo_loss.cu vs {@link GrpoLossReference} (double) for every level, with and without the KL term (refLogp absent
 * when beta = 0), odd (B, L), an entirely masked row, a zero advantage, ratios on both sides of the clip range,
 * outputs poisoned with NaN, and a second launch giving the same bits.
 *
 * <p>Tolerances (fp32 on the device): dLogp rtol 2e-6 of {@code w m (|dMin r| + beta |e^d - 1|)} (a few roundings per
 * token; expf and the k3 series are accurate to an ulp or two); the loss rtol 1e-5 of {@code sum w m |pt|} and the
 * means rtol 1e-5 of their sums of absolute values (fp32 sums over B*L tokens in a fixed tree).
 */
@Tag("gpu")
class GrpoLossKernelGpuTest {
    private static final double G_RTOL = 2e-6, S_RTOL = 1e-5;

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void everyLevelWithAndWithoutKl() {
        for (int[] s : new int[][] {{5, 13}, {16, 1023}, {1, 1}}) {
            for (GrpoLevel level : GrpoLevel.values()) {
                for (double beta : new double[] {0, 0.04}) {
                    check(s[0], s[1], level, beta, 0.2, 0.28, 97L * s[0] + s[1] + level.ordinal(), false);
                }
            }
        }
    }

    /** oldLogp absent: fully on-policy, ratio 1 everywhere (the tie of torch.min, gradient -A). */
    @Test
    void onPolicyWithoutOldLogp() {
        for (GrpoLevel level : GrpoLevel.values()) {
            check(7, 45, level, 0.04, 0.2, 0.2, 5 + level.ordinal(), true);
        }
    }

    private static void check(int b, int len, GrpoLevel level, double beta, double clipLow, double clipHigh, long seed,
            boolean onPolicy) {
        int n = b * len;
        String tag = level + " beta " + beta + " B=" + b + " L=" + len + (onPolicy ? " on-policy" : "");
        Random r = new Random(seed);
        float[] logp = GpuSupport.randn(r, n, 1f), old = logp.clone(), ref = logp.clone();
        for (int i = 0; i < n; i++) {
            old[i] += onPolicy ? 0f : (float) (0.3 * r.nextGaussian());
            ref[i] += (float) (i % 3 == 0 ? 1e-3 * r.nextGaussian() : 0.3 * r.nextGaussian()); // small d: the series
        }
        float[] adv = GpuSupport.randn(r, b, 1f);
        if (b > 2) {
            adv[2] = 0f;
        }
        int[] mask = new int[n];
        float[] maskF = new float[n];
        for (int i = 0; i < n; i++) {
            mask[i] = (i % len) < len - (i / len) % 4 ? 1 : 0; // rows end at different lengths
            if (b > 3 && i / len == 3) {
                mask[i] = 0; // an entirely masked row
            }
            maskF[i] = mask[i];
        }
        int maxLen = level == GrpoLevel.DR_GRPO ? len + 7 : 0;
        float[] refOrNull = beta > 0 ? ref : null;
        GrpoLossReference.Result want = GrpoLossReference.compute(clipLow, clipHigh, beta, level, maxLen, logp, old,
                refOrNull, adv, maskF, b, len);
        // sizes of the terms, for the tolerances
        double lo = 1 - clipLow, hi = 1 + clipHigh, total = 0, lossTerms = 0, ratioTerms = 0, klTerms = 0;
        double[] rowMask = new double[b], gradTerms = new double[n];
        for (int i = 0; i < n; i++) {
            rowMask[i / len] += maskF[i];
            total += maskF[i];
        }
        for (int i = 0; i < n; i++) {
            if (mask[i] == 0) {
                continue;
            }
            int q = i / len;
            double w = switch (level) {
                case TOKEN -> 1 / Math.max(1, total);
                case SEQUENCE -> 1 / (b * Math.max(1, rowMask[q]));
                case DR_GRPO -> 1 / ((double) b * maxLen);
            };
            double rr = Math.exp((double) logp[i] - old[i]), d = beta > 0 ? (double) ref[i] - logp[i] : 0;
            double kl = beta > 0 ? Math.exp(d) - d - 1 : 0;
            gradTerms[i] = w * (Math.abs(adv[q] * rr) + beta * Math.abs(Math.exp(d) - 1));
            lossTerms += w * (Math.abs(adv[q]) * Math.max(rr, hi) + beta * kl);
            ratioTerms += rr;
            klTerms += kl;
        }
        double denom = Math.max(1, total);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long dLogp = m.upload(logp), dOld = onPolicy ? 0 : m.upload(old), dRef = beta > 0 ? m.upload(ref) : 0;
            long dMask = m.upload(mask), dAdv = m.upload(adv);
            long grad = m.poisonedF32(n), result = m.poisonedF32(GrpoLossKernel.RESULT_SIZE);
            long stats = m.poisonedF32((int) (GrpoLossKernel.scratchBytes(b) / 4));
            GrpoLossKernel.compute(dLogp, dOld, dRef, dMask, dAdv, grad, stats, result, b, len, clipLow, clipHigh, beta,
                    level, maxLen, 0);
            float[] gotGrad = GpuSupport.getF32(grad, n);
            float[] res = GpuSupport.getF32(result, GrpoLossKernel.RESULT_SIZE);
            Near.assertNear("dLogp " + tag, seed, RmsNormGpuTest.toDouble(want.dLogp()), gradTerms, gotGrad, G_RTOL);
            Near.assertNear("loss " + tag, seed, new double[] {want.loss()}, new double[] {lossTerms},
                    new float[] {res[GrpoLossKernel.LOSS]}, S_RTOL);
            Near.assertNear("mean ratio " + tag, seed, new double[] {want.meanRatio()},
                    new double[] {ratioTerms / denom}, new float[] {res[GrpoLossKernel.MEAN_RATIO]}, S_RTOL);
            Near.assertNear("clip fraction " + tag, seed, new double[] {want.clipFraction()}, new double[] {1},
                    new float[] {res[GrpoLossKernel.CLIP_FRACTION]}, S_RTOL);
            Near.assertNear("mean KL " + tag, seed, new double[] {want.meanKl()}, new double[] {klTerms / denom + 1e-30},
                    new float[] {res[GrpoLossKernel.MEAN_KL]}, S_RTOL);
            for (int i = 0; i < n; i++) {
                if (mask[i] == 0) {
                    assertEquals(0f, gotGrad[i], "masked token " + i + " " + tag);
                }
            }
            // again: the same bits
            long grad2 = m.poisonedF32(n), result2 = m.poisonedF32(GrpoLossKernel.RESULT_SIZE);
            GrpoLossKernel.compute(dLogp, dOld, dRef, dMask, dAdv, grad2, stats, result2, b, len, clipLow, clipHigh,
                    beta, level, maxLen, 0);
            assertArrayEquals(gotGrad, GpuSupport.getF32(grad2, n), "dLogp repeats " + tag);
            assertArrayEquals(res, GpuSupport.getF32(result2, GrpoLossKernel.RESULT_SIZE), "result repeats " + tag);
        }
    }
}
