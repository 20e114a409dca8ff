package dev.rlsr.kernels;

import static dev.rlsr.kernels.Near.assertNear;
import static dev.rlsr.kernels.Near.embed;
import static dev.rlsr.kernels.Near.slice;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link PoolingReference} against sums in double. Tolerances (fp32): mean pooling rtol 1e-6 of
 * {@code sum |x| / count} (T = 23 ordered additions, 2^-24 each); L2 normalisation rtol 1e-6 of |x / norm| (an fp32
 * lane sum of up to 2049/8 squares, whose roundings cancel to ~1e-7 on these seeded inputs).
 */
class PoolingReferenceTest {
    @Test
    void meanPoolMatchesDouble() {
        int b = 4, t = 23, c = 37;
        long seed = 31;
        Random r = new Random(seed);
        float[] x = Near.randn(r, b * t * c, 1);
        int[] mask = new int[b * t];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = r.nextInt(4) == 0 ? 0 : 1;
        }
        for (int j = 0; j < t; j++) {
            mask[2 * t + j] = 0; // a row without tokens pools to zeros
        }
        for (boolean masked : new boolean[] {true, false}) {
            double[] want = new double[b * c], scale = new double[b * c];
            for (int q = 0; q < b; q++) {
                int count = 0;
                for (int j = 0; j < t; j++) {
                    if (!masked || mask[q * t + j] != 0) {
                        count++;
                        for (int k = 0; k < c; k++) {
                            want[q * c + k] += x[(q * t + j) * c + k];
                            scale[q * c + k] += Math.abs(x[(q * t + j) * c + k]);
                        }
                    }
                }
                for (int k = 0; k < c; k++) {
                    want[q * c + k] /= Math.max(count, 1e-9);
                    scale[q * c + k] /= Math.max(count, 1e-9);
                }
            }
            float[] pooled = embed(new float[b * c], 2);
            int[] mv = new int[b * t + 3];
            System.arraycopy(mask, 0, mv, 3, b * t);
            PoolingReference.meanPool(embed(x, 1), 1, masked ? mv : null, 3, pooled, 2, b, t, c);
            assertNear("mean pool" + (masked ? " masked" : ""), seed, want, scale, slice(pooled, 2, b * c), 1e-6);
            if (masked) {
                for (int k = 0; k < c; k++) {
                    assertEquals(0f, pooled[2 + 2 * c + k], "empty row");
                }
            }
        }
    }

    @Test
    void l2NormalizeMatchesDouble() {
        for (int[] s : new int[][] {{1, 1}, {5, 33}, {3, 384}, {2, 2049}}) {
            int rows = s[0], w = s[1];
            long seed = 41L * rows + w;
            float[] x = Near.randn(new Random(seed), rows * w, 3);
            double[] want = new double[rows * w];
            for (int q = 0; q < rows; q++) {
                double ss = 0;
                for (int i = 0; i < w; i++) {
                    ss += (double) x[q * w + i] * x[q * w + i];
                }
                for (int i = 0; i < w; i++) {
                    want[q * w + i] = x[q * w + i] / Math.max(Math.sqrt(ss), 1e-12);
                }
            }
            float[] v = embed(x, 2);
            PoolingReference.l2NormalizeRows(v, 2, rows, w, 1e-12f);
            assertNear("l2 " + rows + "x" + w, seed, want, null, slice(v, 2, rows * w), 1e-6);
        }
        float[] zeros = new float[8];
        PoolingReference.l2NormalizeRows(zeros, 0, 2, 4, 1e-12f);
        for (float z : zeros) {
            assertEquals(0f, z, "a zero row stays zero (divided by eps)");
        }
    }
}
