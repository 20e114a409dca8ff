package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * SwiGLU of the MLP on the device ({@code native/cuda/swiglu.cu}): {@code h = silu(g) * u} with
 * {@code silu(x) = x * sigmoid(x)}, and the backward {@code du = dh * silu(g)},
 * {@code dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g)))}, written over dg and du. All tensors (n) F32 or BF16,
 * fp32 math, outputs rounded once; the arithmetic follows CpuBackend's {@code swiglu}/{@code swigluBackward}, with
 * CUDA's {@code expf} (at most 2 ulp) in the sigmoid.
 *
 * <p>Aliasing: an output may be the very buffer of an input ({@code h} = g or u; dg and du each = g, u or dh, but not
 * each other); otherwise buffers must not overlap. Launches are asynchronous on {@code stream}.
 * {@link SwigluReference} is the CPU twin.
 */
public final class Swiglu {
    static final String FILE = "swiglu";
    private static final Kernel FWD_F32 = Kernel.of(FILE, "swiglu_f32_kernel");
    private static final Kernel FWD_BF16 = Kernel.of(FILE, "swiglu_bf16_kernel");
    private static final Kernel BWD_F32 = Kernel.of(FILE, "swiglu_backward_f32_kernel");
    private static final Kernel BWD_BF16 = Kernel.of(FILE, "swiglu_backward_bf16_kernel");
    private static final int THREADS = 256;
    /** Elements per thread and grid-stride step: one 16-byte vector of bf16. */
    private static final int PER_THREAD = 8;

    private Swiglu() {
    }

    /**
     * {@code h = silu(g) * u}.
     *
     * @param g      gate projection (n)
     * @param u      up projection (n)
     * @param h      output (n): g, u, or a disjoint buffer
     * @param dtype  F32 or BF16, of all three
     * @param n      elements (N*F), &gt; 0
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void forward(long g, long u, long h, DType dtype, long n, long stream) {
        String op = "Swiglu.forward";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "g", g, dtype.bytes());
        Checks.pointer(op, "u", u, dtype.bytes());
        Checks.pointer(op, "h", h, dtype.bytes());
        long bytes = n * dtype.bytes();
        aliasOrDisjoint(op, "h", h, "g", g, bytes);
        aliasOrDisjoint(op, "h", h, "u", u, bytes);
        Kernel kernel = dtype == DType.F32 ? FWD_F32 : FWD_BF16;
        kernel.launch(Checks.gridStride(n, THREADS * PER_THREAD), THREADS, stream,
                KernelArgs.local().ptr(g).ptr(u).ptr(h).i64(n));
    }

    /**
     * {@code dg, du} from {@code dh}, overwritten (not accumulated).
     *
     * @param g      gate projection (n), as in the forward
     * @param u      up projection (n)
     * @param dh     upstream gradient of h (n)
     * @param dg     gradient of g (n): g, u, dh, or a disjoint buffer
     * @param du     gradient of u (n): g, u, dh, or a disjoint buffer; not dg
     * @param dtype  F32 or BF16, of all five
     * @param n      elements (N*F), &gt; 0
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void backward(long g, long u, long dh, long dg, long du, DType dtype, long n, long stream) {
        String op = "Swiglu.backward";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "g", g, dtype.bytes());
        Checks.pointer(op, "u", u, dtype.bytes());
        Checks.pointer(op, "dh", dh, dtype.bytes());
        Checks.pointer(op, "dg", dg, dtype.bytes());
        Checks.pointer(op, "du", du, dtype.bytes());
        long bytes = n * dtype.bytes();
        Checks.disjoint(op, "dg", dg, bytes, "du", du, bytes);
        for (String out : new String[] {"dg", "du"}) {
            long o = out.equals("dg") ? dg : du;
            aliasOrDisjoint(op, out, o, "g", g, bytes);
            aliasOrDisjoint(op, out, o, "u", u, bytes);
            aliasOrDisjoint(op, out, o, "dh", dh, bytes);
        }
        Kernel kernel = dtype == DType.F32 ? BWD_F32 : BWD_BF16;
        kernel.launch(Checks.gridStride(n, THREADS * PER_THREAD), THREADS, stream,
                KernelArgs.local().ptr(g).ptr(u).ptr(dh).ptr(dg).ptr(du).i64(n));
    }

    private static void aliasOrDisjoint(String op, String outName, long out, String inName, long in, long bytes) {
        if (out != in) {
            Checks.disjoint(op, outName, out, bytes, inName, in, bytes);
        }
    }
}
