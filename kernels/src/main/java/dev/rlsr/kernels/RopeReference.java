package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

import dev.rlsr.kernels.cpu.CpuParallel;

import jdk.incubator.vector.FloatVector;

/**
 * CPU reference and CPU implementation of {@link Rope} on {@code (array, offset)} views: CpuBackend's
 * {@code ropeTable} (fp32 angle, cos/sin in double rounded to float) and {@code rope} (same vector code and row
 * splits), generalised to a row stride. bf16 x is widened, rotated in fp32 and rounded once.
 */
public final class RopeReference {
    /** Rows per parallel range of {@link #apply}, as CpuBackend's ROW_GRAIN. */
    private static final int ROW_GRAIN = 16;

    private RopeReference() {
    }

    /**
     * {@code table[r, i] = cos(pos_r * invFreq[i])}, {@code table[r, half + i] = sin(...)}, the angle an fp32
     * product.
     *
     * @param positions positions
     * @param posOff    first position of the view
     * @param n         rows
     * @param invFreq   inverse frequencies (half)
     * @param invOff    their offset
     * @param half      D/2
     * @param table     output (n, 2*half)
     * @param tableOff  its offset
     */
    public static void table(int[] positions, int posOff, int n, float[] invFreq, int invOff, int half, float[] table,
            int tableOff) {
        Rows.checkPositive("half (headDim/2)", half);
        Views.check("positions", positions.length, posOff, n);
        Views.check("invFreq", invFreq.length, invOff, half);
        Views.check("table", table.length, tableOff, 2L * n * half);
        int dim = 2 * half;
        CpuParallel.forRange(n, 64, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                float pos = positions[posOff + r];
                for (int i = 0; i < half; i++) {
                    float f = pos * invFreq[invOff + i]; // fp32 product, as HF's inv_freq @ position_ids
                    table[tableOff + r * dim + i] = (float) Math.cos(f);
                    table[tableOff + r * dim + half + i] = (float) Math.sin(f);
                }
            }
        });
    }

    /**
     * Rotates, in place, the first heads*dim elements of n rows xStride apart.
     *
     * @param x        activations
     * @param xOff     first element of row 0
     * @param xStride  elements from one row to the next (&gt;= heads*dim)
     * @param table    cos/sin table (n, dim)
     * @param tableOff its offset
     * @param n        rows
     * @param heads    heads per row
     * @param dim      head dimension D (even)
     * @param inverse  the transposed rotation
     */
    public static void apply(float[] x, int xOff, int xStride, float[] table, int tableOff, int n, int heads, int dim,
            boolean inverse) {
        checkApply(x.length, xOff, xStride, table, tableOff, n, heads, dim);
        int half = dim / 2;
        float sgn = inverse ? -1f : 1f;
        CpuParallel.forRange(n, CpuParallel.grain(heads * dim, ROW_GRAIN), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int tb = tableOff + r * dim;
                for (int h = 0; h < heads; h++) {
                    int base = xOff + r * xStride + h * dim;
                    int i = 0;
                    for (int ub = S.loopBound(half); i < ub; i += L) {
                        FloatVector c = FloatVector.fromArray(S, table, tb + i);
                        FloatVector sn = FloatVector.fromArray(S, table, tb + half + i);
                        if (inverse) {
                            sn = sn.neg();
                        }
                        FloatVector x1 = FloatVector.fromArray(S, x, base + i);
                        FloatVector x2 = FloatVector.fromArray(S, x, base + half + i);
                        x1.mul(c).sub(x2.mul(sn)).intoArray(x, base + i);
                        x2.mul(c).add(x1.mul(sn)).intoArray(x, base + half + i);
                    }
                    for (; i < half; i++) {
                        float c = table[tb + i], sn = sgn * table[tb + half + i];
                        float x1 = x[base + i], x2 = x[base + half + i];
                        x[base + i] = x1 * c - x2 * sn;
                        x[base + half + i] = x2 * c + x1 * sn;
                    }
                }
            }
        });
    }

    /**
     * bf16 x (bits), widened, rotated in fp32, rounded once; elements between rows are left untouched.
     *
     * @param x        activations, bf16 bits
     * @param xOff     first element of row 0
     * @param xStride  elements from one row to the next (&gt;= heads*dim)
     * @param table    cos/sin table (n, dim)
     * @param tableOff its offset
     * @param n        rows
     * @param heads    heads per row
     * @param dim      head dimension D (even)
     * @param inverse  the transposed rotation
     */
    public static void apply(short[] x, int xOff, int xStride, float[] table, int tableOff, int n, int heads, int dim,
            boolean inverse) {
        checkApply(x.length, xOff, xStride, table, tableOff, n, heads, dim);
        int width = heads * dim;
        float[] f = Views.widen(x, xOff, (n - 1) * xStride + width);
        apply(f, 0, xStride, table, tableOff, n, heads, dim, inverse);
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < width; j++) {
                x[xOff + r * xStride + j] = BF16.fromFloat(f[r * xStride + j]);
            }
        }
    }

    private static void checkApply(int xLength, int xOff, int xStride, float[] table, int tableOff, int n, int heads,
            int dim) {
        Rows.checkPositive("n (rows)", n);
        Rows.checkPositive("heads", heads);
        if (dim <= 0 || dim % 2 != 0) {
            throw new IllegalArgumentException("head dimension must be even and positive, got " + dim);
        }
        long width = (long) heads * dim;
        if (xStride < width) {
            throw new IllegalArgumentException("x row stride " + xStride + " is less than heads*dim = " + width);
        }
        Views.check("x", xLength, xOff, (n - 1L) * xStride + width);
        Views.check("table", table.length, tableOff, (long) n * dim);
    }
}
