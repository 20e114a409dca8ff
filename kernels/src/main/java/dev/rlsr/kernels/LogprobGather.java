package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Log-probability of the target token without materialising the softmax over the vocabulary
 * ({@code native/cuda/logprob_gather.cu}): the policy and reference log-probs of GRPO, and their gradient.
 *
 * <p><b>Shapes and dtypes</b>: {@code logits (N,V)} {@link DType#F32} or {@link DType#BF16} (raw bf16 bits),
 * row-major and contiguous (row stride V); {@code targets (N)} int32; {@code logp}, {@code lse} and {@code dlogp}
 * {@code (N)} fp32; {@code dlogits (N,V)} of the logits' dtype. N is usually B*T tokens, V the vocabulary.
 * <ul>
 * <li>{@link #forward}: {@code lse = logsumexp(logits/T)}, {@code logp = logits[target]/T - lse}, one pass over the
 * logits (online softmax), fp32 accumulation.</li>
 * <li>{@link #backward}: the chain rule through logp, {@code dlogits = dlogp * dlogp/dlogits
 * = (onehot(target) - softmax(logits/T)) * dlogp / T}, with {@code dlogp} the upstream gradient dL/dlogp (for an NLL
 * loss pass {@code dlogp = -1} to get {@code (softmax - onehot) / T}), from the saved lse, one pass, in place over the
 * logits ({@link #backwardInPlace}) or into a separate buffer of the same dtype.</li>
 * </ul>
 * A target &lt; 0 (ignore index, e.g. -100) gives logp = 0 and a zero gradient row (lse is still computed). A target
 * &gt;= V cannot be checked on the host (targets live on the device) and yields logp = NaN.
 *
 * <p><b>Pointers, context, stream</b>: device addresses in the calling thread's current CUDA context, each aligned
 * to its element size; launches are asynchronous on {@code stream} ({@code CUstream}, 0 = the legacy default
 * stream): synchronise before reading the outputs. One block per row; nothing is allocated. See the package
 * documentation for the rules all kernels share.
 *
 * <p><b>Errors</b>: a violated precondition throws {@link IllegalArgumentException} naming the argument, before
 * anything is launched. {@link LogprobGatherReference} is the CPU twin with the same contract.
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

    /**
     * {@code logp (N)} and {@code lse (N)} of {@code logits (N,V)} at temperature T.
     *
     * @param logits      device address of {@code logits (N,V)}, {@code dtype}
     * @param dtype       {@link DType#F32} or {@link DType#BF16}, the type of {@code logits}
     * @param targets     device address of {@code targets (N)} int32: the token of each row, &lt; 0 to ignore the row
     * @param logp        device address of {@code logp (N)} fp32, written: {@code log softmax(logits/T)[target]}
     * @param lse         device address of {@code lse (N)} fp32, written: {@code logsumexp(logits/T)}, kept for
     *                    {@link #backward}; must not overlap {@code logp}
     * @param n           N, rows (&gt; 0)
     * @param v           V, the vocabulary size (&gt; 0)
     * @param temperature T, finite and &gt; 0 (1 = plain log-probabilities)
     * @param stream      {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size, a bad temperature or
     *                                  overlapping outputs
     */
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

    /**
     * {@code dlogits (N,V) = (onehot(target) - softmax(logits/T)) * dlogp / T}, written into {@code dlogits}, which is
     * either {@code logits} itself (in place) or a buffer that does not overlap it.
     *
     * @param logits      device address of {@code logits (N,V)}, {@code dtype}, as given to {@link #forward}
     * @param dtype       {@link DType#F32} or {@link DType#BF16}, the type of {@code logits} and {@code dlogits}
     * @param targets     device address of {@code targets (N)} int32, as given to {@link #forward}
     * @param lse         device address of {@code lse (N)} fp32 from {@link #forward} at the same temperature
     * @param dlogp       device address of {@code dlogp (N)} fp32, the upstream gradient dL/dlogp
     * @param dlogits     device address of {@code dlogits (N,V)}, {@code dtype}, overwritten (rows of ignored targets
     *                    become 0)
     * @param n           N, rows (&gt; 0)
     * @param v           V, the vocabulary size (&gt; 0)
     * @param temperature T, finite and &gt; 0, the one of the forward pass
     * @param stream      {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size, a bad temperature or a
     *                                  {@code dlogits} that partly overlaps {@code logits}
     */
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

    /**
     * {@link #backward} with the gradient overwriting the logits: no second (N,V) buffer.
     *
     * @param logits      device address of {@code logits (N,V)}, {@code dtype}; holds {@code dlogits} afterwards
     * @param dtype       {@link DType#F32} or {@link DType#BF16}
     * @param targets     device address of {@code targets (N)} int32
     * @param lse         device address of {@code lse (N)} fp32 from {@link #forward}
     * @param dlogp       device address of {@code dlogp (N)} fp32, the upstream gradient dL/dlogp
     * @param n           N, rows (&gt; 0)
     * @param v           V, the vocabulary size (&gt; 0)
     * @param temperature T, finite and &gt; 0, the one of the forward pass
     * @param stream      {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size or a bad temperature
     */
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
