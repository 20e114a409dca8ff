package dev.rlsr.kernels;

/**
 * CPU reference and CPU implementation of {@link Argmax} (CpuBackend's {@code argmaxRows} on {@code (array, offset)}
 * views): the first index of the largest value, NaN beating any number.
 */
public final class ArgmaxReference {
    private ArgmaxReference() {
    }

    /**
     * {@code out[outOff + r] = argmax_j x[xOff + r*width + j]} for r &lt; rows.
     *
     * @param x      values (rows, width)
     * @param xOff   its offset
     * @param rows   rows
     * @param width  elements per row, &gt; 0
     * @param out    indices (rows)
     * @param outOff its offset
     */
    public static void rows(float[] x, int xOff, int rows, int width, int[] out, int outOff) {
        Rows.checkPositive("width", width);
        Views.check("x", x.length, xOff, (long) rows * width);
        Views.check("out", out.length, outOff, rows);
        for (int r = 0; r < rows; r++) {
            int o = xOff + r * width;
            int best = 0;
            float bv = x[o];
            for (int j = 1; j < width; j++) {
                float v = x[o + j];
                if (v > bv || (Float.isNaN(v) && !Float.isNaN(bv))) {
                    bv = v;
                    best = j;
                }
            }
            out[outOff + r] = best;
        }
    }

    /**
     * bf16 values (widened exactly, so the same comparisons).
     *
     * @param x      bf16 bits (rows, width)
     * @param xOff   its offset
     * @param rows   rows
     * @param width  elements per row, &gt; 0
     * @param out    indices (rows)
     * @param outOff its offset
     */
    public static void rows(short[] x, int xOff, int rows, int width, int[] out, int outOff) {
        Rows.checkPositive("width", width);
        rows(Views.widen(x, xOff, Math.multiplyExact(rows, width)), 0, rows, width, out, outOff);
    }
}
