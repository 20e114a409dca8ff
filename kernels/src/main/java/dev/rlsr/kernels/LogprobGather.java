package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Log-probability of the target token without materialising softmax ({@code native/cuda/logprob_gather.cu}).
 *
 * <p>Shapes: logits (N,V) fp32 or bf16, contiguous (row stride V); targets (N) int32; logp, lse, dlogp (N) fp32.
 * <ul>
 * <li>forward: {@code lse = logsumexp(logits/T)}, {@code logp = logits[target]/T - lse}, one pass over the logits.</li>
 * <li>backward: the chain rule through logp, {@code dlogits = dlogp * dlogp/dlogits
 * = (onehot(target) - softmax(logits/T)) * dlogp / T}, with {@code dlogp} the upstream gradient dL/dlogp (for an NLL
 * loss pass {@code dlogp = -1} to get {@code (softmax - onehot) / T}), from the saved lse, one pass, in place over the
 * logits or into a separate buffer of the same dtype.</li>
 * </ul>
 * A target &lt; 0 (ignore index, e.g. -100) gives logp = 0 and a zero gradient row (lse is still computed). A target
 * &gt;= V cannot be checked on the host (targets live on the device) and yields logp = NaN.
 * Launches are asynchronous on {@code stream}. {@link LogprobGatherReference} is the CPU twin.
 */
public final class LogprobGather {
    static final String FILE = "logprob_gather";
    private static final Kernel FWD_F32 = Kernel.of(FILE, "logprob_gather_f32_kernel");
    private static final Kernel FWD_BF16 = Kernel.of(FILE, "logprob_gather_bf16_kernel");
    private static final Kernel BWD_F32 = Kernel.of(FILE, "logprob_gather_backward_f32_kernel");
    private static final Kernel BWD_BF16 = Kernel.of(FILE, "logprob_gather_backward_bf16_kernel");
    private static final int THREADS = 256; // one block per row

    private LogprobGather() {
    }

    public static void forward(long logits, DType dtype, long targets, long logp, long lse, int n, int v,
            float temperature, long stream) {
        String op = "LogprobGather.forward";
        check(op, logits, dtype, targets, n, v, temperature);
        Checks.pointer(op, "logp", logp, Float.BYTES);
        Checks.pointer(op, "lse", lse, Float.BYTES);
        Checks.disjoint(op, "logp", logp, (long) n * Float.BYTES, "lse", lse, (long) n * Float.BYTES);
        Kernel kernel = dtype == DType.F32 ? FWD_F32 : FWD_BF16;
        KernelArgs args = KernelArgs.local().ptr(logits).ptr(targets).ptr(logp).ptr(lse).i32(n).i32(v)
                .f32(temperature);
        kernel.launch(n, THREADS, stream, args);
    }

    /** dlogits (N,V) in {@code dlogits}, which is either {@code logits} itself or a buffer that does not overlap it. */
    public static void backward(long logits, DType dtype, long targets, long lse, long dlogp, long dlogits, int n, int v,
            float temperature, long stream) {
        String op = "LogprobGather.backward";
        check(op, logits, dtype, targets, n, v, temperature);
        Checks.pointer(op, "lse", lse, Float.BYTES);
        Checks.pointer(op, "dlogp", dlogp, Float.BYTES);
        Checks.pointer(op, "dlogits", dlogits, dtype.bytes());
        long bytes = (long) n * v * dtype.bytes();
        if (dlogits != logits) {
            Checks.disjoint(op, "dlogits", dlogits, bytes, "logits", logits, bytes);
        }
        Kernel kernel = dtype == DType.F32 ? BWD_F32 : BWD_BF16;
        KernelArgs args = KernelArgs.local().ptr(logits).ptr(targets).ptr(lse).ptr(dlogp).ptr(dlogits).i32(n).i32(v)
                .f32(temperature);
        kernel.launch(n, THREADS, stream, args);
    }

    /** The gradient overwrites the logits. */
    public static void backwardInPlace(long logits, DType dtype, long targets, long lse, long dlogp, int n, int v,
            float temperature, long stream) {
        backward(logits, dtype, targets, lse, dlogp, logits, n, v, temperature, stream);
    }

    private static void check(String op, long logits, DType dtype, long targets, int n, int v, float temperature) {
        Checks.dtype(op, dtype);
        Checks.positive(op, "n (rows)", n);
        Checks.positive(op, "v (vocabulary)", v);
        Checks.pointer(op, "logits", logits, dtype.bytes());
        Checks.pointer(op, "targets", targets, Integer.BYTES);
        if (!(temperature > 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException(op + ": temperature must be finite and > 0, got " + temperature);
        }
    }
}
