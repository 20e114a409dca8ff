package dev.rlsr.kernels;

import static dev.rlsr.kernels.Near.assertNear;
import static dev.rlsr.kernels.Near.embed;
import static dev.rlsr.kernels.Near.slice;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link RmsNormReference} against the formulas in double, on views (offsets into larger NaN-filled arrays).
 * Tolerance (fp32): rtol 2e-6 of the size of the terms of each value. The mean square is an fp32 lane sum of up to
 * 2049/8 = 256 terms per lane (worst case 256 * 2^-24 = 1.5e-5; on these seeded inputs the roundings cancel to ~2e-7
 * relative), everything after it a few roundings of 2^-24.
 */
class RmsNormReferenceTest {
    private static final double RTOL = 2e-6;
    private static final int[][] SHAPES = {{1, 1}, {7, 33}, {13, 64}, {5, 896}, {3, 2049}};
    private static final float EPS = 1e-6f;

    private static double[] rstd(float[] x, int rows, int dim) {
        double[] rs = new double[rows];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) {
                ss += (double) x[r * dim + i] * x[r * dim + i];
            }
            rs[r] = 1 / Math.sqrt(ss / dim + EPS);
        }
        return rs;
    }

    @Test
    void forwardMatchesDoubleFormula() {
        for (int[] s : SHAPES) {
            int rows = s[0], dim = s[1], n = rows * dim;
            long seed = 100L * rows + dim;
            Random r = new Random(seed);
            float[] x = Near.randn(r, n, 2), w = Near.randn(r, dim, 1);
            double[] rs = rstd(x, rows, dim);
            double[] out = new double[n];
            for (int i = 0; i < n; i++) {
                out[i] = w[i % dim] * x[i] * rs[i / dim];
            }
            float[] o = embed(new float[n], 5), rsGot = embed(new float[rows], 2);
            RmsNormReference.forward(embed(x, 3), 3, embed(w, 1), 1, EPS, o, 5, rsGot, 2, rows, dim);
            String tag = rows + "x" + dim;
            assertNear("rstd " + tag, seed, rs, null, slice(rsGot, 2, rows), RTOL);
            assertNear("out " + tag, seed, out, null, slice(o, 5, n), RTOL);
            // in place gives the same bits
            float[] inPlace = embed(x, 3), rs2 = new float[rows];
            RmsNormReference.forward(inPlace, 3, embed(w, 1), 1, EPS, inPlace, 3, rs2, 0, rows, dim);
            assertArrayEquals(slice(o, 5, n), slice(inPlace, 3, n), tag);
        }
    }

    @Test
    void backwardMatchesDoubleFormula() {
        for (int[] s : SHAPES) {
            for (boolean acc : new boolean[] {false, true}) {
                int rows = s[0], dim = s[1], n = rows * dim;
                long seed = 7L * rows + dim + (acc ? 1 : 0);
                Random r = new Random(seed);
                float[] x = Near.randn(r, n, 2), w = Near.randn(r, dim, 1), g = Near.randn(r, n, 1);
                float[] dx0 = Near.randn(r, n, 1), dw0 = Near.randn(r, dim, 1);
                float[] rsF = new float[rows];
                RmsNormReference.forward(x, 0, w, 0, EPS, new float[n], 0, rsF, 0, rows, dim);
                double[] dx = new double[n], dxScale = new double[n], dw = new double[dim], dwScale = new double[dim];
                for (int q = 0; q < rows; q++) {
                    double rs = rsF[q], sum = 0, sumAbs = 0;
                    for (int i = 0; i < dim; i++) {
                        int k = q * dim + i;
                        sum += (double) w[i] * g[k] * x[k];
                        sumAbs += Math.abs((double) w[i] * g[k] * x[k]);
                    }
                    double kk = sum * rs * rs * rs / dim, kAbs = sumAbs * rs * rs * rs / dim;
                    for (int i = 0; i < dim; i++) {
                        int k = q * dim + i;
                        double a = rs * w[i] * g[k], b = kk * x[k];
                        dx[k] = (acc ? dx0[k] : 0) + a - b;
                        dxScale[k] = (acc ? Math.abs(dx0[k]) : 0) + Math.abs(a) + kAbs * Math.abs(x[k]);
                        dw[i] += (double) g[k] * x[k] * rs;
                        dwScale[i] += Math.abs((double) g[k] * x[k] * rs);
                    }
                }
                for (int i = 0; i < dim; i++) {
                    dw[i] += dw0[i];
                    dwScale[i] += Math.abs(dw0[i]);
                }
                float[] dxGot = embed(dx0, 4), dwGot = embed(dw0, 2);
                RmsNormReference.backward(embed(g, 1), 1, embed(x, 3), 3, embed(w, 0), 0, embed(rsF, 6), 6, dxGot, 4, dwGot,
                        2, rows, dim, acc);
                String tag = rows + "x" + dim + (acc ? " accumulate" : "");
                assertNear("dx " + tag, seed, dx, dxScale, slice(dxGot, 4, n), RTOL);
                assertNear("dw " + tag, seed, dw, dwScale, slice(dwGot, 2, dim), RTOL);
                // dx may be dOut: same bits
                if (!acc) {
                    float[] alias = g.clone(), dw2 = dw0.clone();
                    RmsNormReference.backward(alias, 0, x, 0, w, 0, rsF, 0, alias, 0, dw2, 0, rows, dim, false);
                    assertArrayEquals(slice(dxGot, 4, n), alias, "dx aliasing dOut " + tag);
                    assertArrayEquals(slice(dwGot, 2, dim), dw2, "dw with dx aliasing dOut " + tag);
                }
            }
        }
    }

    @Test
    void bf16IsTheRoundedFloatComputation() {
        int rows = 9, dim = 40, n = rows * dim;
        Random r = new Random(3);
        short[] x = BF16.fromFloat(Near.randn(r, n, 2)), w = BF16.fromFloat(Near.randn(r, dim, 1));
        short[] g = BF16.fromFloat(Near.randn(r, n, 1)), dx0 = BF16.fromFloat(Near.randn(r, n, 1));
        short[] out = new short[n + 2];
        float[] rs = new float[rows], rsF = new float[rows];
        RmsNormReference.forward(x, 0, w, 0, EPS, out, 2, rs, 0, rows, dim);
        float[] outF = new float[n];
        RmsNormReference.forward(BF16.toFloat(x), 0, BF16.toFloat(w), 0, EPS, outF, 0, rsF, 0, rows, dim);
        assertArrayEquals(rsF, rs);
        for (int i = 0; i < n; i++) {
            assertEquals(BF16.fromFloat(outF[i]), out[i + 2]);
        }
        short[] dx = dx0.clone();
        float[] dw = new float[dim], dwF = new float[dim], dxF = BF16.toFloat(dx0);
        RmsNormReference.backward(g, 0, x, 0, w, 0, rs, 0, dx, 0, dw, 0, rows, dim, true);
        RmsNormReference.backward(BF16.toFloat(g), 0, BF16.toFloat(x), 0, BF16.toFloat(w), 0, rs, 0, dxF, 0, dwF, 0, rows,
                dim, true);
        assertArrayEquals(dwF, dw);
        for (int i = 0; i < n; i++) {
            assertEquals(BF16.fromFloat(dxF[i]), dx[i]);
        }
    }

    @Test
    void rejectsViewsOutsideTheirArrays() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RmsNormReference.forward(
                new float[10], 1, new float[5], 0, EPS, new float[10], 0, new float[2], 0, 2, 5));
        assertEquals(true, e.getMessage().contains("x (R,D)"), e.getMessage());
    }
}
