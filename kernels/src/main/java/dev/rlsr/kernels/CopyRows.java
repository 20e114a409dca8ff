package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Row copies on the device ({@code native/cuda/copy_rows.cu}), for elements of 2 or 4 bytes.
 *
 * <ul>
 * <li>{@link #copyRows}: for every batch b and row r &lt; rows, {@code dst[b, dstRow0 + r, :] = src[b, srcRow0 + r,
 * :]}, where src holds {@code srcStride} rows of {@code width} elements per batch and dst {@code dstStride}: the KV-cache
 * append, exactly as {@code Backend.copyRows}.</li>
 * <li>{@link #gatherRows}: {@code dst[i, :] = src[rows[i], :]}, src (R, W), rows I32 (n) on the device, dst (n, W).
 * An index outside [0, R) cannot be checked on the host (it is device data): the kernel reads nothing for it and
 * writes that dst row as <b>NaN</b> (fp32 0x7fc00000, bf16 0x7fc0), so it cannot go unseen. (The CPU reference
 * throws instead.)</li>
 * <li>{@link #appendAt}: {@code dst[b, *row, :] = src[b, :]}, the KV-cache (and key-mask) append of a decode step
 * replayed as a CUDA graph: {@code *row} is an I32 in device memory, read when the launch runs. A row outside
 * {@code [0, dstStride)} writes nothing (it cannot write out of bounds; the reference throws instead).</li>
 * </ul>
 * One warp per 2 KiB of a row; 16-byte moves where both rows are 16-byte aligned, else 4- or 2-byte. Source and
 * destination must not overlap. Launches are asynchronous on {@code stream}. {@link CopyRowsReference} is the CPU
 * twin.
 */
public final class CopyRows {
    static final String FILE = "copy_rows";
    private static final Kernel COPY = Kernel.of(FILE, "copy_rows_kernel");
    private static final Kernel GATHER = Kernel.of(FILE, "gather_rows_kernel");
    private static final Kernel APPEND = Kernel.of(FILE, "append_row_kernel");
    private static final int THREADS = 256;
    private static final int WARPS = THREADS / 32;
    /** Bytes of a row per warp work item. */
    private static final int SEGMENT = 2048;
    private static final int NAN_F32 = 0x7fc00000;
    private static final int NAN_BF16_PAIR = 0x7fc07fc0;

    private CopyRows() {
    }

    /**
     * {@code dst[b, dstRow0 + r, :] = src[b, srcRow0 + r, :]} for b &lt; batch, r &lt; rows.
     *
     * @param src       source, batch blocks of {@code srcStride} rows of {@code width} elements
     * @param srcStride rows per batch in src
     * @param srcRow0   first source row of each batch; {@code srcRow0 + rows <= srcStride}
     * @param dst       destination, batch blocks of {@code dstStride} rows of {@code width} elements
     * @param dstStride rows per batch in dst
     * @param dstRow0   first destination row of each batch; {@code dstRow0 + rows <= dstStride}
     * @param batch     batches, &gt; 0
     * @param rows      rows per batch, &gt; 0
     * @param width     elements per row, &gt; 0
     * @param dtype     element type: any of 2 or 4 bytes (F32, BF16, F16, I32)
     * @param stream    a {@code CUstream}, 0 for the legacy default stream
     */
    public static void copyRows(long src, int srcStride, int srcRow0, long dst, int dstStride, int dstRow0, int batch,
            int rows, int width, DType dtype, long stream) {
        String op = "CopyRows.copyRows";
        int e = elementBytes(op, dtype);
        Checks.positive(op, "batch", batch);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "width", width);
        Checks.nonNegative(op, "srcRow0", srcRow0);
        Checks.nonNegative(op, "dstRow0", dstRow0);
        if ((long) srcRow0 + rows > srcStride) {
            throw new IllegalArgumentException(op + ": srcRow0 + rows = " + ((long) srcRow0 + rows)
                    + " exceeds srcStride " + srcStride + " (rows per batch of src)");
        }
        if ((long) dstRow0 + rows > dstStride) {
            throw new IllegalArgumentException(op + ": dstRow0 + rows = " + ((long) dstRow0 + rows)
                    + " exceeds dstStride " + dstStride + " (rows per batch of dst)");
        }
        Checks.pointer(op, "src", src, e);
        Checks.pointer(op, "dst", dst, e);
        long rowBytes = (long) width * e;
        // the byte spans from the first row touched to the end of the last (conservative for interleaved rows)
        long srcFirst = src + srcRow0 * rowBytes;
        long srcSpan = (((long) (batch - 1) * srcStride + rows) * rowBytes);
        long dstFirst = dst + dstRow0 * rowBytes;
        long dstSpan = (((long) (batch - 1) * dstStride + rows) * rowBytes);
        Checks.disjoint(op, "src", srcFirst, srcSpan, "dst", dstFirst, dstSpan);
        int segs = segments(rowBytes);
        COPY.launch(Checks.grid(op, (long) batch * rows * segs, WARPS), THREADS, stream,
                KernelArgs.local().ptr(src).ptr(dst).i32(batch).i32(rows).i32(srcStride).i32(srcRow0).i32(dstStride)
                        .i32(dstRow0).i64(rowBytes).i32(segs));
    }

    /**
     * {@code dst[i, :] = src[rows[i], :]} for i &lt; n; an index outside [0, srcRows) gives a NaN row.
     *
     * @param src     source (srcRows, width), F32 or BF16
     * @param dtype   F32 or BF16
     * @param srcRows rows of src (R), &gt; 0
     * @param rows    I32 row indices (n) on the device
     * @param n       rows to gather, &gt; 0
     * @param dst     destination (n, width), same dtype, disjoint from src
     * @param width   elements per row, &gt; 0
     * @param stream  a {@code CUstream}, 0 for the legacy default stream
     */
    public static void gatherRows(long src, DType dtype, int srcRows, long rows, int n, long dst, int width,
            long stream) {
        String op = "CopyRows.gatherRows";
        Checks.activation(op, dtype);
        Checks.positive(op, "srcRows", srcRows);
        Checks.positive(op, "n (rows to gather)", n);
        Checks.positive(op, "width", width);
        Checks.pointer(op, "src", src, dtype.bytes());
        Checks.pointer(op, "rows", rows, Integer.BYTES);
        Checks.pointer(op, "dst", dst, dtype.bytes());
        long rowBytes = (long) width * dtype.bytes();
        Checks.disjoint(op, "dst", dst, n * rowBytes, "src", src, srcRows * rowBytes);
        Checks.disjoint(op, "dst", dst, n * rowBytes, "rows", rows, 4L * n);
        gather(op, src, srcRows, rows, n, dst, rowBytes, dtype == DType.F32 ? NAN_F32 : NAN_BF16_PAIR, stream);
    }

    /**
     * {@code dst[b, *row, :] = src[b, :]} for b &lt; batch, where {@code *row} is an I32 in device memory: one new row
     * per batch entry at a position the device knows (a KV cache in F32 or BF16, the I32 key mask from a
     * {@code (batch, 1)} source of ones). The launch does not depend on the row's value, so one captured launch
     * serves every decode step. A row outside {@code [0, dstStride)} writes nothing: no write out of bounds, and the
     * rows that exist keep their contents (the host, which counts the steps, keeps the row in range).
     *
     * @param src       the new rows (batch, width)
     * @param dst       destination (batch, dstStride, width), disjoint from src and row
     * @param row       device address of one I32: the row of each batch block to write
     * @param batch     batches, &gt; 0
     * @param dstStride rows per batch in dst, &gt; 0
     * @param width     elements per row, &gt; 0
     * @param dtype     element type: any of 2 or 4 bytes (F32, BF16, F16, I32)
     * @param stream    a {@code CUstream}; graphs are captured on a stream other than the legacy default one
     */
    public static void appendAt(long src, long dst, long row, int batch, int dstStride, int width, DType dtype,
            long stream) {
        String op = "CopyRows.appendAt";
        int e = elementBytes(op, dtype);
        Checks.positive(op, "batch", batch);
        Checks.positive(op, "dstStride", dstStride);
        Checks.positive(op, "width", width);
        Checks.pointer(op, "src", src, e);
        Checks.pointer(op, "dst", dst, e);
        Checks.pointer(op, "row", row, Integer.BYTES);
        long rowBytes = (long) width * e;
        long dstBytes = (long) batch * dstStride * rowBytes;
        Checks.disjoint(op, "src", src, batch * rowBytes, "dst", dst, dstBytes);
        // a row index inside dst could be overwritten while other warps still read it
        Checks.disjoint(op, "row", row, Integer.BYTES, "dst", dst, dstBytes);
        int segs = segments(rowBytes);
        APPEND.launch(Checks.grid(op, (long) batch * segs, WARPS), THREADS, stream,
                KernelArgs.local().ptr(src).ptr(dst).ptr(row).i32(batch).i32(dstStride).i64(rowBytes).i32(segs));
    }

    static void gather(String op, long src, int srcRows, long rows, int n, long dst, long rowBytes, int fill,
            long stream) {
        int segs = segments(rowBytes);
        GATHER.launch(Checks.grid(op, (long) n * segs, WARPS), THREADS, stream,
                KernelArgs.local().ptr(src).i32(srcRows).ptr(rows).i32(n).ptr(dst).i64(rowBytes).i32(segs).i32(fill));
    }

    private static int segments(long rowBytes) {
        long segs = (rowBytes + SEGMENT - 1) / SEGMENT;
        if (segs > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a row of " + rowBytes + " bytes is too long");
        }
        return (int) segs;
    }

    private static int elementBytes(String op, DType dtype) {
        if (dtype == null || (dtype.bytes() != 2 && dtype.bytes() != 4)) {
            throw new IllegalArgumentException(op + ": dtype must have 2 or 4 bytes per element (F32, BF16, F16, I32), got "
                    + dtype);
        }
        return dtype.bytes();
    }
}
