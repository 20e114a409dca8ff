package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Rotary position embedding on the device ({@code native/cuda/rope.cu}), Hugging Face {@code rotate_half} convention.
 *
 * <ul>
 * <li>{@link #table}: positions I32 (N), invFreq F32 (D/2) -&gt; table F32 (N, D) with {@code cos(pos*invFreq)} in
 * the first D/2 columns and {@code sin} in the last D/2. The angle is the fp32 product {@code (float) pos *
 * invFreq[i]}, as HF's {@code inv_freq @ position_ids} and CpuBackend's {@code ropeTable}; cos and sin are CUDA's
 * accurate {@code cosf}/{@code sinf} (at most 2 ulp from the exact value; the CPU's are correctly rounded).</li>
 * <li>{@link #apply}: in place on x (N, H*D) F32 or BF16 (rows may be views into a wider buffer, e.g. the Q part of a
 * fused QKV projection, through a row stride): per head {@code x1' = x1*cos - x2*sin, x2' = x2*cos + x1*sin} (x1,
 * x2 the two halves of the head); {@code inverse} uses -sin, the transposed rotation, which is the backward of the
 * forward rotation.</li>
 * </ul>
 * Launches are asynchronous on {@code stream}. {@link RopeReference} is the CPU twin.
 */
public final class Rope {
    static final String FILE = "rope";
    private static final Kernel TABLE = Kernel.of(FILE, "rope_table_kernel");
    private static final Kernel APPLY_F32 = Kernel.of(FILE, "rope_apply_f32_kernel");
    private static final Kernel APPLY_BF16 = Kernel.of(FILE, "rope_apply_bf16_kernel");
    private static final int THREADS = 256;

    private Rope() {
    }

    /**
     * Fills the cos/sin table of the given positions.
     *
     * @param positions I32 positions (n)
     * @param n         rows (tokens), &gt; 0
     * @param invFreq   F32 inverse frequencies (headDim/2)
     * @param headDim   head dimension D, even and &gt; 0
     * @param table     F32 (n, headDim), disjoint from positions and invFreq
     * @param stream    a {@code CUstream}, 0 for the legacy default stream
     */
    public static void table(long positions, int n, long invFreq, int headDim, long table, long stream) {
        String op = "Rope.table";
        Checks.positive(op, "n (rows)", n);
        checkHeadDim(op, headDim);
        Checks.pointer(op, "positions", positions, Integer.BYTES);
        Checks.pointer(op, "invFreq", invFreq, Float.BYTES);
        Checks.pointer(op, "table", table, Float.BYTES);
        long tableBytes = 4L * n * headDim;
        Checks.disjoint(op, "table", table, tableBytes, "positions", positions, 4L * n);
        Checks.disjoint(op, "table", table, tableBytes, "invFreq", invFreq, 2L * headDim);
        int half = headDim / 2;
        TABLE.launch(Checks.grid(op, (long) n * half, THREADS), THREADS, stream,
                KernelArgs.local().ptr(positions).ptr(invFreq).ptr(table).i32(n).i32(half));
    }

    /**
     * Rotates x (n, heads*headDim), dense rows, in place.
     *
     * @param x       activations (n, heads*headDim)
     * @param dtype   F32 or BF16
     * @param n       rows (tokens), &gt; 0
     * @param heads   heads per row, &gt; 0
     * @param headDim head dimension D, even and &gt; 0
     * @param table   F32 (n, headDim) from {@link #table}
     * @param inverse the transposed rotation (backward)
     * @param stream  a {@code CUstream}, 0 for the legacy default stream
     */
    public static void apply(long x, DType dtype, int n, int heads, int headDim, long table, boolean inverse,
            long stream) {
        apply(x, dtype, n, heads, headDim, (long) heads * headDim, table, inverse, stream);
    }

    /**
     * Rotates the first heads*headDim elements of each of n rows {@code xRowStride} elements apart, in place.
     *
     * @param x          first row
     * @param dtype      F32 or BF16
     * @param n          rows (tokens), &gt; 0
     * @param heads      heads per row, &gt; 0
     * @param headDim    head dimension D, even and &gt; 0
     * @param xRowStride elements from one row to the next, &gt;= heads*headDim
     * @param table      F32 (n, headDim) from {@link #table}, disjoint from x
     * @param inverse    the transposed rotation (backward)
     * @param stream     a {@code CUstream}, 0 for the legacy default stream
     */
    public static void apply(long x, DType dtype, int n, int heads, int headDim, long xRowStride, long table,
            boolean inverse, long stream) {
        String op = "Rope.apply";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (rows)", n);
        Checks.positive(op, "heads", heads);
        checkHeadDim(op, headDim);
        long width = (long) heads * headDim;
        if (xRowStride < width) {
            throw new IllegalArgumentException(op + ": xRowStride " + xRowStride + " is less than heads*headDim = "
                    + width);
        }
        Checks.pointer(op, "x", x, dtype.bytes());
        Checks.pointer(op, "table", table, Float.BYTES);
        long e = dtype.bytes();
        Checks.disjoint(op, "x", x, ((n - 1) * xRowStride + width) * e, "table", table, 4L * n * headDim);
        int half = headDim / 2;
        int per = 16 / dtype.bytes();
        boolean vec = half % per == 0 && x % 16 == 0 && (xRowStride * e) % 16 == 0 && table % 16 == 0;
        long items = (long) n * heads * (vec ? half / per : half);
        Kernel kernel = dtype == DType.F32 ? APPLY_F32 : APPLY_BF16;
        kernel.launch(Checks.gridStride(items, THREADS), THREADS, stream,
                KernelArgs.local().ptr(x).i64(xRowStride).ptr(table).i32(n).i32(heads).i32(half).i32(inverse ? 1 : 0));
    }

    private static void checkHeadDim(String op, int headDim) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException(op + ": headDim must be even and positive, got " + headDim);
        }
    }
}
