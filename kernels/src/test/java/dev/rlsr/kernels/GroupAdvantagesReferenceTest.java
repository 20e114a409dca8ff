package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

class GroupAdvantagesReferenceTest {
    private static final long SEED = 7L;

    @Test
    void matchesNaiveFormula() {
        Random r = new Random(SEED);
        for (int g : new int[] {2, 3, 16, 64, 100}) {
            int p = 11;
            float[] rw = new float[p * g];
            for (int i = 0; i < rw.length; i++) {
                rw[i] = r.nextFloat();
            }
            float[] scaled = GroupAdvantagesReference.compute(rw, p, g, true, 1e-4f);
            float[] plain = GroupAdvantagesReference.compute(rw, p, g, false, 1e-4f);
            for (int q = 0; q < p; q++) {
                double mean = 0;
                for (int i = 0; i < g; i++) {
                    mean += rw[q * g + i] / (double) g;
                }
                double var = 0;
                for (int i = 0; i < g; i++) {
                    var += Math.pow(rw[q * g + i] - mean, 2) / (g - 1);
                }
                for (int i = 0; i < g; i++) {
                    double dev = rw[q * g + i] - mean;
                    assertEquals(dev / (Math.sqrt(var) + 1e-4), scaled[q * g + i], 1e-5, "seed " + SEED + " g=" + g);
                    assertEquals(dev, plain[q * g + i], 1e-6, "no std scaling, g=" + g);
                }
            }
        }
    }

    @Test
    void meanZeroAndSampleStdOne() {
        Random r = new Random(SEED + 1);
        int p = 20, g = 16;
        float[] rw = new float[p * g];
        for (int i = 0; i < rw.length; i++) {
            rw[i] = (float) (r.nextGaussian() * 3 + 1);
        }
        float[] a = GroupAdvantagesReference.compute(rw, p, g, true, 0f);
        for (int q = 0; q < p; q++) {
            double s = 0, ss = 0;
            for (int i = 0; i < g; i++) {
                s += a[q * g + i];
            }
            for (int i = 0; i < g; i++) {
                ss += Math.pow(a[q * g + i] - s / g, 2);
            }
            assertEquals(0.0, s / g, 1e-6);
            assertEquals(1.0, Math.sqrt(ss / (g - 1)), 1e-5);
        }
    }

    @Test
    void singleResponseAndEqualRewardsGiveZero() {
        float[] a = GroupAdvantagesReference.compute(new float[] {0.3f, -2f, 5f}, 3, 1, true, 1e-4f);
        for (float x : a) {
            assertEquals(0f, x);
        }
        float[] eq = GroupAdvantagesReference.compute(new float[] {0.1f, 0.1f, 0.1f, 0.7f, 0.7f, 0.7f}, 2, 3, true, 1e-6f);
        for (float x : eq) {
            assertEquals(0f, x);
        }
    }
}
