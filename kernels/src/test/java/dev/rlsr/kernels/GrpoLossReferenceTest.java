package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link GrpoLossReference} against the clipped objective written piecewise: for A &gt;= 0,
 * {@code min(rA, clip(r)A) = A min(r, hi)}; for A &lt; 0 it is {@code A max(r, lo)}. So the policy term's gradient is
 * {@code -A r} on the unclipped side and 0 on the clipped side; exactly at the bound torch.min splits the gradient
 * between two inputs that both have slope A there (clamp passes it on the closed interval), so it is -A r. The k3 KL
 * term and the three aggregation levels are written out here too. Everything is double, so the tolerance is double
 * rounding (1e-12 relative), except dLogp, which the reference returns in fp32 (one ulp).
 */
class GrpoLossReferenceTest {

    private record Expected(double loss, double[] grad, double ratio, double clip, double kl) {
    }

    private static Expected expected(double clipLow, double clipHigh, double beta, GrpoLevel level, int maxLen,
            float[] logp, float[] old, float[] ref, float[] adv, float[] mask, int b, int len) {
        double lo = 1 - clipLow, hi = 1 + clipHigh;
        double total = 0;
        double[] rowMask = new double[b];
        for (int i = 0; i < b * len; i++) {
            rowMask[i / len] += mask[i];
            total += mask[i];
        }
        double loss = 0, ratio = 0, clip = 0, kl = 0;
        double[] grad = new double[b * len];
        for (int i = 0; i < b * len; i++) {
            int row = i / len;
            double m = mask[i];
            if (m == 0) {
                continue;
            }
            double w = switch (level) {
                case TOKEN -> 1 / Math.max(1, total);
                case SEQUENCE -> 1 / (b * Math.max(1, rowMask[row]));
                case DR_GRPO -> 1 / ((double) b * (maxLen > 0 ? maxLen : len));
            };
            double a = adv[row], r = Math.exp((double) logp[i] - old[i]);
            double objective, dObjDr;
            boolean clipped;
            if (a >= 0) {
                objective = a * Math.min(r, hi);
                dObjDr = r <= hi ? a : 0;
                clipped = r > hi && a > 0;
            } else {
                objective = a * Math.max(r, lo);
                dObjDr = r >= lo ? a : 0;
                clipped = r < lo;
            }
            double d = ref == null ? 0 : (double) ref[i] - logp[i];
            double k3 = beta > 0 ? Math.exp(d) - d - 1 : 0;
            loss += w * m * (-objective + beta * k3);
            grad[i] = w * m * (-dObjDr * r + (beta > 0 ? beta * (1 - Math.exp(d)) : 0));
            ratio += m * r;
            clip += clipped ? m : 0;
            kl += m * k3;
        }
        double denom = Math.max(1, total);
        return new Expected(loss, grad, ratio / denom, clip / denom, kl / denom);
    }

    private static void check(String what, Expected e, GrpoLossReference.Result got) {
        assertEquals(e.loss(), got.loss(), 1e-12 * Math.max(1, Math.abs(e.loss())), what + " loss");
        assertEquals(e.ratio(), got.meanRatio(), 1e-12, what + " mean ratio");
        assertEquals(e.clip(), got.clipFraction(), 1e-12, what + " clip fraction");
        assertEquals(e.kl(), got.meanKl(), 1e-12, what + " mean KL");
        for (int i = 0; i < e.grad().length; i++) {
            assertEquals(e.grad()[i], got.dLogp()[i], Math.ulp((float) e.grad()[i]), what + " dLogp[" + i + "]");
        }
    }

    @Test
    void matchesThePiecewiseObjective() {
        int b = 5, len = 13;
        long seed = 17;
        Random r = new Random(seed);
        float[] logp = Near.randn(r, b * len, 1), old = logp.clone(), ref = logp.clone();
        for (int i = 0; i < old.length; i++) {
            old[i] += (float) (0.4 * r.nextGaussian());
            ref[i] += (float) (0.3 * r.nextGaussian());
        }
        float[] adv = {1.3f, -0.7f, 0.4f, 0f, -2f};
        float[] mask = new float[b * len];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = (i % 5 == 0) ? 0 : 1;
        }
        for (int t = 0; t < len; t++) {
            mask[2 * len + t] = 0; // an empty row contributes nothing, not NaN
        }
        for (GrpoLevel level : GrpoLevel.values()) {
            for (double beta : new double[] {0, 0.04}) {
                int maxLen = level == GrpoLevel.DR_GRPO ? 20 : 0;
                float[] rf = beta > 0 ? ref : null;
                Expected e = expected(0.2, 0.28, beta, level, maxLen, logp, old, rf, adv, mask, b, len);
                GrpoLossReference.Result got = GrpoLossReference.compute(0.2, 0.28, beta, level, maxLen, logp, old, rf,
                        adv, mask, b, len);
                check("seed " + seed + " " + level + " beta " + beta, e, got);
                assertEquals(true, e.clip() > 0 && e.clip() < 1, "the inputs exercise both branches: " + e.clip());
            }
        }
    }

    @Test
    void onPolicyTiesSplitTheGradientToTheUnclippedValue() {
        // logp == oldLogp: r = 1 exactly, rA == clip(r)A, a tie: torch.min gives each input half, both have slope A
        int b = 2, len = 3;
        float[] logp = {-1f, -2f, -0.5f, -1.5f, -0.2f, -3f};
        float[] adv = {2f, -1f};
        float[] mask = {1, 1, 0, 1, 0, 0};
        GrpoLossReference.Result got = GrpoLossReference.compute(0.2, 0.2, 0, GrpoLevel.TOKEN, 0, logp, logp.clone(),
                null, adv, mask, b, len);
        float[] want = {-2f / 3, -2f / 3, 0f, 1f / 3, 0f, 0f};
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got.dLogp()[i], 1e-7, "dLogp[" + i + "]");
        }
        assertEquals((-2 - 2 + 1) / 3.0, got.loss(), 1e-12);
        assertEquals(1.0, got.meanRatio(), 0.0);
        assertEquals(0.0, got.clipFraction(), 0.0);
    }

    @Test
    void rejectsBadArguments() {
        float[] x = new float[4];
        assertThrows(IllegalArgumentException.class, () -> GrpoLossReference.compute(0.2, 0.2, 0.1, GrpoLevel.TOKEN, 0, x,
                x, null, new float[2], x, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> GrpoLossReference.compute(1.0, 0.2, 0, GrpoLevel.TOKEN, 0, x,
                x, null, new float[2], x, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> GrpoLossReference.compute(0.2, 0.2, 0, null, 0, x, x, null,
                new float[2], x, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> GrpoLossReference.compute(0.2, 0.2, 0, GrpoLevel.TOKEN, 0, x,
                x, null, new float[3], x, 2, 2));
    }
}
