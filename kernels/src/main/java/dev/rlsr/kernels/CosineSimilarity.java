package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Batched cosine similarity on the GPU ({@code native/cuda/cosine_similarity.cu}): the RLSR reward
 * {@code cos(E(x ⊕ y), E(x ⊕ y*))} for a whole rollout batch in one launch.
 *
 * <p><b>Shapes</b> (row-major, contiguous, sizes passed explicitly):
 * <ul>
 *   <li>{@link #pairs}: {@code a (N,D)}, {@code b (N,D)} -> {@code out (N)}, {@code out[i] = cos(a[i], b[i])};</li>
 *   <li>{@link #againstReference}: {@code ref (P,D)}, {@code responses (P,G,D)} -> {@code out (P,G)},
 *       {@code out[p][g] = cos(ref[p], responses[p][g])}: each of the G responses of a prompt against its
 *       reference, without repeating the reference G times in memory.</li>
 * </ul>
 * {@code cos = dot(a,b) / max(||a|| * ||b||, eps)}, so a zero vector gives 0, not NaN.
 *
 * <p><b>Dtypes</b>: the inputs are both {@link DType#F32} or both {@link DType#BF16} (raw bf16 bits, 2 bytes per
 * element), chosen by {@code dtype}; accumulation and the output are always fp32.
 *
 * <p><b>Pointers, context, stream</b>: every pointer is a device address ({@code CUdeviceptr} as a {@code long})
 * in the calling thread's current CUDA context, aligned to its element size; {@code out} must not overlap the
 * inputs. The kernel is launched asynchronously on {@code stream} (a {@code CUstream} handle, 0 = the legacy
 * default stream) and the call returns before it finished: synchronise the stream before reading {@code out}.
 * Nothing is allocated and the host is never synchronised. See the package documentation for the rules all
 * kernels share (first call per context compiles with NVRTC, thread safety, errors).
 *
 * <p><b>Errors</b>: a violated precondition throws {@link IllegalArgumentException} naming the argument, before
 * anything is launched. {@link CosineSimilarityReference} is the CPU twin with the same contract.
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

    /**
     * Cosine similarity of N pairs of rows, {@code a (N,D)}, {@code b (N,D)} -> {@code out (N)} fp32, with eps
     * {@link #DEFAULT_EPS}.
     *
     * @param a      device address of {@code a (N,D)}, {@code dtype}
     * @param b      device address of {@code b (N,D)}, {@code dtype}
     * @param dtype  {@link DType#F32} or {@link DType#BF16}, the type of {@code a} and {@code b}
     * @param out    device address of {@code out (N)} fp32; must not overlap {@code b}
     * @param n      N, rows (&gt; 0)
     * @param d      D, the embedding size (&gt; 0)
     * @param stream {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size or overlapping output
     */
    public static void pairs(long a, long b, DType dtype, long out, int n, int d, long stream) {
        pairs(a, b, dtype, out, n, d, DEFAULT_EPS, stream);
    }

    /**
     * As {@link #pairs(long, long, DType, long, int, int, long)} with an explicit eps.
     *
     * @param a      device address of {@code a (N,D)}, {@code dtype}
     * @param b      device address of {@code b (N,D)}, {@code dtype}
     * @param dtype  {@link DType#F32} or {@link DType#BF16}, the type of {@code a} and {@code b}
     * @param out    device address of {@code out (N)} fp32; must not overlap {@code b}
     * @param n      N, rows (&gt; 0)
     * @param d      D, the embedding size (&gt; 0)
     * @param eps    lower bound of the denominator {@code ||a|| * ||b||}, finite and &gt;= 0
     * @param stream {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size, a bad eps or
     *                                  overlapping output
     */
    public static void pairs(long a, long b, DType dtype, long out, int n, int d, float eps, long stream) {
        String op = "CosineSimilarity.pairs";
        check(op, a, "a", b, "b", dtype, out, n, d, eps);
        launch(dtype, a, b, out, n, 1, d, eps, stream);
    }

    /**
     * Each of G responses against its prompt's reference, {@code ref (P,D)}, {@code responses (P,G,D)} ->
     * {@code out (P,G)} fp32, with eps {@link #DEFAULT_EPS}.
     *
     * @param ref       device address of {@code ref (P,D)}, {@code dtype}
     * @param responses device address of {@code responses (P,G,D)}, {@code dtype}
     * @param dtype     {@link DType#F32} or {@link DType#BF16}, the type of {@code ref} and {@code responses}
     * @param out       device address of {@code out (P,G)} fp32; must not overlap {@code responses}
     * @param p         P, prompts (&gt; 0)
     * @param g         G, responses per prompt (&gt; 0; P*G below 2^31)
     * @param d         D, the embedding size (&gt; 0)
     * @param stream    {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size or overlapping output
     */
    public static void againstReference(long ref, long responses, DType dtype, long out, int p, int g, int d, long stream) {
        againstReference(ref, responses, dtype, out, p, g, d, DEFAULT_EPS, stream);
    }

    /**
     * As {@link #againstReference(long, long, DType, long, int, int, int, long)} with an explicit eps.
     *
     * @param ref       device address of {@code ref (P,D)}, {@code dtype}
     * @param responses device address of {@code responses (P,G,D)}, {@code dtype}
     * @param dtype     {@link DType#F32} or {@link DType#BF16}, the type of {@code ref} and {@code responses}
     * @param out       device address of {@code out (P,G)} fp32; must not overlap {@code responses}
     * @param p         P, prompts (&gt; 0)
     * @param g         G, responses per prompt (&gt; 0; P*G below 2^31)
     * @param d         D, the embedding size (&gt; 0)
     * @param eps       lower bound of the denominator, finite and &gt;= 0
     * @param stream    {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size, a bad eps or
     *                                  overlapping output
     */
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
