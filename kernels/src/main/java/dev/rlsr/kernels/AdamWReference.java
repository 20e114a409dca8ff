package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuParallel;

/**
 * CPU reference and CPU implementation of {@link AdamWKernel}: the CPU backend's AdamW (torch.optim.AdamW, the same
 * fp32 operations in the same order), generalised to views, a decayed prefix {@code [0, decayEnd)}, a gradient factor
 * (the clip scale; 1 leaves every gradient exactly as it is) and an optional bf16 compute copy.
 */
public final class AdamWReference {
    private AdamWReference() {
    }

    /**
     * One step over {@code n} elements of the views, in place.
     *
     * @param p               master weights at {@code pOff}
     * @param pOff            offset of p
     * @param g               gradients at {@code gOff}
     * @param gOff            offset of g
     * @param m               first moments at {@code mOff}
     * @param mOff            offset of m
     * @param v               second moments at {@code vOff}
     * @param vOff            offset of v
     * @param copy            bf16 bits receiving the updated weights at {@code cOff}, or null
     * @param cOff            offset of copy
     * @param n               elements
     * @param decayEnd        weight decay applies to elements [0, decayEnd) (clamped to [0, n])
     * @param clipScale       factor applied to every gradient (1 = none)
     * @param lr              learning rate
     * @param beta1           first-moment decay
     * @param beta2           second-moment decay
     * @param eps             added to the root of the second moment
     * @param weightDecay     decoupled weight decay
     * @param biasCorrection1 {@code 1 - beta1^step}, &gt; 0
     * @param biasCorrection2 {@code 1 - beta2^step}, &gt; 0
     */
    public static void step(float[] p, int pOff, float[] g, int gOff, float[] m, int mOff, float[] v, int vOff,
            short[] copy, int cOff, int n, long decayEnd, float clipScale, float lr, float beta1, float beta2, float eps,
            float weightDecay, double biasCorrection1, double biasCorrection2) {
        Rows.checkPositive("n", n);
        Rows.checkRange("param", p.length, pOff, n, "(n)");
        Rows.checkRange("grad", g.length, gOff, n, "(n)");
        Rows.checkRange("m", m.length, mOff, n, "(n)");
        Rows.checkRange("v", v.length, vOff, n, "(n)");
        if (copy != null) {
            Rows.checkRange("copy", copy.length, cOff, n, "(n)");
        }
        if (!(biasCorrection1 > 0) || !(biasCorrection2 > 0)) {
            throw new IllegalArgumentException("bias corrections must be > 0 (step >= 1): " + biasCorrection1 + ", "
                    + biasCorrection2);
        }
        int split = (int) Math.max(0, Math.min(n, decayEnd));
        float decay = 1f - lr * weightDecay;
        float b1 = beta1, b2 = beta2;
        float stepSize = (float) (lr / biasCorrection1);
        float bc2Sqrt = (float) Math.sqrt(biasCorrection2);
        CpuParallel.forRange(n, 1 << 14, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                float gi = g[gOff + i] * clipScale;
                float pi = i < split ? p[pOff + i] * decay : p[pOff + i];
                float mi = m[mOff + i] + (gi - m[mOff + i]) * (1f - b1);
                float vi = v[vOff + i] * b2 + (1f - b2) * gi * gi;
                m[mOff + i] = mi;
                v[vOff + i] = vi;
                float np = pi - stepSize * (mi / ((float) Math.sqrt(vi) / bc2Sqrt + eps));
                p[pOff + i] = np;
                if (copy != null) {
                    copy[cOff + i] = BF16.fromFloat(np);
                }
            }
        });
    }
}
