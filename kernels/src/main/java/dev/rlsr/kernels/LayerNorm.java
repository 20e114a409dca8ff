package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * LayerNorm forward over rows of width D ({@code native/cuda/layernorm.cu}), for BERT encoders:
 * {@code out = (x - mean) / sqrt(var + eps) * w + b} with two-pass statistics (mean, then the mean squared deviation)
 * as torch and the CPU backend.
 *
 * <p>Shapes: x, out (R,D) in the activation dtype (F32 or BF16), contiguous; w, b (D) the same dtype. out may be x.
 * Rows of D &lt;= 1024 go to one warp each, longer rows to one 256-thread block. {@link LayerNormReference} is the CPU
 * twin. Asynchronous on {@code stream}.
 */
public final class LayerNorm {
    static final String FILE = "layernorm";
    private static final Kernel F32 = Kernel.of(FILE, "layernorm_forward_f32_kernel");
    private static final Kernel BF16 = Kernel.of(FILE, "layernorm_forward_bf16_kernel");
    private static final int THREADS = 256;
    private static final int WARPS = THREADS / 32;
    private static final int WARP_MAX_D = 1024;

    private LayerNorm() {
    }

    /**
     * {@code out (R,D) = (x - mean) * rstd * w + b} per row.
     *
     * @param x      input (R,D), activation dtype
     * @param w      weight (D), activation dtype
     * @param b      bias (D), activation dtype
     * @param out    output (R,D): {@code x} itself or a buffer that does not overlap it
     * @param dtype  F32 or BF16
     * @param rows   R
     * @param dim    D
     * @param eps    added to the variance (finite, &gt;= 0)
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void forward(long x, long w, long b, long out, DType dtype, int rows, int dim, float eps,
            long stream) {
        String op = "LayerNorm.forward";
        Checks.dtype(op, dtype);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "dim", dim);
        Checks.pointer(op, "x", x, dtype.bytes());
        Checks.pointer(op, "w", w, dtype.bytes());
        Checks.pointer(op, "b", b, dtype.bytes());
        Checks.pointer(op, "out", out, dtype.bytes());
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException(op + ": eps must be finite and >= 0, got " + eps);
        }
        long bytes = (long) rows * dim * dtype.bytes();
        long wb = (long) dim * dtype.bytes();
        Checks.sameOrDisjoint(op, "out", out, "x", x, bytes);
        Checks.disjoint(op, "out", out, bytes, "w", w, wb);
        Checks.disjoint(op, "out", out, bytes, "b", b, wb);
        int grid = dim <= WARP_MAX_D ? (rows + WARPS - 1) / WARPS : rows;
        KernelArgs args = KernelArgs.local().ptr(x).ptr(w).ptr(b).ptr(out).i32(rows).i32(dim).f32(eps);
        (dtype == DType.F32 ? F32 : BF16).launch(grid, THREADS, stream, args);
    }
}
