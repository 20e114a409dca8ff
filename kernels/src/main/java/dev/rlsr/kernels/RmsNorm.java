package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * RMSNorm over rows of width D ({@code native/cuda/rmsnorm.cu}), weight only (Qwen, Llama).
 *
 * <p>Shapes: x, out, dOut, dx (R,D) in the activation dtype (F32 or BF16), contiguous; w (D) in the same dtype (the
 * compute copy of the weight); rstd (R) F32; dw (D) F32. R = numel / D, e.g. the hidden states (N,C) or the per-head
 * q/k norms (N*H, headDim).
 * <ul>
 * <li>forward: {@code rstd = 1/sqrt(mean(x^2) + eps)} per row, {@code out = w * (x * rstd)}; out may be x.</li>
 * <li>backward, from the saved rstd: {@code dx = rstd*w*dOut - (sum(w*dOut*x) * rstd^3 / D) * x}, overwriting dx or
 * added to it ({@code accumulateDx}: the residual add fused into the backward); dx may be dOut.
 * {@code dw += sum over rows of dOut*x*rstd}, deterministic: each of {@link #backwardPartials} blocks sums
 * its rows into a row of the F32 scratch {@code partials (P,D)}, and a second launch adds the P partials into dw in a
 * fixed order. P depends only on (R, D), so dw repeats bit for bit run to run and on any GPU.</li>
 * </ul>
 * Rows of D &lt;= 1024 are read by 8, 16 or 32 lanes of a warp ({@link #lanes}: one 16-byte vector per lane for short
 * rows, so a warp has up to 4 per-head rows in flight), longer rows by a 256-thread block. {@link RmsNormReference} is
 * the CPU twin. Launches are asynchronous on {@code stream} and allocate nothing.
 */
public final class RmsNorm {
    static final String FILE = "rmsnorm";
    private static final Kernel FWD_F32 = Kernel.of(FILE, "rmsnorm_forward_f32_kernel");
    private static final Kernel FWD_BF16 = Kernel.of(FILE, "rmsnorm_forward_bf16_kernel");
    private static final Kernel BWD_F32 = Kernel.of(FILE, "rmsnorm_backward_f32_kernel");
    private static final Kernel BWD_BF16 = Kernel.of(FILE, "rmsnorm_backward_bf16_kernel");
    private static final Kernel DW_REDUCE = Kernel.of(FILE, "rmsnorm_dw_reduce_kernel");
    private static final int THREADS = 256;
    /** Rows up to this width are read by lanes of one warp; RN_WARP_MAX_D in rmsnorm.cu. */
    static final int WARP_MAX_D = 1024;
    /** Block-mode rows up to this width keep their dw accumulator in shared memory (RN_SMEM_MAX_D). */
    private static final int SMEM_MAX_D = 12288;
    /** Upper bound of the backward's partial sums P. */
    static final int MAX_PARTIALS = 512;

    private RmsNorm() {
    }

    /**
     * {@code out (R,D) = w * (x * rstd)}, {@code rstd (R) = 1/sqrt(mean(x^2) + eps)}.
     *
     * @param x      input (R,D), activation dtype
     * @param w      weight (D), activation dtype
     * @param out    output (R,D), activation dtype; {@code x} itself or a buffer that does not overlap it
     * @param rstd   saved reciprocal RMS (R), F32
     * @param dtype  F32 or BF16
     * @param rows   R
     * @param dim    D
     * @param eps    added to the mean square (finite, &gt;= 0)
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void forward(long x, long w, long out, long rstd, DType dtype, int rows, int dim, float eps,
            long stream) {
        String op = "RmsNorm.forward";
        check(op, x, w, dtype, rows, dim, eps);
        Checks.pointer(op, "out", out, dtype.bytes());
        Checks.pointer(op, "rstd", rstd, Float.BYTES);
        long bytes = (long) rows * dim * dtype.bytes();
        Checks.sameOrDisjoint(op, "out", out, "x", x, bytes);
        Checks.disjoint(op, "rstd", rstd, 4L * rows, "out", out, bytes);
        Checks.disjoint(op, "out", out, bytes, "w", w, (long) dim * dtype.bytes());
        int lanes = lanes(dtype, dim);
        int perBlock = rowsPerBlock(lanes);
        int grid = (rows + perBlock - 1) / perBlock;
        KernelArgs args = KernelArgs.local().ptr(x).ptr(w).ptr(out).ptr(rstd).i32(rows).i32(dim).f32(eps).i32(lanes);
        (dtype == DType.F32 ? FWD_F32 : FWD_BF16).launch(grid, THREADS, stream, args);
    }

    /**
     * Lanes of a warp that read one row: 8, 16 or 32 for D &lt;= 1024 (the fewest that give each lane at most one
     * 16-byte vector, at least 8 so a row's sum takes three shuffles), 0 for a whole 256-thread block per row.
     */
    static int lanes(DType dtype, int dim) {
        if (dim > WARP_MAX_D) {
            return 0;
        }
        long vectors = ((long) dim * dtype.bytes() + 15) / 16;
        return vectors <= 8 ? 8 : vectors <= 16 ? 16 : 32;
    }

    private static int rowsPerBlock(int lanes) {
        return lanes == 0 ? 1 : THREADS / lanes;
    }

    /**
     * The number P of partial dw rows the backward writes: a function of (R, D, dtype) only, so the summation order
     * of dw is fixed for a shape. {@code min(ceil(R / (256/G)), 512)} where G is the lanes per row ({@code 256/G}
     * rows per block at once), and {@code min(R, 512)} for D &gt; 1024 (a block per row).
     *
     * @param dtype the activation dtype (F32 or BF16)
     * @param rows  R
     * @param dim   D
     * @return P
     */
    public static int backwardPartials(DType dtype, int rows, int dim) {
        String op = "RmsNorm.backwardPartials";
        Checks.dtype(op, dtype);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "dim", dim);
        int perBlock = rowsPerBlock(lanes(dtype, dim));
        return Math.min((rows + perBlock - 1) / perBlock, MAX_PARTIALS);
    }

    /**
     * Bytes of the F32 scratch {@code partials (P,D)} the backward needs: {@code 4 * backwardPartials(...) * D}.
     *
     * @param dtype the activation dtype (F32 or BF16)
     * @param rows  R
     * @param dim   D
     * @return the size in bytes
     */
    public static long backwardScratchBytes(DType dtype, int rows, int dim) {
        return 4L * backwardPartials(dtype, rows, dim) * dim;
    }

    /**
     * {@code dx (+)= dL/dx} and {@code dw += dL/dw} of {@link #forward} from the saved rstd (two launches).
     *
     * @param dOut         upstream gradient (R,D), activation dtype
     * @param x            the forward's input (R,D), activation dtype
     * @param w            weight (D), activation dtype
     * @param rstd         the forward's rstd (R), F32
     * @param dx           input gradient (R,D), activation dtype; {@code dOut} itself or a buffer that overlaps
     *                     neither dOut nor x
     * @param dw           weight gradient (D), F32, accumulated
     * @param partials     F32 scratch of {@link #backwardScratchBytes(DType, int, int)} bytes, overwritten
     * @param dtype        F32 or BF16
     * @param rows         R
     * @param dim          D
     * @param accumulateDx add into dx instead of overwriting it (the residual gradient it holds)
     * @param stream       a {@code CUstream}, 0 for the legacy default stream
     */
    public static void backward(long dOut, long x, long w, long rstd, long dx, long dw, long partials, DType dtype,
            int rows, int dim, boolean accumulateDx, long stream) {
        String op = "RmsNorm.backward";
        check(op, x, w, dtype, rows, dim, 0f);
        Checks.pointer(op, "dOut", dOut, dtype.bytes());
        Checks.pointer(op, "rstd", rstd, Float.BYTES);
        Checks.pointer(op, "dx", dx, dtype.bytes());
        Checks.pointer(op, "dw", dw, Float.BYTES);
        Checks.pointer(op, "partials", partials, Float.BYTES);
        long bytes = (long) rows * dim * dtype.bytes();
        int parts = backwardPartials(dtype, rows, dim);
        long scratch = 4L * parts * dim;
        Checks.sameOrDisjoint(op, "dx", dx, "dOut", dOut, bytes);
        Checks.disjoint(op, "dx", dx, bytes, "x", x, bytes);
        Checks.disjoint(op, "dx", dx, bytes, "w", w, (long) dim * dtype.bytes());
        Checks.disjoint(op, "dw", dw, 4L * dim, "partials", partials, scratch);
        Checks.disjoint(op, "partials", partials, scratch, "dx", dx, bytes);
        Checks.disjoint(op, "dw", dw, 4L * dim, "dx", dx, bytes);
        int lanes = lanes(dtype, dim);
        // one fp32 accumulator row per row group (at most 8 * 1024 or 32 * 64 floats: 32 KiB), or per block
        int smem = lanes != 0 ? rowsPerBlock(lanes) * dim * Float.BYTES : dim <= SMEM_MAX_D ? dim * Float.BYTES : 0;
        KernelArgs args = KernelArgs.local().ptr(dOut).ptr(x).ptr(w).ptr(rstd).ptr(dx).ptr(partials).i32(rows)
                .i32(dim).i32(accumulateDx ? 1 : 0).i32(lanes);
        (dtype == DType.F32 ? BWD_F32 : BWD_BF16).launch(parts, 1, 1, THREADS, 1, 1, smem, stream, args);
        KernelArgs reduce = KernelArgs.local().ptr(partials).ptr(dw).i32(parts).i32(dim);
        DW_REDUCE.launch((dim + 31) / 32, 1024, stream, reduce);
    }

    private static void check(String op, long x, long w, DType dtype, int rows, int dim, float eps) {
        Checks.dtype(op, dtype);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "dim", dim);
        Checks.pointer(op, "x", x, dtype.bytes());
        Checks.pointer(op, "w", w, dtype.bytes());
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException(op + ": eps must be finite and >= 0, got " + eps);
        }
    }
}
