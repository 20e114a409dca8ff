package dev.rlsr.kernels;

import static dev.rlsr.kernels.Near.assertNear;
import static dev.rlsr.kernels.Near.embed;
import static dev.rlsr.kernels.Near.slice;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link LayerNormReference} against the two-pass formula in double, on views, with rows offset far from zero (where
 * {@code E[x^2] - E[x]^2} would cancel). Tolerance (fp32): rtol 5e-6 of {@code |(x - mean) rs w| + |b|} plus
 * {@code |mean| rs |w| 2^-22}: the mean of a row of ~2049 values carries ~1e-6 of its magnitude, and subtracting it
 * from x leaves that error absolute.
 */
class LayerNormReferenceTest {
    private static final double RTOL = 5e-6;
    private static final float EPS = 1e-12f;

    @Test
    void matchesTwoPassDouble() {
        for (int[] s : new int[][] {{1, 1}, {7, 33}, {9, 384}, {3, 2049}}) {
            int rows = s[0], dim = s[1], n = rows * dim;
            long seed = 13L * rows + dim;
            Random r = new Random(seed);
            float[] x = Near.randn(r, n, 2), w = Near.randn(r, dim, 1), b = Near.randn(r, dim, 1);
            for (int i = 0; i < n; i++) {
                x[i] += 10f * (i / dim + 1); // row offsets 10, 20, ...
            }
            double[] want = new double[n], scale = new double[n];
            for (int q = 0; q < rows; q++) {
                double mean = 0, ss = 0;
                for (int i = 0; i < dim; i++) {
                    mean += x[q * dim + i];
                }
                mean /= dim;
                for (int i = 0; i < dim; i++) {
                    double d = x[q * dim + i] - mean;
                    ss += d * d;
                }
                double rs = 1 / Math.sqrt(ss / dim + EPS);
                for (int i = 0; i < dim; i++) {
                    int k = q * dim + i;
                    double y = (x[k] - mean) * rs * w[i];
                    want[k] = y + b[i];
                    // the fp32 mean is off by up to ~8 ulp of |mean|, an absolute error that x - mean keeps
                    scale[k] = Math.abs(y) + Math.abs(b[i]) + Math.abs(mean) * rs * Math.abs(w[i]) * 0x1p-20 / RTOL;
                }
            }
            float[] out = embed(new float[n], 2);
            LayerNormReference.forward(embed(x, 1), 1, embed(w, 3), 3, embed(b, 0), 0, EPS, out, 2, rows, dim);
            assertNear("layernorm " + rows + "x" + dim, seed, want, scale, slice(out, 2, n), RTOL);
            float[] inPlace = x.clone();
            LayerNormReference.forward(inPlace, 0, w, 0, b, 0, EPS, inPlace, 0, rows, dim);
            assertArrayEquals(slice(out, 2, n), inPlace, "in place");
        }
    }

    @Test
    void bf16IsTheRoundedFloatComputation() {
        int rows = 5, dim = 24, n = rows * dim;
        Random r = new Random(4);
        short[] x = BF16.fromFloat(Near.randn(r, n, 2)), w = BF16.fromFloat(Near.randn(r, dim, 1));
        short[] b = BF16.fromFloat(Near.randn(r, dim, 1)), out = new short[n];
        float[] outF = new float[n];
        LayerNormReference.forward(x, 0, w, 0, b, 0, 1e-5f, out, 0, rows, dim);
        LayerNormReference.forward(BF16.toFloat(x), 0, BF16.toFloat(w), 0, BF16.toFloat(b), 0, 1e-5f, outF, 0, rows,
                dim);
        for (int i = 0; i < n; i++) {
            assertEquals(BF16.fromFloat(outF[i]), out[i]);
        }
    }
}
