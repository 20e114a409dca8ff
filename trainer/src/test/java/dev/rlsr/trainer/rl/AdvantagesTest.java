package dev.rlsr.trainer.rl;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Advantages against the formulas written out here, independently of the implementation. */
class AdvantagesTest {

    private static double[] rewards(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = r.nextDouble(-2, 3);
        }
        return x;
    }

    @Test
    void groupNormalisationUsesTheSampleStd() {
        int P = 3, G = 5;
        double[] r = rewards(P * G, 1);
        float[] a = Advantages.compute(r, P, G, AdvantageNorm.GROUP, 1e-4);
        for (int p = 0; p < P; p++) {
            double mean = 0;
            for (int g = 0; g < G; g++) {
                mean += r[p * G + g] / G;
            }
            double ss = 0;
            for (int g = 0; g < G; g++) {
                ss += Math.pow(r[p * G + g] - mean, 2);
            }
            double std = Math.sqrt(ss / (G - 1));
            for (int g = 0; g < G; g++) {
                double want = (r[p * G + g] - mean) / (std + 1e-4);
                assertEquals(want, a[p * G + g], 1e-5 * Math.max(1, Math.abs(want)), "p=" + p + " g=" + g);
            }
        }
    }

    @Test
    void noStdIsMeanCentredOnly() {
        double[] r = {1, 2, 6, 0, 0, 3};
        float[] a = Advantages.compute(r, 2, 3, AdvantageNorm.NONE_STD, 1e-4);
        float[] want = {-2, -1, 3, -1, -1, 2};
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], a[i], 1e-6);
        }
    }

    @Test
    void batchScaleUsesTheStdOfAllRewards() {
        double[] r = {1, 2, 6, 0, 0, 3};
        // all six: mean 2, squared deviations 1+0+16+4+4+1 = 26, sample variance 26/5
        double std = Math.sqrt(26.0 / 5);
        float[] a = Advantages.compute(r, 2, 3, AdvantageNorm.BATCH, 0.01);
        double[] centred = {-2, -1, 3, -1, -1, 2};
        for (int i = 0; i < r.length; i++) {
            assertEquals(centred[i] / (std + 0.01), a[i], 1e-6);
        }
    }

    @Test
    void groupOfOneAndConstantGroupsGiveZero() {
        double[] r = rewards(4, 3);
        for (AdvantageNorm n : AdvantageNorm.values()) {
            for (float v : Advantages.compute(r, 4, 1, n, 1e-4)) {
                assertEquals(0f, v, "G = 1 under " + n);
            }
            for (float v : Advantages.compute(new double[]{0.5, 0.5, 0.5}, 1, 3, n, 1e-4)) {
                assertEquals(0f, v, "constant group under " + n);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> Advantages.compute(r, 3, 2, AdvantageNorm.GROUP, 0));
        assertThrows(IllegalArgumentException.class,
                () -> Advantages.compute(new double[]{Double.NaN, 1}, 1, 2, AdvantageNorm.GROUP, 0));
    }

    @Test
    void onTheBackendEveryNormalisationMatchesTheFormulas() {
        int P = 4, G = 6;
        double[] r = rewards(P * G, 7);
        Backend be = CpuBackend.INSTANCE;
        for (AdvantageNorm norm : AdvantageNorm.values()) {
            float[] host = Advantages.compute(r, P, G, norm, 1e-4);
            float[] dev;
            try (Tensor t = Advantages.compute(be, r, P, G, norm, 1e-4)) {
                dev = be.download(t);
            }
            assertEquals(P * G, dev.length, norm.name());
            for (int i = 0; i < dev.length; i++) {
                // the host path scales BATCH in double, the backend in fp32: one more rounding
                assertEquals(host[i], dev[i], 2 * Math.ulp(host[i]), norm + " element " + i);
            }
        }
        double[] bad = r.clone();
        bad[5] = Double.NaN;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Advantages.compute(be, bad, P, G, AdvantageNorm.GROUP, 1e-4));
        assertTrue(e.getMessage().contains("reward 5"), e.getMessage());
    }
}
