package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Exact GELU ({@code native/cuda/gelu.cu}), HF's "gelu" and {@code torch.nn.GELU()}:
 * {@code out = x * Phi(x)} with {@code Phi(x) = erfc(-x/sqrt(2)) / 2} (CUDA's {@code erfcf}, a few ulp on the whole
 * line, where {@code (1 + erf(x/sqrt(2)))/2} would cancel for x &lt;&lt; 0).
 *
 * <p>Shapes: x, out (n) in the activation dtype (F32 or BF16), n up to and beyond 2^31-1; out may be x.
 * {@link GeluReference} is the CPU twin. Asynchronous on {@code stream}.
 */
public final class Gelu {
    static final String FILE = "gelu";
    private static final Kernel F32 = Kernel.of(FILE, "gelu_forward_f32_kernel");
    private static final Kernel BF16 = Kernel.of(FILE, "gelu_forward_bf16_kernel");
    private static final int THREADS = 256;
    private static final int MAX_GRID = 1 << 16;

    private Gelu() {
    }

    /**
     * {@code out = gelu(x)} element-wise.
     *
     * @param x      input (n), activation dtype
     * @param out    output (n): {@code x} itself or a buffer that does not overlap it
     * @param dtype  F32 or BF16
     * @param n      elements
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void forward(long x, long out, DType dtype, long n, long stream) {
        String op = "Gelu.forward";
        Checks.dtype(op, dtype);
        if (n <= 0) {
            throw new IllegalArgumentException(op + ": n must be positive, got " + n);
        }
        Checks.pointer(op, "x", x, dtype.bytes());
        Checks.pointer(op, "out", out, dtype.bytes());
        Checks.sameOrDisjoint(op, "out", out, "x", x, n * dtype.bytes());
        long per = 16 / dtype.bytes();
        long vectors = (n + per - 1) / per;
        int grid = (int) Math.min((vectors + THREADS - 1) / THREADS, MAX_GRID);
        KernelArgs args = KernelArgs.local().ptr(x).ptr(out).i64(n);
        (dtype == DType.F32 ? F32 : BF16).launch(grid, THREADS, stream, args);
    }
}
