package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Batched cosine similarity on the GPU ({@code native/cuda/cosine_similarity.cu}), the RLSR reward.
 *
 * <p>Shapes (row-major, contiguous): pairs a (N,D), b (N,D) -> out (N); against a reference ref (P,D),
 * responses (P,G,D) -> out (P,G). Inputs fp32 or bf16, fp32 accumulation, fp32 output;
 * {@code cos = dot(a,b) / max(||a|| * ||b||, eps)}, so a zero vector gives 0, not NaN.
 * All pointers are device addresses in the calling thread's current context; launches are asynchronous on
 * {@code stream} (0 = the legacy default stream). {@link CosineSimilarityReference} is the CPU twin.
 */
public final class CosineSimilarity {
    /** Default eps of the denominator: keeps zero vectors at cos 0 and is far below any real norm product. */
    public static final float DEFAULT_EPS = 1e-8f;

    static final String FILE = "cosine_similarity";
    private static final Kernel K_F32 = Kernel.of(FILE, "cosine_similarity_f32_kernel");
    private static final Kernel K_BF16 = Kernel.of(FILE, "cosine_similarity_bf16_kernel");
    private static final int THREADS = 256;
    private static final int WARPS_PER_BLOCK = THREADS / 32;

    private CosineSimilarity() {
    }

    /** a (N,D), b (N,D) -> out (N) fp32, eps {@link #DEFAULT_EPS}. */
    public static void pairs(long a, long b, DType dtype, long out, int n, int d, long stream) {
        pairs(a, b, dtype, out, n, d, DEFAULT_EPS, stream);
    }

    public static void pairs(long a, long b, DType dtype, long out, int n, int d, float eps, long stream) {
        String op = "CosineSimilarity.pairs";
        check(op, a, "a", b, "b", dtype, out, n, d, eps);
        launch(dtype, a, b, out, n, 1, d, eps, stream);
    }

    /** ref (P,D), responses (P,G,D) -> out (P,G) fp32, eps {@link #DEFAULT_EPS}. */
    public static void againstReference(long ref, long responses, DType dtype, long out, int p, int g, int d, long stream) {
        againstReference(ref, responses, dtype, out, p, g, d, DEFAULT_EPS, stream);
    }

    public static void againstReference(long ref, long responses, DType dtype, long out, int p, int g, int d, float eps,
            long stream) {
        String op = "CosineSimilarity.againstReference";
        Checks.positive(op, "p (prompts)", p);
        Checks.positive(op, "g (responses per prompt)", g);
        int rows = Checks.multiply(op, "p*g", p, g);
        check(op, ref, "ref", responses, "responses", dtype, out, rows, d, eps);
        launch(dtype, ref, responses, out, rows, g, d, eps, stream);
    }

    private static void check(String op, long a, String aName, long b, String bName, DType dtype, long out, int rows,
            int d, float eps) {
        Checks.dtype(op, dtype);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "d (embedding size)", d);
        Checks.pointer(op, aName, a, dtype.bytes());
        Checks.pointer(op, bName, b, dtype.bytes());
        Checks.pointer(op, "out", out, Float.BYTES);
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException(op + ": eps must be finite and >= 0, got " + eps);
        }
        Checks.disjoint(op, "out", out, (long) rows * Float.BYTES, bName, b, (long) rows * d * dtype.bytes());
    }

    /**
     * Warps per output row: one warp while a lane has fewer than 16 vectors of 16 bytes to read, more for long rows
     * so that a large batch is cut into many small work units (less tail at the end of the grid).
     */
    static int warpsPerRow(DType dtype, int d) {
        long vectors = (long) d * dtype.bytes() / 16;
        return vectors < 512 ? 1 : vectors < 1024 ? 2 : 4;
    }

    private static void launch(DType dtype, long a, long b, long out, int rows, int group, int d, float eps, long stream) {
        Kernel kernel = dtype == DType.F32 ? K_F32 : K_BF16;
        int wpr = warpsPerRow(dtype, d);
        int rowsPerBlock = WARPS_PER_BLOCK / wpr;
        int grid = (int) (((long) rows + rowsPerBlock - 1) / rowsPerBlock);
        KernelArgs args = KernelArgs.local().ptr(a).ptr(b).ptr(out).i32(rows).i32(group).i32(d).f32(eps).i32(wpr);
        kernel.launch(grid, THREADS, stream, args);
    }
}
