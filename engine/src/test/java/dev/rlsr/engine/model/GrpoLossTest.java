package dev.rlsr.engine.model;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * GrpoLoss gradients against central finite differences of its own loss (away from the clip kinks), and the
 * aggregation levels against sums written out here.
 */
class GrpoLossTest {

    private static float[] gaussian(SplittableRandom r, int n, double s) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (s * r.nextGaussian());
        }
        return x;
    }

    @Test
    void gradientMatchesFiniteDifferences() {
        int b = 3, len = 7;
        SplittableRandom rng = new SplittableRandom(42);
        float[] logp = gaussian(rng, b * len, 1), old = logp.clone(), ref = logp.clone();
        for (int i = 0; i < old.length; i++) {
            old[i] += (float) (0.4 * rng.nextGaussian());
            ref[i] += (float) (0.3 * rng.nextGaussian());
        }
        float[] adv = {1.3f, -0.7f, 0.4f};
        float[] mask = new float[b * len];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = (i % 5 == 0) ? 0 : 1;
        }
        for (GrpoLoss.Level level : GrpoLoss.Level.values()) {
            GrpoLoss loss = new GrpoLoss(0.2, 0.28, 0.04, level, level == GrpoLoss.Level.DR_GRPO ? 10 : 0);
            GrpoLoss.Result r = loss.compute(logp, old, ref, adv, mask, b, len);
            for (int i = 0; i < logp.length; i++) {
                double ratio = Math.exp(logp[i] - old[i]);
                if (Math.abs(ratio - 0.8) < 1e-2 || Math.abs(ratio - 1.28) < 1e-2) {
                    continue; // finite differences straddle a kink
                }
                double h = 1e-3;
                float[] p = logp.clone(), m = logp.clone();
                p[i] += (float) h;
                m[i] -= (float) h;
                double fd = (loss.compute(p, old, ref, adv, mask, b, len).loss()
                        - loss.compute(m, old, ref, adv, mask, b, len).loss()) / (p[i] - m[i]);
                assertEquals(fd, r.dLogp()[i], 1e-4, level + " dLogp[" + i + "]");
            }
        }
    }

    @Test
    void aggregationLevels() {
        int b = 2, len = 3;
        float[] logp = {-1f, -2f, -0.5f, -1.5f, -0.2f, -3f};
        float[] old = logp.clone();
        float[] adv = {2f, -1f};
        float[] mask = {1, 1, 0, 1, 0, 0};
        // on-policy, beta 0: per token = -A (ratio 1, inside the clip range)
        double token = (-2 - 2 + 1) / 3.0;
        double seq = ((-2 - 2) / 2.0 + (1) / 1.0) / 2.0;
        double dr = (-2 - 2 + 1) / (2.0 * 4);
        assertEquals(token, GrpoLoss.of(0.2, 0, GrpoLoss.Level.TOKEN).compute(logp, old, null, adv, mask, b, len)
                .loss(), 1e-12);
        assertEquals(seq, GrpoLoss.of(0.2, 0, GrpoLoss.Level.SEQUENCE).compute(logp, old, null, adv, mask, b, len)
                .loss(), 1e-12);
        assertEquals(dr, new GrpoLoss(0.2, 0.2, 0, GrpoLoss.Level.DR_GRPO, 4)
                .compute(logp, old, null, adv, mask, b, len).loss(), 1e-12);
        assertThrows(IllegalArgumentException.class,
                () -> GrpoLoss.of(0.2, 0.04, GrpoLoss.Level.TOKEN).compute(logp, old, null, adv, mask, b, len));
    }
}
