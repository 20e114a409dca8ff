package dev.rlsr.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Vector API kernels for the hot loops of the CPU backend (dot, axpy, max, exp-sum). */
public final class CpuVec {
    /** The platform's preferred float vector shape (e.g. 16 lanes with AVX-512). */
    public static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Lanes of {@link #S}. */
    public static final int L = S.length();

    private CpuVec() {}

    /**
     * Dot product of {@code a[ao, ao+n)} and {@code b[bo, bo+n)}, in float lanes.
     *
     * @param a  first vector's array
     * @param ao its first element
     * @param b  second vector's array
     * @param bo its first element
     * @param n  elements
     * @return the dot product
     */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        int i = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (int ub = S.loopBound(n); i < ub; i += L) {
                acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
            }
            s = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            s += a[ao + i] * b[bo + i];
        }
        return s;
    }

    /**
     * {@code y += alpha * x} over n elements.
     *
     * @param alpha the scale
     * @param x     source array
     * @param xo    its first element
     * @param y     destination array, updated
     * @param yo    its first element
     * @param n     elements
     */
    public static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        if (n >= L) {
            FloatVector va = FloatVector.broadcast(S, alpha);
            for (int ub = S.loopBound(n); i < ub; i += L) {
                FloatVector.fromArray(S, x, xo + i).fma(va, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
            }
        }
        for (; i < n; i++) {
            y[yo + i] += alpha * x[xo + i];
        }
    }

    /**
     * {@code y = alpha * x} over n elements.
     *
     * @param alpha the scale
     * @param x     source array
     * @param xo    its first element
     * @param y     destination array, overwritten
     * @param yo    its first element
     * @param n     elements
     */
    public static void scaleInto(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        FloatVector va = FloatVector.broadcast(S, alpha);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            FloatVector.fromArray(S, x, xo + i).mul(va).intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            y[yo + i] = alpha * x[xo + i];
        }
    }

    /**
     * Largest of {@code a[ao, ao+n)}.
     *
     * @param a  the array
     * @param ao first element
     * @param n  elements
     * @return the maximum, -infinity for n = 0
     */
    public static float max(float[] a, int ao, int n) {
        int i = 0;
        float m = Float.NEGATIVE_INFINITY;
        if (n >= L) {
            FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (int ub = S.loopBound(n); i < ub; i += L) {
                acc = acc.max(FloatVector.fromArray(S, a, ao + i));
            }
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) {
            m = Math.max(m, a[ao + i]);
        }
        return m;
    }

    /**
     * {@code sum(exp(a - shift))} accumulated in float lanes, then double.
     *
     * @param a     the array
     * @param ao    first element
     * @param n     elements
     * @param shift subtracted before the exponential (the row maximum, for a stable softmax)
     * @return the sum
     */
    public static double sumExp(float[] a, int ao, int n, float shift) {
        int i = 0;
        double s = 0;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            FloatVector vs = FloatVector.broadcast(S, shift);
            for (int ub = S.loopBound(n); i < ub; i += L) {
                acc = acc.add(FloatVector.fromArray(S, a, ao + i).sub(vs).lanewise(VectorOperators.EXP));
            }
            s = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            s += Math.exp(a[ao + i] - shift);
        }
        return s;
    }

    /**
     * {@code out = scale * exp(a - shift)} over n elements; {@code out} may alias {@code a}.
     *
     * @param a     source array
     * @param ao    its first element
     * @param out   destination array
     * @param oo    its first element
     * @param n     elements
     * @param shift subtracted before the exponential
     * @param scale multiplies the exponential
     */
    public static void expScaled(float[] a, int ao, float[] out, int oo, int n, float shift, float scale) {
        int i = 0;
        FloatVector vs = FloatVector.broadcast(S, shift);
        FloatVector vc = FloatVector.broadcast(S, scale);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            FloatVector.fromArray(S, a, ao + i).sub(vs).lanewise(VectorOperators.EXP).mul(vc).intoArray(out, oo + i);
        }
        for (; i < n; i++) {
            out[oo + i] = scale * (float) Math.exp(a[ao + i] - shift);
        }
    }

    /**
     * Sum of squares of {@code a[ao, ao+n)}, in float lanes.
     *
     * @param a  the array
     * @param ao first element
     * @param n  elements
     * @return the sum of squares
     */
    public static float sumSquares(float[] a, int ao, int n) {
        int i = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (int ub = S.loopBound(n); i < ub; i += L) {
                FloatVector v = FloatVector.fromArray(S, a, ao + i);
                acc = v.fma(v, acc);
            }
            s = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            s += a[ao + i] * a[ao + i];
        }
        return s;
    }
}
