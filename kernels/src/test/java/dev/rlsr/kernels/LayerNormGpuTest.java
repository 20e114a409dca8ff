package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * layernorm.cu vs {@link LayerNormReference} on the same held inputs: warp rows (MiniLM's C = 384), block rows
 * (D &gt; 1024), odd widths, views one element off (the scalar paths), rows offset far from zero, outputs poisoned with
 * NaN, in place.
 *
 * <p>Tolerance: {@code |got - ref| <= 5e-6 (|(x - mean) rs w| + |b| + 2^-20 |mean| rs |w| / 5e-6)} plus one bf16 ulp
 * of ref for BF16: the device's and the CPU's fp32 means and variances are sums in different orders (see
 * {@link LayerNormReferenceTest}).
 */
@Tag("gpu")
class LayerNormGpuTest {
    private static final double RTOL = 5e-6;
    private static final float EPS = 1e-12f;
    private static final int[][] SHAPES = {{37, 384}, {5, 7}, {3, 1025}, {2, 4099}, {70, 33}};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void bothDtypes() {
        for (DType t : new DType[] {DType.F32, DType.BF16}) {
            for (int[] s : SHAPES) {
                for (int off : new int[] {0, 1}) {
                    check(s[0], s[1], t, off, 11L * s[0] + s[1] + off + (t == DType.F32 ? 0 : 5000));
                }
            }
        }
    }

    private static void check(int rows, int dim, DType t, int off, long seed) {
        int n = rows * dim;
        String tag = t + " " + rows + "x" + dim + " offset " + off;
        Random r = new Random(seed);
        float[] x = Near.randn(r, n, 2);
        for (int i = 0; i < n; i++) {
            x[i] += 4f * (i / dim % 5);
        }
        x = Dev.held(x, t);
        float[] w = Dev.held(Near.randn(r, dim, 1), t), b = Dev.held(Near.randn(r, dim, 1), t);
        float[] out = new float[n];
        LayerNormReference.forward(x, 0, w, 0, b, 0, EPS, out, 0, rows, dim);
        double[] terms = new double[n];
        for (int q = 0; q < rows; q++) {
            double mean = 0, ss = 0;
            for (int i = 0; i < dim; i++) {
                mean += x[q * dim + i];
            }
            mean /= dim;
            for (int i = 0; i < dim; i++) {
                ss += (x[q * dim + i] - mean) * (x[q * dim + i] - mean);
            }
            double rs = 1 / Math.sqrt(ss / dim + EPS);
            for (int i = 0; i < dim; i++) {
                int k = q * dim + i;
                terms[k] = Math.abs((x[k] - mean) * rs * w[i]) + Math.abs(b[i])
                        + Math.abs(mean) * rs * Math.abs(w[i]) * 0x1p-20 / RTOL;
            }
        }
        float[] ref = Dev.held(out, t);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long dx = Dev.act(m, x, t, off), dw = Dev.act(m, w, t, off), db = Dev.act(m, b, t, off);
            long dOut = Dev.poisoned(m, n, t, off);
            LayerNorm.forward(dx, dw, db, dOut, t, rows, dim, EPS, 0);
            float[] got = Dev.read(dOut, n, t);
            Dev.assertAct("layernorm " + tag, seed, ref, got, terms, RTOL, t);
            long dIn = Dev.act(m, x, t, off);
            LayerNorm.forward(dIn, dw, db, dIn, t, rows, dim, EPS, 0);
            assertArrayEquals(got, Dev.read(dIn, n, t), "in place " + tag);
        }
    }
}
