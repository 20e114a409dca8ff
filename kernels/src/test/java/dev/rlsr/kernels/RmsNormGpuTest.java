package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.rlsr.bindings.CudaDriver;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * rmsnorm.cu vs {@link RmsNormReference} on the same (bf16-rounded where BF16) inputs: rows read by 8/16/32 lanes
 * (D &lt;= 1024: the per-head q/k norms, Qwen's C = 896), block rows (D &gt; 1024), the global-memory dw accumulator
 * (D &gt; 12288), odd widths and views shifted by one element (every row off its 16-byte boundary: the scalar paths),
 * outputs and the partials scratch poisoned with NaN, in place forward, dx aliasing dOut, accumulated dx and dw.
 *
 * <p>Tolerances, {@code |got - ref| <= rtol * terms (+ one bf16 ulp of ref for BF16 outputs)} where terms is the size of
 * the terms of the value: rtol 2e-6 for out and rstd (fp32 sums of squares in a different order: ~1e-7 relative),
 * 4e-6 for dx and dw (two such sums, and dw's partial sums in another order).
 */
@Tag("gpu")
class RmsNormGpuTest {
    private static final double FWD_RTOL = 2e-6, BWD_RTOL = 4e-6;
    private static final float EPS = 1e-6f;
    /**
     * {rows, D}: 8, 16 and 32 lanes per row (D = 16 and 64 bf16, 64 fp32 and 128 bf16, 896), groups past the last row
     * in the last block, several rows per group in the backward (20000 x 16, 9000 x 128: more rows than 512 blocks
     * of row groups), block rows (1025 ... 12289, the last with its dw accumulator in global memory), odd widths.
     */
    private static final int[][] SHAPES = {{37, 64}, {5, 7}, {129, 896}, {300, 16}, {20000, 16}, {9000, 128},
            {77, 33}, {3, 1025}, {9, 2049}, {2, 4096}, {2, 12289}};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void f32() {
        for (int[] s : SHAPES) {
            for (int off : new int[] {0, 1}) {
                check(s[0], s[1], DType.F32, off, 1000L * s[0] + s[1] + off);
            }
        }
    }

    @Test
    void bf16() {
        for (int[] s : SHAPES) {
            for (int off : new int[] {0, 1}) {
                check(s[0], s[1], DType.BF16, off, 2000L * s[0] + s[1] + off);
            }
        }
    }

    private static void check(int rows, int dim, DType t, int off, long seed) {
        int n = rows * dim;
        String tag = t + " " + rows + "x" + dim + " offset " + off;
        Random r = new Random(seed);
        float[] x = Dev.held(Near.randn(r, n, 2), t), w = Dev.held(Near.randn(r, dim, 1), t);
        float[] g = Dev.held(Near.randn(r, n, 1), t), dx0 = Dev.held(Near.randn(r, n, 1), t);
        float[] dw0 = Near.randn(r, dim, 1);

        float[] out = new float[n], rs = new float[rows];
        RmsNormReference.forward(x, 0, w, 0, EPS, out, 0, rs, 0, rows, dim);
        float[] refOut = Dev.held(out, t);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long dX = Dev.act(m, x, t, off), dW = Dev.act(m, w, t, off);
            long dOut = Dev.poisoned(m, n, t, off), dRs = m.poisonedF32(rows);
            RmsNorm.forward(dX, dW, dOut, dRs, t, rows, dim, EPS, 0);
            float[] gotRs = GpuSupport.getF32(dRs, rows);
            Near.assertNear("rstd " + tag, seed, toDouble(rs), null, gotRs, FWD_RTOL);
            Dev.assertAct("out " + tag, seed, refOut, Dev.read(dOut, n, t), null, FWD_RTOL, t);
            // in place over a copy of x
            long dIn = Dev.act(m, x, t, off), dRs2 = m.poisonedF32(rows);
            RmsNorm.forward(dIn, dW, dIn, dRs2, t, rows, dim, EPS, 0);
            assertArrayEquals(Dev.read(dOut, n, t), Dev.read(dIn, n, t), "in place forward " + tag);

            // backward against the device's own rstd, so only the backward's arithmetic differs
            for (boolean acc : new boolean[] {false, true}) {
                String bt = tag + (acc ? " accumulate" : "");
                float[] dx = dx0.clone(), dw = dw0.clone();
                RmsNormReference.backward(g, 0, x, 0, w, 0, gotRs, 0, dx, 0, dw, 0, rows, dim, acc);
                double[] dxTerms = new double[n], dwTerms = new double[dim];
                terms(g, x, w, gotRs, acc ? dx0 : null, dw0, rows, dim, dxTerms, dwTerms);
                long dG = Dev.act(m, g, t, off);
                long dDx = acc ? Dev.act(m, dx0, t, off) : Dev.poisoned(m, n, t, off);
                long dDw = m.upload(dw0);
                long parts = m.alloc(RmsNorm.backwardScratchBytes(t, rows, dim));
                CudaDriver.memsetD32(parts, GpuSupport.NAN_BITS, RmsNorm.backwardScratchBytes(t, rows, dim) / 4);
                RmsNorm.backward(dG, dX, dW, dRs, dDx, dDw, parts, t, rows, dim, acc, 0);
                float[] gotDx = Dev.read(dDx, n, t), gotDw = GpuSupport.getF32(dDw, dim);
                Dev.assertAct("dx " + bt, seed, Dev.held(dx, t), gotDx, dxTerms, BWD_RTOL, t);
                Near.assertNear("dw " + bt, seed, toDouble(dw), dwTerms, gotDw, BWD_RTOL);

                // the same dw bits again (deterministic); without accumulation, dx written over dOut itself
                long dDw2 = m.upload(dw0);
                if (acc) {
                    RmsNorm.backward(dG, dX, dW, dRs, Dev.act(m, dx0, t, off), dDw2, parts, t, rows, dim, true, 0);
                } else {
                    long dAlias = Dev.act(m, g, t, off);
                    RmsNorm.backward(dAlias, dX, dW, dRs, dAlias, dDw2, parts, t, rows, dim, false, 0);
                    assertArrayEquals(gotDx, Dev.read(dAlias, n, t), "dx over dOut " + bt);
                }
                assertArrayEquals(gotDw, GpuSupport.getF32(dDw2, dim), "dw repeats bit for bit " + bt);
            }
        }
    }

    // the size of the terms of each dx and dw value, in double
    private static void terms(float[] g, float[] x, float[] w, float[] rs, float[] dx0, float[] dw0, int rows, int dim,
            double[] dxTerms, double[] dwTerms) {
        for (int q = 0; q < rows; q++) {
            double sumAbs = 0;
            for (int i = 0; i < dim; i++) {
                sumAbs += Math.abs((double) w[i] * g[q * dim + i] * x[q * dim + i]);
            }
            double kAbs = sumAbs * rs[q] * rs[q] * rs[q] / dim;
            for (int i = 0; i < dim; i++) {
                int k = q * dim + i;
                dxTerms[k] = Math.abs((double) rs[q] * w[i] * g[k]) + kAbs * Math.abs(x[k])
                        + (dx0 == null ? 0 : Math.abs(dx0[k]));
                dwTerms[i] += Math.abs((double) g[k] * x[k] * rs[q]);
            }
        }
        for (int i = 0; i < dim; i++) {
            dwTerms[i] += Math.abs(dw0[i]);
        }
    }

    static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }
}
