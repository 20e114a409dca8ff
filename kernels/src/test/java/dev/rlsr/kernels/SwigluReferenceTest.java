package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link SwigluReference} against double formulas. Error budget of the fp32 code (first order, u = 2^-24): exp within
 * 1 ulp (2u) plus the roundings of 1 + e and of the division make sigmoid good to 4u relative; h = (x*sig)*u and
 * du = dh*(x*sig) add two roundings: 6u relative. dg = (dh*u) * (sig*(1 + x*(1 - sig))) cancels near the minimum of
 * silu (x ~ -1.28), so its bound is absolute: 8u * |dh*u| * sig * (1 + 2|x|), the sigmoid error times
 * |d/dsig (sig*(1 + x - x*sig))| &lt;= 1 + 2|x| plus the four roundings of the product chain. bf16: the same
 * plus half a bf16 ulp (2^-8 relative). Below x = -88.7, exp(-x) overflows fp32 and sig is 0 instead of ~e^x: the
 * results are 0 where the exact values are below 1e-36 in magnitude, hence an absolute floor of 1e-35 * |u| (or
 * |dh| or |dh*u|).
 */
class SwigluReferenceTest {
    private static final double U = 0x1p-24;
    /** Absolute floor where exp(-x) overflows (x &lt; -88.7): the exact results are below 1e-36 there. */
    private static final double FLOOR = 1e-35;

    static float[] inputs(Random r, int n) {
        float[] g = GpuSupport.randn(r, n, 3f);
        if (n > 6) {
            g[0] = 30f;
            g[1] = -30f;
            g[2] = -1.2785f; // next to silu's minimum: the derivative cancels
            g[3] = 0f;
            g[4] = 90f;
            g[5] = -90f; // exp(90) overflows fp32: sig = 0
        }
        return g;
    }

    @Test
    void forwardAndBackwardMatchDoubleFormulas() {
        Random r = new Random(31);
        for (int n : new int[] {1, 7, 33, 4097, 20_011}) {
            float[] g = inputs(r, n + 2), u = GpuSupport.randn(r, n + 1, 2f), dh = GpuSupport.randn(r, n, 1f);
            float[] h = new float[n], dg = new float[n + 3], du = new float[n];
            SwigluReference.forward(g, 2, u, 1, h, 0, n);
            SwigluReference.backward(g, 2, u, 1, dh, 0, dg, 3, du, 0, n);
            short[] gb = Bf16Exact.nearest(g), ub = Bf16Exact.nearest(u), dhb = Bf16Exact.nearest(dh);
            short[] hb = new short[n], dgb = new short[n], dub = new short[n];
            SwigluReference.forward(gb, 2, ub, 1, hb, 0, n);
            SwigluReference.backward(gb, 2, ub, 1, dhb, 0, dgb, 0, dub, 0, n);
            for (int i = 0; i < n; i++) {
                check("n=" + n + " i=" + i, g[2 + i], u[1 + i], dh[i], h[i], dg[3 + i], du[i], 0);
                check("bf16 n=" + n + " i=" + i, (float) Bf16Exact.value(gb[2 + i]), (float) Bf16Exact.value(ub[1 + i]),
                        (float) Bf16Exact.value(dhb[i]), (float) Bf16Exact.value(hb[i]),
                        (float) Bf16Exact.value(dgb[i]), (float) Bf16Exact.value(dub[i]), 0x1p-8);
            }
        }
    }

    private static void check(String where, float x, float up, float d, float h, float dg, float du, double round) {
        double sig = 1.0 / (1.0 + Math.exp(-(double) x));
        double silu = x * sig;
        double eh = silu * up, edu = d * silu;
        double edg = d * (double) up * sig * (1 + x * (1 - sig));
        assertEquals(eh, h, (6 * U + round) * Math.abs(eh) + FLOOR * Math.abs(up), "h " + where);
        assertEquals(edu, du, (6 * U + round) * Math.abs(edu) + FLOOR * Math.abs(d), "du " + where);
        double scale = Math.abs(d * (double) up) * sig * (1 + 2 * Math.abs(x));
        assertEquals(edg, dg, 8 * U * scale + round * Math.abs(edg) + FLOOR * Math.abs(d * (double) up), "dg " + where);
    }
}
