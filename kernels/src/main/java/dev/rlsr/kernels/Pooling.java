package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Sentence-embedding pooling ({@code native/cuda/pooling.cu}): masked mean pooling as sentence-transformers and L2
 * row normalisation as {@code torch.nn.functional.normalize}. {@link PoolingReference} is the CPU twin. Asynchronous
 * on {@code stream}.
 */
public final class Pooling {
    static final String FILE = "pooling";
    private static final Kernel MEAN_F32 = Kernel.of(FILE, "mean_pool_f32_kernel");
    private static final Kernel MEAN_BF16 = Kernel.of(FILE, "mean_pool_bf16_kernel");
    private static final Kernel L2_F32 = Kernel.of(FILE, "l2_normalize_f32_kernel");
    private static final Kernel L2_BF16 = Kernel.of(FILE, "l2_normalize_bf16_kernel");
    private static final int THREADS = 256;
    private static final int WARPS = THREADS / 32;
    private static final int WARP_MAX_W = 1024;

    private Pooling() {
    }

    /**
     * {@code pooled[b] = sum of x[b,t] over tokens with mask[b,t] != 0, divided by max(count, 1e-9)} (a row without
     * tokens pools to zeros); tokens are summed in order in fp32.
     *
     * @param x      (B,T,C), activation dtype
     * @param mask   (B,T) I32, or 0 when every token counts
     * @param pooled (B,C), activation dtype, overwritten; must not overlap x
     * @param dtype  F32 or BF16
     * @param batch  B
     * @param tokens T
     * @param width  C
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void meanPool(long x, long mask, long pooled, DType dtype, int batch, int tokens, int width,
            long stream) {
        String op = "Pooling.meanPool";
        Checks.dtype(op, dtype);
        Checks.positive(op, "batch (B)", batch);
        Checks.positive(op, "tokens (T)", tokens);
        Checks.positive(op, "width (C)", width);
        Checks.pointer(op, "x", x, dtype.bytes());
        Checks.optionalPointer(op, "mask", mask, Integer.BYTES);
        Checks.pointer(op, "pooled", pooled, dtype.bytes());
        long pb = (long) batch * width * dtype.bytes();
        Checks.disjoint(op, "pooled", pooled, pb, "x", x, (long) batch * tokens * width * dtype.bytes());
        if (mask != 0) {
            Checks.disjoint(op, "pooled", pooled, pb, "mask", mask, 4L * batch * tokens);
        }
        int tiles = (width + THREADS - 1) / THREADS;
        int grid = Checks.multiply(op, "B * ceil(C/256) blocks", batch, tiles);
        KernelArgs args = KernelArgs.local().ptr(x).ptr(mask).ptr(pooled).i32(batch).i32(tokens).i32(width);
        (dtype == DType.F32 ? MEAN_F32 : MEAN_BF16).launch(grid, THREADS, stream, args);
    }

    /**
     * In place: every row of {@code x (R,W)} divided by {@code max(||row||, eps)}.
     *
     * @param x      (R,W), activation dtype, contiguous
     * @param dtype  F32 or BF16
     * @param rows   R
     * @param width  W
     * @param eps    the smallest norm divided by (finite, &gt;= 0; torch uses 1e-12)
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void l2NormalizeRows(long x, DType dtype, int rows, int width, float eps, long stream) {
        String op = "Pooling.l2NormalizeRows";
        Checks.dtype(op, dtype);
        Checks.positive(op, "rows (R)", rows);
        Checks.positive(op, "width (W)", width);
        Checks.pointer(op, "x", x, dtype.bytes());
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException(op + ": eps must be finite and >= 0, got " + eps);
        }
        int grid = width <= WARP_MAX_W ? (rows + WARPS - 1) / WARPS : rows;
        KernelArgs args = KernelArgs.local().ptr(x).i32(rows).i32(width).f32(eps);
        (dtype == DType.F32 ? L2_F32 : L2_BF16).launch(grid, THREADS, stream, args);
    }
}
