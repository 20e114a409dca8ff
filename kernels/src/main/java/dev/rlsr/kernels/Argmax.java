package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Row-wise argmax on the device ({@code native/cuda/argmax.cu}): x (R, W) F32 or BF16, row stride W, into I32 (R).
 * torch semantics, as CpuBackend's {@code argmaxRows}: the first index of the largest value, NaN larger than any
 * number (the first NaN wins), -0 equal to +0. One block per row (greedy decoding over the vocabulary).
 * Launches are asynchronous on {@code stream}. {@link ArgmaxReference} is the CPU twin.
 */
public final class Argmax {
    static final String FILE = "argmax";
    private static final Kernel F32 = Kernel.of(FILE, "argmax_f32_kernel");
    private static final Kernel BF16_ = Kernel.of(FILE, "argmax_bf16_kernel");
    private static final int THREADS = 512;

    private Argmax() {
    }

    /**
     * {@code out[r] = argmax_j x[r, j]}.
     *
     * @param x      values (rows, width), row-major
     * @param dtype  F32 or BF16
     * @param rows   rows, &gt; 0
     * @param width  elements per row, &gt; 0
     * @param out    I32 (rows), disjoint from x
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void rows(long x, DType dtype, int rows, int width, long out, long stream) {
        String op = "Argmax.rows";
        Checks.activation(op, dtype);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "width", width);
        Checks.pointer(op, "x", x, dtype.bytes());
        Checks.pointer(op, "out", out, Integer.BYTES);
        Checks.disjoint(op, "out", out, 4L * rows, "x", x, (long) rows * width * dtype.bytes());
        Kernel kernel = dtype == DType.F32 ? F32 : BF16_;
        kernel.launch(rows, THREADS, stream, KernelArgs.local().ptr(x).i32(rows).i32(width).ptr(out));
    }
}
