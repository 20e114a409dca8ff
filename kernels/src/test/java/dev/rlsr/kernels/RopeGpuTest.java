package dev.rlsr.kernels;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * rope.cu vs {@link RopeReference}.
 *
 * <p>table: the fp32 angle is the same product on both sides; CUDA's cosf/sinf are within 2 ulp of the exact value
 * and the reference within half an ulp (double cos rounded to float), so |gpu - ref| &lt;= 2.5 ulp(ref). Positions up
 * to 131072 (angles of 10^5 radians, where fast intrinsics would be far off), theta 10^4 and 10^6, D = 2 to 128.
 *
 * <p>apply: per element the device computes fmaf(x1, c, -(x2*s)), the reference x1*c - x2*s with both products
 * rounded; with T = |x1*c| + |x2*s| each side is within 2 u T of the exact value (u = 2^-24), so the tolerance is
 * 4 u T; bf16 adds one rounding of each side's fp32 result to 8 bits, which can land on neighbouring bf16 values:
 * + 2^-7 |ref|. Heads of Qwen2.5-0.5B (14 query, 2 kv heads of D = 64), odd shapes (D = 6: one-column path), rows in
 * a wider buffer (fused-QKV stride) and shifted views (one-column path), forward and inverse, and the inverse of the
 * forward giving back x (within two roundings). Elements between rows must keep their bits.
 */
@Tag("gpu")
class RopeGpuTest {
    private static final double U = 0x1p-24;

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void tableWithin2Point5UlpOfTheReference() {
        for (double theta : new double[] {10_000.0, 1_000_000.0}) {
            for (int dim : new int[] {2, 6, 64, 128}) {
                int n = 333, half = dim / 2;
                long seed = 1100L + dim + (long) theta;
                Random r = new Random(seed);
                int[] pos = new int[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = i < 5 ? i : (i % 4 == 0 ? r.nextInt(131072) : r.nextInt(8192));
                }
                float[] inv = RopeReferenceTest.invFreq(half, theta);
                float[] want = new float[n * dim];
                RopeReference.table(pos, 0, n, inv, 0, half, want, 0);
                double[] tol = new double[want.length];
                for (int k = 0; k < tol.length; k++) {
                    tol[k] = 2.5 * Math.ulp(want[k]);
                }
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    DeviceArrays.Buf p = DeviceArrays.upload(m, pos, 0);
                    DeviceArrays.Buf f = DeviceArrays.upload(m, inv, 4);
                    DeviceArrays.Buf t = DeviceArrays.poisoned(m, 4L * n * dim, 4);
                    Rope.table(p.addr(), n, f.addr(), dim, t.addr(), 0);
                    String what = "rope table theta=" + theta + " D=" + dim;
                    DeviceArrays.assertWithin(what, seed, want, t.f32(), tol);
                    t.assertGuards(what);
                }
            }
        }
    }

    /** {n, heads, dim, extra row stride, view shift in elements}. */
    private static final int[][] APPLY = {{1, 1, 2, 0, 0}, {7, 3, 6, 0, 0}, {33, 14, 64, 0, 0}, {33, 2, 64, 0, 1},
            {65, 14, 64, 4 * 64, 0}, {9, 2, 128, 8, 0}, {5, 3, 64, 3, 0}, {17, 1, 16, 0, 3}};

    @Test
    void applyForwardAndInverse() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int[] s : APPLY) {
                int n = s[0], heads = s[1], dim = s[2], stride = heads * dim + s[3], shift = s[4], half = dim / 2;
                long seed = 1200L + 7 * n + heads + dim;
                Random r = new Random(seed);
                int[] pos = new int[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = r.nextInt(32768);
                }
                float[] table = new float[n * dim];
                RopeReference.table(pos, 0, n, RopeReferenceTest.invFreq(half, 1_000_000.0), 0, half, table, 0);
                int len = (n - 1) * stride + heads * dim;
                float[] x = DeviceArrays.held(GpuSupport.randn(r, len, 1.5f), dt);
                for (boolean inverse : new boolean[] {false, true}) {
                    float[] want = reference(x, stride, table, n, heads, dim, inverse, dt);
                    double[] tol = tolerance(x, want, stride, table, n, heads, dim, dt);
                    String what = "rope apply " + dt + " n=" + n + " heads=" + heads + " D=" + dim + " stride=" + stride
                            + " shift " + shift + " inverse=" + inverse;
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf dx = DeviceArrays.upload(m, x, dt, shift * dt.bytes());
                        DeviceArrays.Buf dtab = DeviceArrays.upload(m, table, 0);
                        Rope.apply(dx.addr(), dt, n, heads, dim, stride, dtab.addr(), inverse, 0);
                        DeviceArrays.assertWithin(what, seed, want, dx.floats(dt), tol);
                        dx.assertGuards(what);
                        // and back: the inverse rotation undoes the forward up to the rounding of both
                        Rope.apply(dx.addr(), dt, n, heads, dim, stride, dtab.addr(), !inverse, 0);
                        double[] back = roundTripTolerance(x, stride, n, heads, dim, dt);
                        DeviceArrays.assertWithin(what + " then back", seed, x, dx.floats(dt), back);
                    }
                }
            }
        }
    }

    private static float[] reference(float[] x, int stride, float[] table, int n, int heads, int dim, boolean inverse,
            DType dt) {
        if (dt == DType.F32) {
            float[] y = x.clone();
            RopeReference.apply(y, 0, stride, table, 0, n, heads, dim, inverse);
            return y;
        }
        short[] y = BF16.fromFloat(x);
        RopeReference.apply(y, 0, stride, table, 0, n, heads, dim, inverse);
        return BF16.toFloat(y);
    }

    /**
     * Two rotations of the pair (x1, x2), each within 2u(|x1| + |x2|) (fp32) or within half a bf16 ulp of that after
     * its rounding: 6u(|x1| + |x2|), or 2^-7 (|x1| + |x2|) for bf16; 0 between rows.
     */
    private static double[] roundTripTolerance(float[] x, int stride, int n, int heads, int dim, DType dt) {
        double[] tol = new double[x.length];
        int half = dim / 2;
        double f = dt == DType.F32 ? 6 * U : 0x1p-7;
        for (int row = 0; row < n; row++) {
            for (int h = 0; h < heads; h++) {
                int b = row * stride + h * dim;
                for (int i = 0; i < half; i++) {
                    double t = Math.abs(x[b + i]) + Math.abs(x[b + half + i]);
                    tol[b + i] = f * t;
                    tol[b + half + i] = f * t;
                }
            }
        }
        return tol;
    }

    private static double[] tolerance(float[] x, float[] want, int stride, float[] table, int n, int heads, int dim,
            DType dt) {
        double[] tol = new double[x.length]; // 0 between rows: those elements must keep their bits
        int half = dim / 2;
        for (int row = 0; row < n; row++) {
            for (int h = 0; h < heads; h++) {
                int b = row * stride + h * dim;
                for (int i = 0; i < half; i++) {
                    double c = Math.abs(table[row * dim + i]), s = Math.abs(table[row * dim + half + i]);
                    double x1 = Math.abs(x[b + i]), x2 = Math.abs(x[b + half + i]);
                    tol[b + i] = 4 * U * (x1 * c + x2 * s);
                    tol[b + half + i] = 4 * U * (x2 * c + x1 * s);
                    if (dt == DType.BF16) {
                        tol[b + i] += 0x1p-7 * Math.abs(want[b + i]);
                        tol[b + half + i] += 0x1p-7 * Math.abs(want[b + half + i]);
                    }
                }
            }
        }
        return tol;
    }
}
