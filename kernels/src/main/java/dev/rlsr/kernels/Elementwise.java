package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Elementwise ops and the bias gradient on the device ({@code native/cuda/elementwise.cu}).
 *
 * <ul>
 * <li>{@link #fill}: a float value into F32 or BF16 elements (rounded to bf16 to nearest even), {@link #fillI32}: an
 * int into I32 elements;</li>
 * <li>{@link #add}: {@code out = a + b} in fp32 (bf16 widened, the sum rounded once); out may be a or b itself;</li>
 * <li>{@link #scale}: {@code t *= s} in fp32, in place;</li>
 * <li>{@link #addI32}: {@code t += delta} on I32 elements, in place, wrapping like Java's {@code int} (the positions
 * and cache length of a graph-replayed decode step, advanced on the device);</li>
 * <li>{@link #biasGrad}: {@code dBias (cols) += column sums of dy (rows, cols)}, dy F32 or BF16, dBias F32, summed
 * in fp32 in an order fixed by the shape (same bits every run; no float atomics).</li>
 * </ul>
 * Sizes count elements; addresses need only be element-aligned (views at any offset), 16-byte vectors are used where
 * the operands allow. Launches are asynchronous on {@code stream}. {@link ElementwiseReference} is the CPU twin.
 */
public final class Elementwise {
    static final String FILE = "elementwise";
    private static final Kernel FILL32 = Kernel.of(FILE, "elementwise_fill_b32_kernel");
    private static final Kernel FILL16 = Kernel.of(FILE, "elementwise_fill_b16_kernel");
    private static final Kernel ADD_F32 = Kernel.of(FILE, "elementwise_add_f32_kernel");
    private static final Kernel ADD_BF16 = Kernel.of(FILE, "elementwise_add_bf16_kernel");
    private static final Kernel SCALE_F32 = Kernel.of(FILE, "elementwise_scale_f32_kernel");
    private static final Kernel SCALE_BF16 = Kernel.of(FILE, "elementwise_scale_bf16_kernel");
    private static final Kernel ADD_I32 = Kernel.of(FILE, "elementwise_add_i32_kernel");
    private static final Kernel BIAS_F32 = Kernel.of(FILE, "elementwise_bias_grad_f32_kernel");
    private static final Kernel BIAS_BF16 = Kernel.of(FILE, "elementwise_bias_grad_bf16_kernel");
    private static final Kernel BIAS_FINISH = Kernel.of(FILE, "elementwise_bias_grad_finish_kernel");
    private static final int THREADS = 256;
    /** Elements per thread and grid-stride step: one 16-byte vector of bf16. */
    private static final int PER_THREAD = 8;
    /** Columns per bias-gradient block (32 lanes x 4). */
    private static final int BIAS_COLS = 128;
    /** Bias gradient: a chunk has at least this many rows, and the grid at most about this many blocks. */
    private static final int BIAS_MIN_ROWS = 64;
    private static final int BIAS_TARGET_BLOCKS = 1024;

    /**
     * The most scratch {@link #biasGrad} ever needs, for any shape: 2^18 floats. (Several row chunks are used only
     * when the columns give fewer than 1024 blocks, so chunks * cols stays below 1024 * 128 + cols &lt; 2^18.)
     */
    public static final long BIAS_GRAD_SCRATCH_MAX_BYTES = 4L << 18;

    private Elementwise() {
    }

    /**
     * Fills {@code n} F32 or BF16 elements with {@code value} (BF16: rounded to nearest even).
     *
     * @param t      the elements, element-aligned
     * @param dtype  F32 or BF16
     * @param n      elements, &gt; 0
     * @param value  the value
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void fill(long t, DType dtype, long n, float value, long stream) {
        String op = "Elementwise.fill";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "t", t, dtype.bytes());
        if (dtype == DType.F32) {
            fillBits(FILL32, t, n, Float.floatToRawIntBits(value), stream);
        } else {
            fillBits(FILL16, t, n, BF16.fromFloat(value) & 0xffff, stream);
        }
    }

    /**
     * Fills {@code n} I32 elements with {@code value}.
     *
     * @param t      the elements, 4-byte aligned
     * @param n      elements, &gt; 0
     * @param value  the value
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void fillI32(long t, long n, int value, long stream) {
        String op = "Elementwise.fillI32";
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "t", t, Integer.BYTES);
        fillBits(FILL32, t, n, value, stream);
    }

    private static void fillBits(Kernel kernel, long t, long n, int bits, long stream) {
        kernel.launch(Checks.gridStride(n, THREADS * PER_THREAD), THREADS, stream,
                KernelArgs.local().ptr(t).i64(n).i32(bits));
    }

    /**
     * {@code out[i] = a[i] + b[i]} for i &lt; n. {@code out} is {@code a}, {@code b}, or disjoint from both; a and b
     * may overlap each other (they are only read).
     *
     * @param a      first operand (n)
     * @param b      second operand (n)
     * @param out    result (n)
     * @param dtype  F32 or BF16, of all three
     * @param n      elements, &gt; 0
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void add(long a, long b, long out, DType dtype, long n, long stream) {
        String op = "Elementwise.add";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "a", a, dtype.bytes());
        Checks.pointer(op, "b", b, dtype.bytes());
        Checks.pointer(op, "out", out, dtype.bytes());
        long bytes = n * dtype.bytes();
        if (out != a) {
            Checks.disjoint(op, "out", out, bytes, "a", a, bytes);
        }
        if (out != b) {
            Checks.disjoint(op, "out", out, bytes, "b", b, bytes);
        }
        Kernel kernel = dtype == DType.F32 ? ADD_F32 : ADD_BF16;
        kernel.launch(Checks.gridStride(n, THREADS * PER_THREAD), THREADS, stream,
                KernelArgs.local().ptr(a).ptr(b).ptr(out).i64(n));
    }

    /**
     * {@code t[i] *= s} for i &lt; n, in place.
     *
     * @param t      the elements (n)
     * @param dtype  F32 or BF16
     * @param n      elements, &gt; 0
     * @param s      the factor
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void scale(long t, DType dtype, long n, float s, long stream) {
        String op = "Elementwise.scale";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "t", t, dtype.bytes());
        Kernel kernel = dtype == DType.F32 ? SCALE_F32 : SCALE_BF16;
        kernel.launch(Checks.gridStride(n, THREADS * PER_THREAD), THREADS, stream,
                KernelArgs.local().ptr(t).i64(n).f32(s));
    }

    /**
     * {@code t[i] += delta} for i &lt; n on I32 elements, in place; overflow wraps modulo 2^32, as Java's {@code int}.
     *
     * @param t      the elements (n), 4-byte aligned
     * @param n      elements, &gt; 0
     * @param delta  the increment (negative to decrement)
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void addI32(long t, long n, int delta, long stream) {
        String op = "Elementwise.addI32";
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "t", t, Integer.BYTES);
        ADD_I32.launch(Checks.gridStride(n, THREADS * PER_THREAD), THREADS, stream,
                KernelArgs.local().ptr(t).i64(n).i32(delta));
    }

    /** Row chunks of the bias gradient: enough blocks to fill the GPU when the column strips alone are few. */
    static int biasGradChunks(int rows, int cols) {
        int strips = (cols + BIAS_COLS - 1) / BIAS_COLS;
        int byRows = (rows + BIAS_MIN_ROWS - 1) / BIAS_MIN_ROWS;
        int byGrid = (BIAS_TARGET_BLOCKS + strips - 1) / strips;
        int chunks = Math.max(1, Math.min(byRows, byGrid));
        int perChunk = (rows + chunks - 1) / chunks;
        return (rows + perChunk - 1) / perChunk; // no empty chunk
    }

    /**
     * Scratch bytes {@link #biasGrad} needs for this shape: 0 when it sums in one pass (wide layers), else
     * {@code chunks * cols * 4}; never more than {@link #BIAS_GRAD_SCRATCH_MAX_BYTES}.
     *
     * @param rows rows of dy, &gt; 0
     * @param cols columns of dy, &gt; 0
     * @return bytes of F32 scratch
     */
    public static long biasGradScratchBytes(int rows, int cols) {
        String op = "Elementwise.biasGradScratchBytes";
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "cols", cols);
        int chunks = biasGradChunks(rows, cols);
        return chunks == 1 ? 0 : 4L * chunks * cols;
    }

    /**
     * {@code dBias[c] += sum over r of dy[r, c]}: the bias part of a linear layer's weight gradient, accumulated.
     * Deterministic: partial sums in an order fixed by (rows, cols), through {@code scratch} when the columns alone
     * give too few blocks (see {@link #biasGradScratchBytes}).
     *
     * @param dy      upstream gradient (rows, cols), row-major, F32 or BF16
     * @param dtype   dtype of dy
     * @param rows    rows, &gt; 0
     * @param cols    columns, &gt; 0
     * @param dBias   F32 (cols), accumulated; disjoint from dy and scratch
     * @param scratch F32 device memory of {@link #biasGradScratchBytes} bytes (0 allowed when that is 0)
     * @param stream  a {@code CUstream}, 0 for the legacy default stream
     */
    public static void biasGrad(long dy, DType dtype, int rows, int cols, long dBias, long scratch, long stream) {
        String op = "Elementwise.biasGrad";
        Checks.activation(op, dtype);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "cols", cols);
        Checks.pointer(op, "dy", dy, dtype.bytes());
        Checks.pointer(op, "dBias", dBias, Float.BYTES);
        long dyBytes = (long) rows * cols * dtype.bytes();
        Checks.disjoint(op, "dBias", dBias, 4L * cols, "dy", dy, dyBytes);
        int chunks = biasGradChunks(rows, cols);
        int perChunk = (rows + chunks - 1) / chunks;
        if (chunks > 1) {
            Checks.pointer(op, "scratch", scratch, Float.BYTES);
            long scratchBytes = 4L * chunks * cols;
            Checks.disjoint(op, "scratch", scratch, scratchBytes, "dy", dy, dyBytes);
            Checks.disjoint(op, "scratch", scratch, scratchBytes, "dBias", dBias, 4L * cols);
        }
        int strips = (cols + BIAS_COLS - 1) / BIAS_COLS;
        Kernel kernel = dtype == DType.F32 ? BIAS_F32 : BIAS_BF16;
        kernel.launch(strips, chunks, 1, THREADS, 1, 1, 0, stream,
                KernelArgs.local().ptr(dy).i32(rows).i32(cols).i32(perChunk).ptr(dBias).ptr(chunks > 1 ? scratch : 0));
        if (chunks > 1) {
            BIAS_FINISH.launch((cols + THREADS - 1) / THREADS, THREADS, stream,
                    KernelArgs.local().ptr(scratch).i32(chunks).i32(cols).ptr(dBias));
        }
    }
}
