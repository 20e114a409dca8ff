package dev.rlsr.kernels;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * swiglu.cu vs {@link SwigluReference}, sizes 1 to 65539, inputs with large |g| (30, 90: the saturated sigmoid and
 * exp overflow) and g next to silu's minimum, views on and off 16-byte boundaries, every allowed in-place form.
 *
 * <p>Tolerances (u = 2^-24): the device's expf is within 2 ulp, the reference's exp within 1 ulp; with the roundings
 * of 1 + e, the division and the two products, h and du are within 8u (device) and 6u (reference) relative of the
 * exact value: rtol 14u (8.3e-7). dg cancels near silu's minimum; its bound is absolute,
 * 16u * |dh*u| * sig * (1 + 2|g|) (sigmoid error times |d/dsig| &lt;= 1 + 2|g|, plus the product chain's roundings;
 * the device's fmaf in 1 + g(1 - sig) only makes it smaller). Where exp(-g) overflows (g &lt; -88.7) both give 0 for
 * values below 1e-36: absolute floor 1e-35 * |u| (|dh|, |dh*u|). bf16: plus 2^-7 |ref|, the two fp32 results
 * rounding to neighbouring bf16 values.
 */
@Tag("gpu")
class SwigluGpuTest {
    private static final double U = 0x1p-24;
    private static final double FLOOR = 1e-35;
    private static final int[] SIZES = {1, 7, 33, 4097, 65539};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    private record Case(long seed, float[] g, float[] u, float[] dh) {
    }

    private static Case make(int n, DType dt) {
        long seed = 1300L + n;
        Random r = new Random(seed);
        return new Case(seed, DeviceArrays.held(SwigluReferenceTest.inputs(r, n), dt),
                DeviceArrays.held(GpuSupport.randn(r, n, 2f), dt), DeviceArrays.held(GpuSupport.randn(r, n, 1f), dt));
    }

    @Test
    void forward() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int n : SIZES) {
                Case c = make(n, dt);
                float[] want = new float[n];
                float[] dgRef = new float[n], duRef = new float[n];
                references(c, dt, want, dgRef, duRef);
                double[] tol = new double[n];
                for (int i = 0; i < n; i++) {
                    tol[i] = 14 * U * Math.abs(want[i]) + FLOOR * Math.abs(c.u()[i])
                            + (dt == DType.BF16 ? 0x1p-7 * Math.abs(want[i]) : 0);
                }
                int e = dt.bytes();
                // {g, u, h} shifts in elements: co-aligned (vector path after a head), misaligned (scalar path)
                for (int[] sh : new int[][] {{0, 0, 0}, {5, 5, 5}, {1, 0, 0}}) {
                    String what = "swiglu " + dt + " n=" + n + " shifts " + java.util.Arrays.toString(sh);
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf g = DeviceArrays.upload(m, c.g(), dt, sh[0] * e);
                        DeviceArrays.Buf u = DeviceArrays.upload(m, c.u(), dt, sh[1] * e);
                        DeviceArrays.Buf h = DeviceArrays.poisoned(m, (long) n * e, sh[2] * e);
                        Swiglu.forward(g.addr(), u.addr(), h.addr(), dt, n, 0);
                        DeviceArrays.assertWithin(what, c.seed(), want, h.floats(dt), tol);
                        h.assertGuards(what);
                        Swiglu.forward(g.addr(), u.addr(), g.addr(), dt, n, 0); // h = g
                        DeviceArrays.assertWithin(what + " over g", c.seed(), want, g.floats(dt), tol);
                        DeviceArrays.Buf g2 = DeviceArrays.upload(m, c.g(), dt, sh[0] * e);
                        Swiglu.forward(g2.addr(), u.addr(), u.addr(), dt, n, 0); // h = u
                        DeviceArrays.assertWithin(what + " over u", c.seed(), want, u.floats(dt), tol);
                    }
                }
            }
        }
    }

    @Test
    void backward() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int n : SIZES) {
                Case c = make(n, dt);
                float[] h = new float[n], wantDg = new float[n], wantDu = new float[n];
                references(c, dt, h, wantDg, wantDu);
                double[] tolDu = new double[n], tolDg = new double[n];
                for (int i = 0; i < n; i++) {
                    double x = c.g()[i], sig = 1.0 / (1.0 + Math.exp(-x)), du = Math.abs((double) c.dh()[i] * c.u()[i]);
                    double bf = dt == DType.BF16 ? 0x1p-7 : 0;
                    tolDu[i] = (14 * U + bf) * Math.abs(wantDu[i]) + FLOOR * Math.abs(c.dh()[i]);
                    tolDg[i] = 16 * U * du * sig * (1 + 2 * Math.abs(x)) + bf * Math.abs(wantDg[i]) + FLOOR * du;
                }
                int e = dt.bytes();
                for (int[] sh : new int[][] {{0, 0, 0, 0, 0}, {3, 3, 3, 3, 3}, {0, 1, 0, 0, 0}}) {
                    String what = "swiglu backward " + dt + " n=" + n + " shifts " + java.util.Arrays.toString(sh);
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf g = DeviceArrays.upload(m, c.g(), dt, sh[0] * e);
                        DeviceArrays.Buf u = DeviceArrays.upload(m, c.u(), dt, sh[1] * e);
                        DeviceArrays.Buf dh = DeviceArrays.upload(m, c.dh(), dt, sh[2] * e);
                        DeviceArrays.Buf dg = DeviceArrays.poisoned(m, (long) n * e, sh[3] * e);
                        DeviceArrays.Buf du = DeviceArrays.poisoned(m, (long) n * e, sh[4] * e);
                        Swiglu.backward(g.addr(), u.addr(), dh.addr(), dg.addr(), du.addr(), dt, n, 0);
                        DeviceArrays.assertWithin(what + " dg", c.seed(), wantDg, dg.floats(dt), tolDg);
                        DeviceArrays.assertWithin(what + " du", c.seed(), wantDu, du.floats(dt), tolDu);
                        dg.assertGuards(what + " dg");
                        du.assertGuards(what + " du");
                        // in place: dg over g and du over u, then dg over dh and du over g (fresh copies)
                        Swiglu.backward(g.addr(), u.addr(), dh.addr(), g.addr(), u.addr(), dt, n, 0);
                        DeviceArrays.assertWithin(what + " dg over g", c.seed(), wantDg, g.floats(dt), tolDg);
                        DeviceArrays.assertWithin(what + " du over u", c.seed(), wantDu, u.floats(dt), tolDu);
                        DeviceArrays.Buf g2 = DeviceArrays.upload(m, c.g(), dt, sh[0] * e);
                        DeviceArrays.Buf u2 = DeviceArrays.upload(m, c.u(), dt, sh[1] * e);
                        Swiglu.backward(g2.addr(), u2.addr(), dh.addr(), dh.addr(), g2.addr(), dt, n, 0);
                        DeviceArrays.assertWithin(what + " dg over dh", c.seed(), wantDg, dh.floats(dt), tolDg);
                        DeviceArrays.assertWithin(what + " du over g", c.seed(), wantDu, g2.floats(dt), tolDu);
                    }
                }
            }
        }
    }

    private static void references(Case c, DType dt, float[] h, float[] dg, float[] du) {
        int n = c.g().length;
        if (dt == DType.F32) {
            SwigluReference.forward(c.g(), 0, c.u(), 0, h, 0, n);
            SwigluReference.backward(c.g(), 0, c.u(), 0, c.dh(), 0, dg, 0, du, 0, n);
            return;
        }
        short[] gb = BF16.fromFloat(c.g()), ub = BF16.fromFloat(c.u()), db = BF16.fromFloat(c.dh());
        short[] hb = new short[n], dgb = new short[n], dub = new short[n];
        SwigluReference.forward(gb, 0, ub, 0, hb, 0, n);
        SwigluReference.backward(gb, 0, ub, 0, db, 0, dgb, 0, dub, 0, n);
        System.arraycopy(BF16.toFloat(hb), 0, h, 0, n);
        System.arraycopy(BF16.toFloat(dgb), 0, dg, 0, n);
        System.arraycopy(BF16.toFloat(dub), 0, du, 0, n);
    }
}
