package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * The GRPO objective on the device ({@code native/cuda/grpo_loss.cu}); {@link GrpoLossReference} is its double
 * precision CPU twin and documents the math.
 *
 * <p>Shapes: logp, oldLogp, refLogp, dLogp (B, L) F32; mask (B, L) <b>I32</b> (each token's weight: 1 on completion
 * tokens, 0 elsewhere, like the other masks of the device engine); advantages (B) F32; stats (B, 5) F32 scratch;
 * result (4) F32 = {loss, mean ratio, clip fraction, mean KL}, indexed by {@link #LOSS}, {@link #MEAN_RATIO},
 * {@link #CLIP_FRACTION}, {@link #MEAN_KL}. dLogp and result are overwritten. Two launches, one 256-thread block per
 * row each, deterministic (fixed-order reductions); arithmetic in fp32 (the k3 KL through its Taylor series near 0,
 * where {@code exp(d) - d - 1} would cancel). Launches are asynchronous on {@code stream}.
 */
public final class GrpoLossKernel {
    static final String FILE = "grpo_loss";
    private static final Kernel ROWS = Kernel.of(FILE, "grpo_loss_rows_kernel");
    private static final Kernel FINISH = Kernel.of(FILE, "grpo_loss_finish_kernel");
    private static final int THREADS = 256;
    /** F32 values per row in the stats scratch. */
    static final int STATS_PER_ROW = 5;

    /** Index of the loss in {@code result}. */
    public static final int LOSS = 0;
    /** Index of the mean ratio r over masked tokens in {@code result}. */
    public static final int MEAN_RATIO = 1;
    /** Index of the fraction of masked tokens where the clipped branch was taken in {@code result}. */
    public static final int CLIP_FRACTION = 2;
    /** Index of the mean k3 KL over masked tokens in {@code result} (0 when beta = 0). */
    public static final int MEAN_KL = 3;
    /** F32 values in {@code result}. */
    public static final int RESULT_SIZE = 4;

    private GrpoLossKernel() {
    }

    /**
     * Bytes of the F32 scratch {@code stats (B, 5)}.
     *
     * @param batch B
     * @return the size in bytes
     */
    public static long scratchBytes(int batch) {
        Checks.positive("GrpoLossKernel.scratchBytes", "batch", batch);
        return 4L * STATS_PER_ROW * batch;
    }

    /**
     * Loss, dL/dlogp and the diagnostics of one batch.
     *
     * @param logp                (B, L) F32 policy log-probs of the sampled tokens
     * @param oldLogp             (B, L) F32 log-probs of the sampling policy, or 0 when fully on-policy (ratio 1,
     *                            as oldLogp = logp)
     * @param refLogp             (B, L) F32 reference-model log-probs; 0 (absent) is allowed only when beta = 0
     * @param mask                (B, L) I32 token weights (1 = completion token)
     * @param advantages          (B) F32
     * @param dLogp               (B, L) F32 output, d loss / d logp (0 where masked)
     * @param stats               F32 scratch of {@link #scratchBytes(int)} bytes
     * @param result              (4) F32 output: loss, mean ratio, clip fraction, mean KL
     * @param batch               B
     * @param len                 L
     * @param clipLow             epsilon below 1, in [0, 1)
     * @param clipHigh            epsilon above 1, finite and &gt;= 0
     * @param beta                KL coefficient, finite and &gt;= 0
     * @param level               aggregation
     * @param maxCompletionLength DR_GRPO's per-row normaliser (0 = use L)
     * @param stream              a {@code CUstream}, 0 for the legacy default stream
     */
    public static void compute(long logp, long oldLogp, long refLogp, long mask, long advantages, long dLogp, long stats,
            long result, int batch, int len, double clipLow, double clipHigh, double beta, GrpoLevel level,
            int maxCompletionLength, long stream) {
        String op = "GrpoLossKernel.compute";
        Checks.positive(op, "batch (B)", batch);
        Checks.positive(op, "len (L)", len);
        if (!(clipLow >= 0 && clipLow < 1) || !(clipHigh >= 0) || Double.isInfinite(clipHigh)) {
            throw new IllegalArgumentException(op + ": clip epsilons must satisfy 0 <= clipLow < 1 and finite "
                    + "clipHigh >= 0, got " + clipLow + ", " + clipHigh);
        }
        if (!(beta >= 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException(op + ": KL beta must be finite and >= 0, got " + beta);
        }
        if (level == null) {
            throw new IllegalArgumentException(op + ": aggregation level is required (TOKEN, SEQUENCE or DR_GRPO)");
        }
        if (maxCompletionLength < 0) {
            throw new IllegalArgumentException(op + ": maxCompletionLength must be >= 0, got " + maxCompletionLength);
        }
        Checks.pointer(op, "logp", logp, Float.BYTES);
        Checks.optionalPointer(op, "oldLogp", oldLogp, Float.BYTES);
        if (beta > 0) {
            Checks.pointer(op, "refLogp (needed when beta > 0)", refLogp, Float.BYTES);
        } else {
            Checks.optionalPointer(op, "refLogp", refLogp, Float.BYTES);
        }
        Checks.pointer(op, "mask", mask, Integer.BYTES);
        Checks.pointer(op, "advantages", advantages, Float.BYTES);
        Checks.pointer(op, "dLogp", dLogp, Float.BYTES);
        Checks.pointer(op, "stats", stats, Float.BYTES);
        Checks.pointer(op, "result", result, Float.BYTES);
        long bl = 4L * Checks.multiply(op, "B*L", batch, len);
        long st = scratchBytes(batch);
        long res = 4L * RESULT_SIZE;
        String[] inNames = {"logp", "oldLogp", "refLogp", "mask", "advantages"};
        long[] in = {logp, oldLogp, refLogp, mask, advantages};
        long[] inBytes = {bl, bl, bl, bl, 4L * batch};
        for (int i = 0; i < in.length; i++) {
            if (in[i] != 0) {
                Checks.disjoint(op, "dLogp", dLogp, bl, inNames[i], in[i], inBytes[i]);
                Checks.disjoint(op, "stats", stats, st, inNames[i], in[i], inBytes[i]);
                Checks.disjoint(op, "result", result, res, inNames[i], in[i], inBytes[i]);
            }
        }
        Checks.disjoint(op, "dLogp", dLogp, bl, "stats", stats, st);
        Checks.disjoint(op, "dLogp", dLogp, bl, "result", result, res);
        Checks.disjoint(op, "stats", stats, st, "result", result, res);
        float lo = (float) (1 - clipLow), hi = (float) (1 + clipHigh);
        KernelArgs rows = KernelArgs.local().ptr(logp).ptr(oldLogp).ptr(beta > 0 ? refLogp : 0).ptr(mask)
                .ptr(advantages).ptr(dLogp).ptr(stats).i32(batch).i32(len).f32(lo).f32(hi).f32((float) beta);
        ROWS.launch(batch, THREADS, stream, rows);
        KernelArgs finish = KernelArgs.local().ptr(stats).ptr(dLogp).ptr(result).i32(batch).i32(len)
                .i32(level.ordinal()).i32(maxCompletionLength);
        FINISH.launch(batch, THREADS, stream, finish);
    }
}
