package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import jdk.incubator.vector.FloatVector;

/**
 * CPU reference and CPU implementation of {@link LayerNorm}: the CPU backend's fp32 arithmetic (two passes, Vector
 * API lanes, rows in parallel) on views {@code (array, offset)}. The bf16 variant widens its inputs and rounds out.
 */
public final class LayerNormReference {
    private static final int ROW_GRAIN = 16;

    private LayerNormReference() {
    }

    /**
     * {@code out = (x - mean) * rs * w + b} per row of x (R,D), {@code rs = 1/sqrt(sum((x-mean)^2)/D + eps)};
     * {@code out} may be {@code x} at the same offset.
     *
     * @param x      input (R,D) at {@code xOff}
     * @param xOff   offset of x
     * @param w      weight (D) at {@code wOff}
     * @param wOff   offset of w
     * @param b      bias (D) at {@code bOff}
     * @param bOff   offset of b
     * @param eps    added to the variance
     * @param out    output (R,D) at {@code outOff}
     * @param outOff offset of out
     * @param rows   R
     * @param dim    D
     */
    public static void forward(float[] x, int xOff, float[] w, int wOff, float[] b, int bOff, float eps, float[] out,
            int outOff, int rows, int dim) {
        check(x.length, xOff, w.length, wOff, b.length, bOff, out.length, outOff, rows, dim);
        CpuParallel.forRange(rows, CpuParallel.grain(dim, ROW_GRAIN), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int xo = xOff + r * dim, oo = outOff + r * dim;
                float mean = sum(x, xo, dim) / dim;
                // two passes (mean, then squared deviations) as torch: no cancellation from E[x^2] - E[x]^2
                FloatVector vm = FloatVector.broadcast(S, mean);
                FloatVector acc = FloatVector.zero(S);
                int i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector d = FloatVector.fromArray(S, x, xo + i).sub(vm);
                    acc = d.fma(d, acc);
                }
                float ss = CpuVec.sum(acc);
                for (; i < dim; i++) {
                    float d = x[xo + i] - mean;
                    ss += d * d;
                }
                float rs = (float) (1.0 / Math.sqrt(ss / dim + eps));
                FloatVector vr = FloatVector.broadcast(S, rs);
                i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector.fromArray(S, x, xo + i).sub(vm).mul(vr).fma(FloatVector.fromArray(S, w, wOff + i),
                            FloatVector.fromArray(S, b, bOff + i)).intoArray(out, oo + i);
                }
                for (; i < dim; i++) {
                    out[oo + i] = (x[xo + i] - mean) * rs * w[wOff + i] + b[bOff + i];
                }
            }
        });
    }

    /**
     * bf16 (raw bits) x, w, b and out (rounded once); {@code out} may be {@code x} at the same offset.
     *
     * @param x      input (R,D) at {@code xOff}
     * @param xOff   offset of x
     * @param w      weight (D) at {@code wOff}
     * @param wOff   offset of w
     * @param b      bias (D) at {@code bOff}
     * @param bOff   offset of b
     * @param eps    added to the variance
     * @param out    output (R,D) at {@code outOff}
     * @param outOff offset of out
     * @param rows   R
     * @param dim    D
     */
    public static void forward(short[] x, int xOff, short[] w, int wOff, short[] b, int bOff, float eps, short[] out,
            int outOff, int rows, int dim) {
        check(x.length, xOff, w.length, wOff, b.length, bOff, out.length, outOff, rows, dim);
        int n = rows * dim;
        float[] o = new float[n];
        forward(RmsNormReference.widen(x, xOff, n), 0, RmsNormReference.widen(w, wOff, dim), 0,
                RmsNormReference.widen(b, bOff, dim), 0, eps, o, 0, rows, dim);
        RmsNormReference.narrow(o, out, outOff);
    }

    private static float sum(float[] x, int off, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            acc = acc.add(FloatVector.fromArray(S, x, off + i));
        }
        float s = CpuVec.sum(acc);
        for (; i < n; i++) {
            s += x[off + i];
        }
        return s;
    }

    private static void check(int xLen, int xOff, int wLen, int wOff, int bLen, int bOff, int outLen, int outOff,
            int rows, int dim) {
        Rows.checkPositive("rows", rows);
        Rows.checkPositive("dim", dim);
        long n = (long) rows * dim;
        Rows.checkRange("x", xLen, xOff, n, "(R,D)");
        Rows.checkRange("w", wLen, wOff, dim, "(D)");
        Rows.checkRange("b", bLen, bOff, dim, "(D)");
        Rows.checkRange("out", outLen, outOff, n, "(R,D)");
    }
}
