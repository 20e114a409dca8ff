package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import java.util.Arrays;

import jdk.incubator.vector.FloatVector;

/**
 * CPU reference and CPU implementation of {@link Elementwise} on {@code (array, offset)} views: the arithmetic of
 * CpuBackend's {@code fill}, {@code add}, {@code scale} and the bias part of {@code linearBackwardWeight}, in the same
 * order (same vector code, same {@link CpuParallel} splits). bf16 variants widen to float, run the fp32 code and round
 * the outputs once.
 */
public final class ElementwiseReference {
    private ElementwiseReference() {
    }

    /**
     * {@code t[off, off + n) = value}.
     *
     * @param t     the array
     * @param off   first element of the view
     * @param n     elements
     * @param value the value
     */
    public static void fill(float[] t, int off, int n, float value) {
        Views.check("t", t.length, off, n);
        Arrays.fill(t, off, off + n, value);
    }

    /**
     * bf16 view filled with {@code value} rounded to nearest even.
     *
     * @param t     bf16 bits
     * @param off   first element of the view
     * @param n     elements
     * @param value the value
     */
    public static void fill(short[] t, int off, int n, float value) {
        Views.check("t", t.length, off, n);
        Arrays.fill(t, off, off + n, BF16.fromFloat(value));
    }

    /**
     * I32 view filled with {@code value}.
     *
     * @param t     the array
     * @param off   first element of the view
     * @param n     elements
     * @param value the value
     */
    public static void fill(int[] t, int off, int n, int value) {
        Views.check("t", t.length, off, n);
        Arrays.fill(t, off, off + n, value);
    }

    /**
     * {@code t[i] += delta} over the I32 view, wrapping on overflow (Java {@code int} arithmetic, as the kernel's).
     *
     * @param t     the array
     * @param off   first element of the view
     * @param n     elements
     * @param delta the increment
     */
    public static void addI32(int[] t, int off, int n, int delta) {
        Views.check("t", t.length, off, n);
        for (int i = off; i < off + n; i++) {
            t[i] += delta;
        }
    }

    /**
     * {@code out = a + b} over n elements; out may be the same view as a or b.
     *
     * @param a      first operand
     * @param aOff   its offset
     * @param b      second operand
     * @param bOff   its offset
     * @param out    result
     * @param outOff its offset
     * @param n      elements
     */
    public static void add(float[] a, int aOff, float[] b, int bOff, float[] out, int outOff, int n) {
        Views.check("a", a.length, aOff, n);
        Views.check("b", b.length, bOff, n);
        Views.check("out", out.length, outOff, n);
        CpuParallel.forRange(n, 1 << 14, (lo, hi) -> {
            int i = lo;
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector.fromArray(S, a, aOff + i).add(FloatVector.fromArray(S, b, bOff + i))
                        .intoArray(out, outOff + i);
            }
            for (; i < hi; i++) {
                out[outOff + i] = a[aOff + i] + b[bOff + i];
            }
        });
    }

    /**
     * bf16 {@code out = a + b}: widened, added in fp32, rounded once; out may be the same view as a or b.
     *
     * @param a      first operand, bf16 bits
     * @param aOff   its offset
     * @param b      second operand, bf16 bits
     * @param bOff   its offset
     * @param out    result, bf16 bits
     * @param outOff its offset
     * @param n      elements
     */
    public static void add(short[] a, int aOff, short[] b, int bOff, short[] out, int outOff, int n) {
        float[] x = Views.widen(a, aOff, n), y = Views.widen(b, bOff, n), o = new float[n];
        add(x, 0, y, 0, o, 0, n);
        Views.narrow(o, out, outOff);
    }

    /**
     * {@code t *= s} over n elements, in place.
     *
     * @param t   the array
     * @param off first element of the view
     * @param n   elements
     * @param s   the factor
     */
    public static void scale(float[] t, int off, int n, float s) {
        Views.check("t", t.length, off, n);
        CpuParallel.forRange(n, 1 << 14, (lo, hi) -> CpuVec.scaleInto(s, t, off + lo, t, off + lo, hi - lo));
    }

    /**
     * bf16 {@code t *= s}: widened, multiplied in fp32, rounded once.
     *
     * @param t   bf16 bits
     * @param off first element of the view
     * @param n   elements
     * @param s   the factor
     */
    public static void scale(short[] t, int off, int n, float s) {
        float[] x = Views.widen(t, off, n);
        scale(x, 0, n, s);
        Views.narrow(x, t, off);
    }

    /**
     * {@code dBias[c] += sum over r of dy[r, c]}, rows added one after another into dBias per column (fp32), columns
     * split over the CPU threads.
     *
     * @param dy      upstream gradient (rows, cols)
     * @param dyOff   its offset
     * @param rows    rows
     * @param cols    columns
     * @param dBias   bias gradient (cols), accumulated
     * @param dBiasOff its offset
     */
    public static void biasGrad(float[] dy, int dyOff, int rows, int cols, float[] dBias, int dBiasOff) {
        Rows.checkPositive("rows", rows);
        Rows.checkPositive("cols", cols);
        Views.check("dy", dy.length, dyOff, (long) rows * cols);
        Views.check("dBias", dBias.length, dBiasOff, cols);
        int out = cols;
        int chunk = Math.max(L, ((out / CpuParallel.THREADS) + L - 1) / L * L);
        CpuParallel.forRange((out + chunk - 1) / chunk, 1, (lo, hi) -> {
            for (int c = lo; c < hi; c++) {
                int j0 = c * chunk, len = Math.min(out, j0 + chunk) - j0;
                for (int r = 0; r < rows; r++) {
                    CpuVec.axpy(1f, dy, dyOff + r * out + j0, dBias, dBiasOff + j0, len);
                }
            }
        });
    }

    /**
     * bf16 dy: widened (exactly), then the fp32 sums.
     *
     * @param dy       upstream gradient (rows, cols), bf16 bits
     * @param dyOff    its offset
     * @param rows     rows
     * @param cols     columns
     * @param dBias    F32 bias gradient (cols), accumulated
     * @param dBiasOff its offset
     */
    public static void biasGrad(short[] dy, int dyOff, int rows, int cols, float[] dBias, int dBiasOff) {
        Rows.checkPositive("rows", rows);
        Rows.checkPositive("cols", cols);
        biasGrad(Views.widen(dy, dyOff, Math.multiplyExact(rows, cols)), 0, rows, cols, dBias, dBiasOff);
    }
}
