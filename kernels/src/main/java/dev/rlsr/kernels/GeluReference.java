package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * CPU reference and CPU implementation of {@link Gelu}: the CPU backend's exact GELU, {@code x * Phi(x)} with
 * {@code erfc} from the Chebyshev fit of Numerical Recipes (erfcc: fractional error below 1.2e-7 for every argument,
 * one exp, so it vectorises), {@code Phi = 1 - erfc(|x|/sqrt2)/2} for x &gt;= 0 and {@code erfc(|x|/sqrt2)/2} below,
 * which keeps the negative side free of cancellation. The bf16 variant widens x and rounds out.
 */
public final class GeluReference {
    private static final float[] ERFC_P = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
            0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
    private static final float INV_SQRT2 = (float) (1.0 / Math.sqrt(2.0));

    private GeluReference() {
    }

    /**
     * {@code out = x * Phi(x)} element-wise on views; {@code out} may be {@code x} at the same offset.
     *
     * @param x      input at {@code xOff}
     * @param xOff   offset of x
     * @param out    output at {@code outOff}
     * @param outOff offset of out
     * @param n      elements
     */
    public static void forward(float[] x, int xOff, float[] out, int outOff, int n) {
        Rows.checkPositive("n", n);
        Rows.checkRange("x", x.length, xOff, n, "(n)");
        Rows.checkRange("out", out.length, outOff, n, "(n)");
        int shift = outOff - xOff;
        CpuParallel.forRange(n, 1 << 13, (lo0, hi0) -> {
            int lo = xOff + lo0, hi = xOff + hi0;
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f), half = FloatVector.broadcast(S, 0.5f);
            FloatVector rs2 = FloatVector.broadcast(S, INV_SQRT2);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, i);
                FloatVector z = v.abs().mul(rs2);
                FloatVector t = one.div(z.fma(half, one));
                FloatVector p = FloatVector.broadcast(S, ERFC_P[9]);
                for (int j = 8; j >= 0; j--) {
                    p = p.fma(t, FloatVector.broadcast(S, ERFC_P[j]));
                }
                // Phi(x) = 1 - erfc(z)/2 for x >= 0 and erfc(z)/2 below: no cancellation on the negative side
                FloatVector he = t.mul(CpuVec.exp(z.mul(z).neg().add(p))).mul(half);
                FloatVector phi = one.sub(he).blend(he, v.compare(VectorOperators.LT, 0f));
                v.mul(phi).intoArray(out, i + shift);
            }
            for (; i < hi; i++) {
                float v = x[i];
                float he = 0.5f * erfc(Math.abs(v) * INV_SQRT2);
                out[i + shift] = v * (v < 0f ? he : 1f - he);
            }
        });
    }

    /**
     * bf16 (raw bits) in and out (rounded once); {@code out} may be {@code x} at the same offset.
     *
     * @param x      input at {@code xOff}
     * @param xOff   offset of x
     * @param out    output at {@code outOff}
     * @param outOff offset of out
     * @param n      elements
     */
    public static void forward(short[] x, int xOff, short[] out, int outOff, int n) {
        Rows.checkPositive("n", n);
        Rows.checkRange("x", x.length, xOff, n, "(n)");
        Rows.checkRange("out", out.length, outOff, n, "(n)");
        float[] o = new float[n];
        forward(RmsNormReference.widen(x, xOff, n), 0, o, 0, n);
        RmsNormReference.narrow(o, out, outOff);
    }

    // erfc(z), z >= 0, by the Chebyshev fit of Numerical Recipes (erfcc)
    private static float erfc(float z) {
        float t = 1f / (1f + 0.5f * z);
        float p = ERFC_P[9];
        for (int j = 8; j >= 0; j--) {
            p = p * t + ERFC_P[j];
        }
        return t * CpuVec.exp(-z * z + p);
    }
}
