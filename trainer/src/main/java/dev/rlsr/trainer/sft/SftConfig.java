package dev.rlsr.trainer.sft;

/**
 * A supervised stage (SFT on chat examples, or plain language-model pretraining on raw text).
 *
 * @param epochs          passes over the training data
 * @param batchSize       sequences (or packed rows) per micro-batch
 * @param gradAccum       micro-batches per optimizer step (the step's loss is the mean over all their label tokens)
 * @param lr              peak learning rate (linear warmup, then cosine decay to {@code lr * minLrRatio})
 * @param warmupSteps     warmup length in optimizer steps
 * @param minLrRatio      final learning rate as a fraction of lr, in [0, 1]
 * @param weightDecay     AdamW decoupled weight decay
 * @param maxGradNorm     global-norm clipping threshold (0 = no clipping)
 * @param packing         concatenate sequences into rows of maxSeqLen (no padding; attention may cross sequence
 *                        boundaries, as TRL's packing without flash-attention position resets); false = pad
 * @param maxSeqLen       longest row in tokens; longer sequences are truncated
 * @param evalEvery       optimizer steps between eval-loss measurements (0 = only at the end)
 * @param checkpointEvery optimizer steps between checkpoints (0 = only at the end)
 * @param seed            data order (shuffled per epoch from the seed and the epoch)
 * @param promptMasking   train only on the response tokens (false: every token, as in pretraining)
 * @param groupByLength   padded batches of similar-length sequences, in shuffled batch order (less padding; ignored
 *                        with packing)
 */
public record SftConfig(int epochs, int batchSize, int gradAccum, double lr, int warmupSteps, double minLrRatio,
                        double weightDecay, double maxGradNorm, boolean packing, int maxSeqLen, int evalEvery,
                        int checkpointEvery, long seed, boolean promptMasking, boolean groupByLength) {
    public SftConfig {
        if (epochs < 0) {
            throw new IllegalArgumentException("epochs must be >= 0, got " + epochs);
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        if (gradAccum < 1) {
            throw new IllegalArgumentException("gradient accumulation steps must be >= 1, got " + gradAccum);
        }
        // the optimizer computes in fp32: a larger rate would become infinity there
        if (!(lr >= 0) || !(lr <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("learning rate must be a number in [0, 3.4e38] (fp32), got " + lr);
        }
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmup steps must be >= 0, got " + warmupSteps);
        }
        if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
            throw new IllegalArgumentException("min_lr_ratio must be in [0, 1], got " + minLrRatio);
        }
        if (!(weightDecay >= 0)) {
            throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay);
        }
        if (!(maxGradNorm >= 0)) {
            throw new IllegalArgumentException("max grad norm must be >= 0 (0 = no clipping), got " + maxGradNorm);
        }
        if (maxSeqLen < 2) {
            throw new IllegalArgumentException("max sequence length must be >= 2 tokens, got " + maxSeqLen);
        }
        if (evalEvery < 0 || checkpointEvery < 0) {
            throw new IllegalArgumentException("eval_every and checkpoint_every must be >= 0, got " + evalEvery + ", "
                    + checkpointEvery);
        }
    }

    /**
     * A config with random (not length-grouped) batches.
     *
     * @param epochs          passes over the training data
     * @param batchSize       sequences per micro-batch
     * @param gradAccum       micro-batches per optimizer step
     * @param lr              peak learning rate
     * @param warmupSteps     warmup steps
     * @param minLrRatio      final learning rate as a fraction of lr
     * @param weightDecay     AdamW weight decay
     * @param maxGradNorm     clipping threshold (0 = none)
     * @param packing         pack sequences into rows
     * @param maxSeqLen       longest row
     * @param evalEvery       steps between eval losses (0 = at the end)
     * @param checkpointEvery steps between checkpoints (0 = at the end)
     * @param seed            data order
     * @param promptMasking   train only on the response tokens
     */
    public SftConfig(int epochs, int batchSize, int gradAccum, double lr, int warmupSteps, double minLrRatio,
                     double weightDecay, double maxGradNorm, boolean packing, int maxSeqLen, int evalEvery,
                     int checkpointEvery, long seed, boolean promptMasking) {
        this(epochs, batchSize, gradAccum, lr, warmupSteps, minLrRatio, weightDecay, maxGradNorm, packing, maxSeqLen,
                evalEvery, checkpointEvery, seed, promptMasking, false);
    }

    /** Defaults for a given epochs/batch/lr/length: no accumulation, no warmup, cosine to 10%, clip 1.0, padding, prompt masking. */
    public static SftConfig defaults(int epochs, int batchSize, double lr, int maxSeqLen) {
        return new SftConfig(epochs, batchSize, 1, lr, 0, 0.1, 0.0, 1.0, false, maxSeqLen, 0, 0, 0, true);
    }
}
