package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Sum of squares of one flat F32 buffer and the global-norm clip scale ({@code native/cuda/global_norm.cu}), as
 * {@code torch.nn.utils.clip_grad_norm_} and the CPU's {@code GradClip}:
 * {@code scale = min(1, maxNorm / (sqrt(sumSq) + 1e-6))}, 1 when {@code maxNorm <= 0} (no clipping), NaN when the
 * sum of squares is NaN (a non-finite gradient then shows in the update).
 *
 * <p>Shapes: x (n) F32, n up to and beyond 2^31-1 elements; partials (P) F64 scratch ({@link #scratchBytes(long)});
 * sumSq (1) F32; scale (1) F32. Two launches: {@code P} blocks each write the double sum of their share of x, then one
 * block sums the P partials in a fixed order. Deterministic (the same bits every run), accumulated in double and
 * rounded to F32 once. The scale stays on the device, where {@link AdamWKernel} reads it, so clipping needs no host
 * round trip. Launches are asynchronous on {@code stream}. {@link GlobalNormReference} is the CPU twin.
 */
public final class GlobalNorm {
    static final String FILE = "global_norm";
    private static final Kernel PARTIALS = Kernel.of(FILE, "global_norm_partials_kernel");
    private static final Kernel FINISH = Kernel.of(FILE, "global_norm_finish_kernel");
    private static final int THREADS = 256;
    /** Elements per thread below which another block is not worth a partial. */
    private static final int MIN_PER_THREAD = 16;
    /** Upper bound of P (the finishing block has 1024 threads). */
    static final int MAX_PARTIALS = 1024;

    private GlobalNorm() {
    }

    /**
     * The number P of partial sums for n elements: {@code clamp(ceil(n / 4096), 1, 1024)}, a function of n only.
     *
     * @param n elements
     * @return P
     */
    public static int partials(long n) {
        if (n <= 0) {
            throw new IllegalArgumentException("GlobalNorm.partials: n must be positive, got " + n);
        }
        long p = (n + (long) THREADS * MIN_PER_THREAD - 1) / ((long) THREADS * MIN_PER_THREAD);
        return (int) Math.min(p, MAX_PARTIALS);
    }

    /**
     * Bytes of the F64 scratch {@code partials (P)}: {@code 8 * partials(n)}.
     *
     * @param n elements
     * @return the size in bytes
     */
    public static long scratchBytes(long n) {
        return 8L * partials(n);
    }

    /**
     * {@code sumSq = sum(x^2)} (overwritten).
     *
     * @param x        (n) F32
     * @param n        elements
     * @param partials F64 scratch of {@link #scratchBytes(long)} bytes, 8-byte aligned
     * @param sumSq    (1) F32 output
     * @param stream   a {@code CUstream}, 0 for the legacy default stream
     */
    public static void sumOfSquares(long x, long n, long partials, long sumSq, long stream) {
        launch("GlobalNorm.sumOfSquares", x, n, partials, sumSq, 0f, 0, stream);
    }

    /**
     * {@code sumSq = sum(x^2)} and {@code scale = min(1, maxNorm / (sqrt(sumSq) + 1e-6))} (1 when maxNorm &lt;= 0),
     * both overwritten.
     *
     * @param x        (n) F32
     * @param n        elements
     * @param partials F64 scratch of {@link #scratchBytes(long)} bytes, 8-byte aligned
     * @param sumSq    (1) F32 output
     * @param maxNorm  the clipping threshold; &lt;= 0 disables clipping
     * @param scale    (1) F32 output, the factor for the gradients (see {@link AdamWKernel})
     * @param stream   a {@code CUstream}, 0 for the legacy default stream
     */
    public static void clipScale(long x, long n, long partials, long sumSq, float maxNorm, long scale, long stream) {
        String op = "GlobalNorm.clipScale";
        Checks.pointer(op, "scale", scale, Float.BYTES);
        if (Float.isNaN(maxNorm)) {
            throw new IllegalArgumentException(op + ": maxNorm is NaN; pass a value <= 0 to disable clipping");
        }
        Checks.disjoint(op, "scale", scale, 4L, "sumSq", sumSq, 4L);
        launch(op, x, n, partials, sumSq, maxNorm, scale, stream);
    }

    private static void launch(String op, long x, long n, long partials, long sumSq, float maxNorm, long scale,
            long stream) {
        if (n <= 0) {
            throw new IllegalArgumentException(op + ": n must be positive, got " + n);
        }
        Checks.pointer(op, "x", x, Float.BYTES);
        Checks.pointer(op, "partials", partials, Double.BYTES);
        Checks.pointer(op, "sumSq", sumSq, Float.BYTES);
        int parts = partials(n);
        Checks.disjoint(op, "partials", partials, 8L * parts, "x", x, 4L * n);
        Checks.disjoint(op, "sumSq", sumSq, 4L, "partials", partials, 8L * parts);
        if (scale != 0) {
            Checks.disjoint(op, "scale", scale, 4L, "partials", partials, 8L * parts);
        }
        PARTIALS.launch(parts, THREADS, stream, KernelArgs.local().ptr(x).i64(n).ptr(partials));
        FINISH.launch(1, MAX_PARTIALS, stream,
                KernelArgs.local().ptr(partials).i32(parts).ptr(sumSq).f32(maxNorm).ptr(scale));
    }
}
