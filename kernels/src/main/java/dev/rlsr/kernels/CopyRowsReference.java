package dev.rlsr.kernels;

/**
 * CPU reference and CPU implementation of {@link CopyRows} on {@code (array, offset)} views (CpuBackend's
 * {@code copyRows} and {@code gatherRows}). Works for any primitive array type the device op copies (float[], short[]
 * bf16 bits, int[]): the rows are moved with {@link System#arraycopy}. Unlike the kernel, an index outside [0, R) in
 * {@code gatherRows} throws.
 */
public final class CopyRowsReference {
    private CopyRowsReference() {
    }

    /**
     * {@code dst[b, dstRow0 + r, :] = src[b, srcRow0 + r, :]} for b &lt; batch, r &lt; rows.
     *
     * @param src       source array (float[], short[] or int[])
     * @param srcOff    first element of src's view
     * @param srcStride rows per batch in src
     * @param srcRow0   first source row of each batch
     * @param dst       destination array, same type
     * @param dstOff    first element of dst's view
     * @param dstStride rows per batch in dst
     * @param dstRow0   first destination row of each batch
     * @param batch     batches
     * @param rows      rows per batch
     * @param width     elements per row
     */
    public static void copyRows(Object src, int srcOff, int srcStride, int srcRow0, Object dst, int dstOff,
            int dstStride, int dstRow0, int batch, int rows, int width) {
        int sLen = java.lang.reflect.Array.getLength(src), dLen = java.lang.reflect.Array.getLength(dst);
        if (srcOff < 0 || dstOff < 0 || srcRow0 < 0 || dstRow0 < 0 || rows < 0 || width < 0
                || srcOff + (long) batch * srcStride * width > sLen || dstOff + (long) batch * dstStride * width > dLen
                || srcRow0 + rows > srcStride || dstRow0 + rows > dstStride) {
            throw new IllegalArgumentException("copyRows out of bounds: batch=" + batch + " rows=" + rows + " width="
                    + width + " src view at " + srcOff + " of " + sLen + " stride " + srcStride + "@" + srcRow0
                    + ", dst view at " + dstOff + " of " + dLen + " stride " + dstStride + "@" + dstRow0);
        }
        for (int b = 0; b < batch; b++) {
            System.arraycopy(src, srcOff + (b * srcStride + srcRow0) * width, dst, dstOff + (b * dstStride + dstRow0) * width,
                    rows * width);
        }
    }

    /**
     * {@code dst[b, row, :] = src[b, :]} for b &lt; batch: {@link CopyRows#appendAt} with the row as a host value.
     *
     * @param src       source array (float[], short[] or int[]), (batch, width) from srcOff
     * @param srcOff    first element of src's view
     * @param dst       destination array, same type, (batch, dstStride, width) from dstOff
     * @param dstOff    first element of dst's view
     * @param row       the row of each batch block to write
     * @param batch     batches
     * @param dstStride rows per batch in dst
     * @param width     elements per row
     * @throws IllegalArgumentException for a row outside [0, dstStride) (the kernel writes nothing instead) or views
     *                                  that do not fit their arrays
     */
    public static void appendAt(Object src, int srcOff, Object dst, int dstOff, int row, int batch, int dstStride,
            int width) {
        if (row < 0 || row >= dstStride) {
            throw new IllegalArgumentException("appendAt: row " + row + " outside [0, " + dstStride
                    + ") (dstStride, rows per batch of dst)");
        }
        copyRows(src, srcOff, 1, 0, dst, dstOff, dstStride, row, batch, 1, width);
    }

    /**
     * {@code dst[i, :] = src[rows[i], :]} for i &lt; n; src (srcRows, width).
     *
     * @param src     source array (float[], short[] or int[])
     * @param srcOff  first element of src's view
     * @param srcRows rows of src (R)
     * @param rows    row indices
     * @param rowsOff first index of the view
     * @param n       rows to gather
     * @param dst     destination array, same type
     * @param dstOff  first element of dst's view
     * @param width   elements per row
     * @throws IllegalArgumentException for an index outside [0, srcRows)
     */
    public static void gatherRows(Object src, int srcOff, int srcRows, int[] rows, int rowsOff, int n, Object dst,
            int dstOff, int width) {
        Views.check("src", java.lang.reflect.Array.getLength(src), srcOff, (long) srcRows * width);
        Views.check("rows", rows.length, rowsOff, n);
        Views.check("dst", java.lang.reflect.Array.getLength(dst), dstOff, (long) n * width);
        for (int i = 0; i < n; i++) {
            int r = rows[rowsOff + i];
            if (r < 0 || r >= srcRows) {
                throw new IllegalArgumentException("gatherRows: row " + r + " outside [0, " + srcRows + ")");
            }
            System.arraycopy(src, srcOff + r * width, dst, dstOff + i * width, width);
        }
    }
}
