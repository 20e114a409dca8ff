package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Fused cross entropy over the vocabulary without materialising softmax ({@code native/cuda/cross_entropy.cu}).
 *
 * <p>Shapes: logits, dLogits (N,V) in the activation dtype (F32 or BF16), contiguous (row stride V); targets (N)
 * I32; rowLoss (N) F32; lossSum (1) F32.
 * <ul>
 * <li>{@code rowLoss[n] = logsumexp(logits[n]) - logits[n, targets[n]]}, one read of the logits (online softmax);</li>
 * <li>{@code dLogits[n] = gradScale * (softmax(logits[n]) - onehot(targets[n]))}, a second read, written in place
 * over the logits or into a separate buffer;</li>
 * <li>{@code lossSum += sum_n rowLoss[n]}, a second launch that sums the rows in a fixed order (deterministic: the
 * same bits every run).</li>
 * </ul>
 * A target &lt; 0 (ignore index, e.g. -100) gives rowLoss 0 and a zero gradient row. A target &gt;= V cannot be
 * checked on the host (targets live on the device): its rowLoss, and so lossSum, become NaN. Launches are
 * asynchronous on {@code stream}. {@link CrossEntropyReference} is the CPU twin.
 */
public final class CrossEntropy {
    static final String FILE = "cross_entropy";
    private static final Kernel F32 = Kernel.of(FILE, "cross_entropy_f32_kernel");
    private static final Kernel BF16 = Kernel.of(FILE, "cross_entropy_bf16_kernel");
    private static final Kernel SUM = Kernel.of(FILE, "cross_entropy_loss_sum_kernel");
    private static final int THREADS = 256; // one block per row

    private CrossEntropy() {
    }

    /**
     * Loss rows, their sum added into {@code lossSum}, and the gradient (two launches).
     *
     * @param logits    (N,V), activation dtype
     * @param dtype     F32 or BF16
     * @param targets   (N) I32; negative = ignored
     * @param rowLoss   (N) F32, overwritten with the per-row losses
     * @param lossSum   (1) F32, accumulated: {@code += sum(rowLoss)}
     * @param dLogits   (N,V), activation dtype: {@code logits} itself (in place) or a buffer that does not overlap it
     * @param n         N rows
     * @param v         V vocabulary
     * @param gradScale the gradient's factor (e.g. 1 / number of counted rows), finite
     * @param stream    a {@code CUstream}, 0 for the legacy default stream
     */
    public static void forwardBackward(long logits, DType dtype, long targets, long rowLoss, long lossSum, long dLogits,
            int n, int v, float gradScale, long stream) {
        String op = "CrossEntropy.forwardBackward";
        Checks.dtype(op, dtype);
        Checks.positive(op, "n (rows)", n);
        Checks.positive(op, "v (vocabulary)", v);
        Checks.pointer(op, "logits", logits, dtype.bytes());
        Checks.pointer(op, "targets", targets, Integer.BYTES);
        Checks.pointer(op, "rowLoss", rowLoss, Float.BYTES);
        Checks.pointer(op, "lossSum", lossSum, Float.BYTES);
        Checks.pointer(op, "dLogits", dLogits, dtype.bytes());
        Checks.finite(op, "gradScale", gradScale);
        long bytes = (long) n * v * dtype.bytes();
        Checks.sameOrDisjoint(op, "dLogits", dLogits, "logits", logits, bytes);
        Checks.disjoint(op, "rowLoss", rowLoss, 4L * n, "dLogits", dLogits, bytes);
        Checks.disjoint(op, "rowLoss", rowLoss, 4L * n, "lossSum", lossSum, 4L);
        Checks.disjoint(op, "lossSum", lossSum, 4L, "dLogits", dLogits, bytes);
        Checks.disjoint(op, "rowLoss", rowLoss, 4L * n, "targets", targets, 4L * n);
        KernelArgs args = KernelArgs.local().ptr(logits).ptr(targets).ptr(rowLoss).ptr(dLogits).i32(n).i32(v)
                .f32(gradScale);
        (dtype == DType.F32 ? F32 : BF16).launch(n, THREADS, stream, args);
        KernelArgs sum = KernelArgs.local().ptr(rowLoss).ptr(lossSum).i32(n);
        SUM.launch(1, 1024, stream, sum);
    }
}
