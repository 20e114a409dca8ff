package dev.rlsr.kernels;

import static dev.rlsr.kernels.Near.assertNear;
import static dev.rlsr.kernels.Near.embed;
import static dev.rlsr.kernels.Near.slice;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link AdamWReference} against torch's AdamW in double. Tolerance: rtol 1e-6 of the size of each value's terms
 * (e.g. {@code |p (1 - lr wd)| + |lr/bc1 * m/(sqrt(v)/sqrt(bc2) + eps)|}): each fp32 result is a handful of correctly
 * rounded operations (2^-24 each).
 */
class AdamWReferenceTest {
    private static final double RTOL = 1e-6;
    private static final float LR = 3e-4f, B1 = 0.9f, B2 = 0.95f, EPS = 1e-8f, WD = 0.1f;

    @Test
    void matchesTorchAdamWInDouble() {
        int n = 10_007, decayEnd = 6000, step = 7;
        long seed = 11;
        Random r = new Random(seed);
        float[] p = Near.randn(r, n, 1), g = Near.randn(r, n, 1), m = Near.randn(r, n, 0.1f), v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) Math.abs(r.nextGaussian() * 0.01);
        }
        double bc1 = 1 - Math.pow(B1, step), bc2 = 1 - Math.pow(B2, step);
        float scale = 0.6f;
        double[] ep = new double[n], sp = new double[n], em = new double[n], sm = new double[n], ev = new double[n],
                sv = new double[n];
        for (int i = 0; i < n; i++) {
            double gi = (double) g[i] * scale;
            double pd = i < decayEnd ? p[i] * (1 - (double) LR * WD) : p[i];
            em[i] = B1 * (double) m[i] + (1 - (double) B1) * gi;
            sm[i] = Math.abs(B1 * (double) m[i]) + Math.abs((1 - (double) B1) * gi);
            ev[i] = B2 * (double) v[i] + (1 - (double) B2) * gi * gi;
            sv[i] = Math.abs(ev[i]);
            double upd = LR / bc1 * em[i] / (Math.sqrt(ev[i]) / Math.sqrt(bc2) + EPS);
            ep[i] = pd - upd;
            sp[i] = Math.abs(pd) + Math.abs(upd);
        }
        float[] pv = embed(p, 1), gv = embed(g, 2), mv = embed(m, 3), vv = embed(v, 4);
        short[] copy = new short[n + 5];
        AdamWReference.step(pv, 1, gv, 2, mv, 3, vv, 4, copy, 5, n, decayEnd, scale, LR, B1, B2, EPS, WD, bc1, bc2);
        assertNear("param", seed, ep, sp, slice(pv, 1, n), RTOL);
        assertNear("m", seed, em, sm, slice(mv, 3, n), RTOL);
        assertNear("v", seed, ev, sv, slice(vv, 4, n), RTOL);
        for (int i = 0; i < n; i++) {
            assertEquals(BF16.fromFloat(pv[1 + i]), copy[5 + i], "compute copy = the updated weight rounded to bf16");
        }
        assertArrayEquals(g, slice(gv, 2, n), "the gradient is not modified");
    }

    @Test
    void clipScaleEqualsPreScaledGradients() {
        // GradClip scales the gradients before the step; the kernel scales them on the fly: the same fp32 products
        int n = 333;
        Random r = new Random(12);
        float[] p = Near.randn(r, n, 1), g = Near.randn(r, n, 1), m = new float[n], v = new float[n];
        float scale = 0.3f;
        float[] p2 = p.clone(), g2 = g.clone(), m2 = m.clone(), v2 = v.clone();
        for (int i = 0; i < n; i++) {
            g2[i] *= scale;
        }
        AdamWReference.step(p, 0, g, 0, m, 0, v, 0, null, 0, n, n, scale, LR, B1, B2, EPS, WD, 0.1, 0.05);
        AdamWReference.step(p2, 0, g2, 0, m2, 0, v2, 0, null, 0, n, n, 1f, LR, B1, B2, EPS, WD, 0.1, 0.05);
        assertArrayEquals(p2, p);
        assertArrayEquals(m2, m);
        assertArrayEquals(v2, v);
    }
}
