package dev.rlsr.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels for the hot loops of the CPU backend (dot, axpy, max, exp-sum), and the two operations whose
 * Vector API forms are not reproducible: {@link #sum(FloatVector)} and {@link #exp(FloatVector)}.
 *
 * <p><b>Reproducibility.</b> A Vector API operation runs as Java code (one lane at a time) until C2 compiles its
 * loop, and as the compiled instructions after; a run's numbers must not depend on when that happens. Lane-wise
 * add, mul, div, fma, min/max, compare and blend give the same bits either way (IEEE rounding of each lane).
 * Two do not (measured on JDK 25, AVX-512): {@code reduceLanes(ADD)} adds the lanes in one order in Java and in
 * another when compiled, and {@code lanewise(EXP)} is {@code (float) Math.exp} per lane in Java but a vectorised
 * approximation when compiled (1 ulp apart on about 1% of arguments). The CPU backend therefore uses {@link #sum(FloatVector)} (a
 * fixed pairwise tree written with lane-wise adds) and {@link #exp(FloatVector)} (range reduction and a polynomial
 * written with lane-wise fma), whose scalar twin {@link #exp(float)} gives the same bits, so a vector loop's scalar
 * tail agrees with its lanes.
 */
public final class CpuVec {
    /** The platform's preferred float vector shape (e.g. 16 lanes with AVX-512). */
    public static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Lanes of {@link #S}. */
    public static final int L = S.length();

    /** Shuffles of {@link #sum(FloatVector)}: lane i takes lane i ^ h for h = L/2, L/4, ..., 1. */
    private static final VectorShuffle<Float>[] HALVES = halves();

    // exp: x = n ln2 + r with n = round(x log2e), |r| <= ln2/2 (Cody-Waite: ln2 in two parts, the first exact in
    // 9 bits so that n * LN2_HI is exact); exp(r) = 1 + r + r^2 P(r), P the Cephes expf polynomial (relative error
    // below 2e-7 on the reduced range); 2^n is applied as two factors so that n = -150..128 needs no special case
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer (to nearest even). */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    /** Below: exp underflows to 0 (exp(-104) is half the smallest subnormal). */
    private static final float EXP_LO = -104f;
    /** Above: exp overflows to infinity (exp(89) > Float.MAX_VALUE). */
    private static final float EXP_HI = 89f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    private CpuVec() {}

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] halves() {
        int steps = Integer.numberOfTrailingZeros(L);
        VectorShuffle<Float>[] out = new VectorShuffle[steps];
        for (int s = 0, h = L / 2; h >= 1; s++, h /= 2) {
            int hh = h;
            out[s] = VectorShuffle.fromOp(S, i -> i ^ hh);
        }
        return out;
    }

    /**
     * Sum of the lanes of {@code v} in a fixed order (a pairwise tree: lane i plus lane i + L/2, then the halves of
     * that, ...), the same bits whether the code is interpreted or compiled, unlike {@code reduceLanes(ADD)}.
     *
     * @param v the vector
     * @return the sum of its lanes
     */
    public static float sum(FloatVector v) {
        for (VectorShuffle<Float> h : HALVES) {
            v = v.add(v.rearrange(h));
        }
        return v.lane(0);
    }

    /**
     * {@code exp} of each lane, within 2 ulp of the exact value (the range reduction and the Cephes polynomial), the
     * same bits interpreted and compiled and the same bits as {@link #exp(float)} lane by lane. Overflows to
     * infinity above about 88.72, underflows through the subnormals to 0 below about -103.97; NaN stays NaN.
     *
     * @param x the arguments
     * @return exp of each lane
     */
    public static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(EXP_LO).min(EXP_HI);
        FloatVector t = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND));
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(FloatVector.broadcast(S, P0), FloatVector.broadcast(S, P1));
        p = p.fma(r, FloatVector.broadcast(S, P2));
        p = p.fma(r, FloatVector.broadcast(S, P3));
        p = p.fma(r, FloatVector.broadcast(S, P4));
        p = p.fma(r, FloatVector.broadcast(S, P5));
        FloatVector e = p.fma(r.mul(r), r).add(1f);
        // 2^n as 2^(n>>1) * 2^(n - (n>>1)), each factor a normal float for n in [-150, 128]
        IntVector ni = ((IntVector) t.reinterpretAsInts()).sub(ROUND_BITS);
        IntVector n1 = ni.lanewise(VectorOperators.ASHR, 1);
        IntVector n2 = ni.sub(n1);
        FloatVector s1 = n1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = n2.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return e.mul(s1).mul(s2);
    }

    /**
     * The scalar twin of {@link #exp(FloatVector)}: the same operations on one float, hence the same bits.
     *
     * @param x the argument
     * @return exp(x), within 2 ulp
     */
    public static float exp(float x) {
        float xc = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float t = Math.fma(xc, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, xc);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float e = Math.fma(p, r * r, r) + 1f;
        int ni = Float.floatToRawIntBits(t) - ROUND_BITS;
        int n1 = ni >> 1;
        int n2 = ni - n1;
        return e * Float.intBitsToFloat((n1 + 127) << 23) * Float.intBitsToFloat((n2 + 127) << 23);
    }

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
            s = sum(acc);
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
                acc = acc.add(exp(FloatVector.fromArray(S, a, ao + i).sub(vs)));
            }
            s = sum(acc);
        }
        for (; i < n; i++) {
            s += exp(a[ao + i] - shift);
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
            exp(FloatVector.fromArray(S, a, ao + i).sub(vs)).mul(vc).intoArray(out, oo + i);
        }
        for (; i < n; i++) {
            out[oo + i] = scale * exp(a[ao + i] - shift);
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
            s = sum(acc);
        }
        for (; i < n; i++) {
            s += a[ao + i] * a[ao + i];
        }
        return s;
    }
}
