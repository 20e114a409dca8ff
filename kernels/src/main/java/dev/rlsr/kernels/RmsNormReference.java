package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import jdk.incubator.vector.FloatVector;

/**
 * CPU reference and CPU implementation of {@link RmsNorm}: the fp32 arithmetic of the CPU backend (Vector API lanes,
 * rows in parallel on {@link CpuParallel}), on views {@code (array, offset)} of (R,D) row-major tensors. The bf16
 * variants widen their inputs, run the fp32 code and round what the kernel stores in bf16.
 */
public final class RmsNormReference {
    private static final int ROW_GRAIN = 16;

    private RmsNormReference() {
    }

    /**
     * {@code out = w * (x * rstd)}, {@code rstd = 1/sqrt(sum(x^2)/D + eps)} (the sum in fp32 lanes, the root in
     * double). {@code out} may be {@code x} at the same offset.
     *
     * @param x      input (R,D) at {@code xOff}
     * @param xOff   offset of x
     * @param w      weight (D) at {@code wOff}
     * @param wOff   offset of w
     * @param eps    added to the mean square
     * @param out    output (R,D) at {@code outOff}
     * @param outOff offset of out
     * @param rstd   saved reciprocal RMS (R) at {@code rOff}
     * @param rOff   offset of rstd
     * @param rows   R
     * @param dim    D
     */
    public static void forward(float[] x, int xOff, float[] w, int wOff, float eps, float[] out, int outOff,
            float[] rstd, int rOff, int rows, int dim) {
        checkForward(x.length, xOff, w.length, wOff, out.length, outOff, rstd.length, rOff, rows, dim);
        CpuParallel.forRange(rows, CpuParallel.grain(dim, ROW_GRAIN), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int xo = xOff + r * dim, oo = outOff + r * dim;
                float var = CpuVec.sumSquares(x, xo, dim) / dim;
                float rs = (float) (1.0 / Math.sqrt(var + eps));
                rstd[rOff + r] = rs;
                int i = 0;
                FloatVector vr = FloatVector.broadcast(S, rs);
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector.fromArray(S, x, xo + i).mul(vr).mul(FloatVector.fromArray(S, w, wOff + i))
                            .intoArray(out, oo + i);
                }
                for (; i < dim; i++) {
                    out[oo + i] = w[wOff + i] * (x[xo + i] * rs);
                }
            }
        });
    }

    /**
     * bf16 (raw bits) x, w and out; rstd F32. {@code out} may be {@code x} at the same offset.
     *
     * @param x      input (R,D) at {@code xOff}
     * @param xOff   offset of x
     * @param w      weight (D) at {@code wOff}
     * @param wOff   offset of w
     * @param eps    added to the mean square
     * @param out    output (R,D) at {@code outOff}, rounded to bf16
     * @param outOff offset of out
     * @param rstd   saved reciprocal RMS (R) at {@code rOff}
     * @param rOff   offset of rstd
     * @param rows   R
     * @param dim    D
     */
    public static void forward(short[] x, int xOff, short[] w, int wOff, float eps, short[] out, int outOff,
            float[] rstd, int rOff, int rows, int dim) {
        checkForward(x.length, xOff, w.length, wOff, out.length, outOff, rstd.length, rOff, rows, dim);
        int n = rows * dim;
        float[] o = new float[n];
        forward(widen(x, xOff, n), 0, widen(w, wOff, dim), 0, eps, o, 0, rstd, rOff, rows, dim);
        narrow(o, out, outOff);
    }

    /**
     * {@code dx (+)= rs*w*dOut - (sum(w*dOut*x)*rs^3/D)*x} and {@code dw += sum_r dOut*x*rs}, with the CPU backend's
     * partial sums (about four row chunks per thread, summed in chunk order). {@code dx} may be {@code dOut} at the
     * same offset.
     *
     * @param dOut         upstream gradient (R,D) at {@code gOff}
     * @param gOff         offset of dOut
     * @param x            the forward's input (R,D) at {@code xOff}
     * @param xOff         offset of x
     * @param w            weight (D) at {@code wOff}
     * @param wOff         offset of w
     * @param rstd         the forward's rstd (R) at {@code rOff}
     * @param rOff         offset of rstd
     * @param dx           input gradient (R,D) at {@code dxOff}
     * @param dxOff        offset of dx
     * @param dw           weight gradient (D) at {@code dwOff}, accumulated
     * @param dwOff        offset of dw
     * @param rows         R
     * @param dim          D
     * @param accumulateDx add into dx instead of overwriting it
     */
    public static void backward(float[] dOut, int gOff, float[] x, int xOff, float[] w, int wOff, float[] rstd,
            int rOff, float[] dx, int dxOff, float[] dw, int dwOff, int rows, int dim, boolean accumulateDx) {
        checkBackward(dOut.length, gOff, x.length, xOff, w.length, wOff, rstd.length, rOff, dx.length, dxOff, dw.length,
                dwOff, rows, dim);
        int chunks = Math.min(rows, CpuParallel.THREADS * 4);
        int per = (rows + chunks - 1) / chunks;
        int count = (rows + per - 1) / per;
        float[][] partial = new float[count][];
        CpuParallel.forEach(count, c -> {
            float[] pw = new float[dim];
            partial[c] = pw;
            for (int r = c * per, end = Math.min(rows, (c + 1) * per); r < end; r++) {
                int go = gOff + r * dim, xo = xOff + r * dim, dxo = dxOff + r * dim;
                float rs = rstd[rOff + r];
                // sum_i w_i * g_i * x_i, needed before dx overwrites g when they alias
                FloatVector vrs = FloatVector.broadcast(S, rs);
                FloatVector acc = FloatVector.zero(S);
                int i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector gx = FloatVector.fromArray(S, dOut, go + i).mul(FloatVector.fromArray(S, x, xo + i));
                    acc = gx.fma(FloatVector.fromArray(S, w, wOff + i), acc);
                    gx.fma(vrs, FloatVector.fromArray(S, pw, i)).intoArray(pw, i);
                }
                float sum = CpuVec.sum(acc);
                for (; i < dim; i++) {
                    float gx = dOut[go + i] * x[xo + i];
                    sum += w[wOff + i] * gx;
                    pw[i] += gx * rs;
                }
                float k = sum * rs * rs * rs / dim;
                FloatVector vk = FloatVector.broadcast(S, k);
                i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector val = FloatVector.fromArray(S, dOut, go + i).mul(FloatVector.fromArray(S, w, wOff + i))
                            .mul(vrs).sub(FloatVector.fromArray(S, x, xo + i).mul(vk));
                    if (accumulateDx) {
                        val = val.add(FloatVector.fromArray(S, dx, dxo + i));
                    }
                    val.intoArray(dx, dxo + i);
                }
                for (; i < dim; i++) {
                    float val = rs * w[wOff + i] * dOut[go + i] - k * x[xo + i];
                    dx[dxo + i] = accumulateDx ? dx[dxo + i] + val : val;
                }
            }
        });
        for (float[] pw : partial) {
            for (int i = 0; i < dim; i++) {
                dw[dwOff + i] += pw[i];
            }
        }
    }

    /**
     * bf16 (raw bits) dOut, x, w and dx (rounded to bf16 after the fp32 update; when accumulating, the bf16 dx is
     * widened first); rstd and dw F32. {@code dx} may be {@code dOut} at the same offset.
     *
     * @param dOut         upstream gradient (R,D) at {@code gOff}
     * @param gOff         offset of dOut
     * @param x            the forward's input (R,D) at {@code xOff}
     * @param xOff         offset of x
     * @param w            weight (D) at {@code wOff}
     * @param wOff         offset of w
     * @param rstd         the forward's rstd (R) at {@code rOff}
     * @param rOff         offset of rstd
     * @param dx           input gradient (R,D) at {@code dxOff}
     * @param dxOff        offset of dx
     * @param dw           weight gradient (D) at {@code dwOff}, accumulated
     * @param dwOff        offset of dw
     * @param rows         R
     * @param dim          D
     * @param accumulateDx add into dx instead of overwriting it
     */
    public static void backward(short[] dOut, int gOff, short[] x, int xOff, short[] w, int wOff, float[] rstd,
            int rOff, short[] dx, int dxOff, float[] dw, int dwOff, int rows, int dim, boolean accumulateDx) {
        checkBackward(dOut.length, gOff, x.length, xOff, w.length, wOff, rstd.length, rOff, dx.length, dxOff, dw.length,
                dwOff, rows, dim);
        int n = rows * dim;
        float[] d = accumulateDx ? widen(dx, dxOff, n) : new float[n];
        backward(widen(dOut, gOff, n), 0, widen(x, xOff, n), 0, widen(w, wOff, dim), 0, rstd, rOff, d, 0, dw, dwOff,
                rows, dim, accumulateDx);
        narrow(d, dx, dxOff);
    }

    static float[] widen(short[] bits, int off, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = BF16.toFloat(bits[off + i]);
        }
        return f;
    }

    static void narrow(float[] f, short[] bits, int off) {
        for (int i = 0; i < f.length; i++) {
            bits[off + i] = BF16.fromFloat(f[i]);
        }
    }

    private static void checkForward(int xLen, int xOff, int wLen, int wOff, int outLen, int outOff, int rLen,
            int rOff, int rows, int dim) {
        Rows.checkPositive("rows", rows);
        Rows.checkPositive("dim", dim);
        long n = (long) rows * dim;
        Rows.checkRange("x", xLen, xOff, n, "(R,D)");
        Rows.checkRange("w", wLen, wOff, dim, "(D)");
        Rows.checkRange("out", outLen, outOff, n, "(R,D)");
        Rows.checkRange("rstd", rLen, rOff, rows, "(R)");
    }

    private static void checkBackward(int gLen, int gOff, int xLen, int xOff, int wLen, int wOff, int rLen, int rOff,
            int dxLen, int dxOff, int dwLen, int dwOff, int rows, int dim) {
        Rows.checkPositive("rows", rows);
        Rows.checkPositive("dim", dim);
        long n = (long) rows * dim;
        Rows.checkRange("dOut", gLen, gOff, n, "(R,D)");
        Rows.checkRange("x", xLen, xOff, n, "(R,D)");
        Rows.checkRange("w", wLen, wOff, dim, "(D)");
        Rows.checkRange("rstd", rLen, rOff, rows, "(R)");
        Rows.checkRange("dx", dxLen, dxOff, n, "(R,D)");
        Rows.checkRange("dw", dwLen, dwOff, dim, "(D)");
    }
}
