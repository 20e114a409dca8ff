package dev.rlsr.trainer.rl;

import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.model.GrpoLoss;

/**
 * A GRPO / RLSR stage. Each step samples {@code groupSize} completions for each of {@code promptsPerStep} prompts,
 * scores them once, turns rewards into advantages and runs {@code mu} policy updates on that rollout batch (each
 * update = one optimizer step over all P*G rows, in micro-batches of {@code microBatch} rows).
 *
 * @param promptsPerStep  P prompts per rollout batch
 * @param groupSize       G completions per prompt (>= 2 for a non-zero group advantage)
 * @param steps           rollout batches (the stage ends after {@code steps * mu} optimizer steps)
 * @param mu              policy updates per rollout batch against the stored old log-probs (1 = on-policy)
 * @param lr              peak learning rate (after warmup, cosine-decayed to {@code lr * minLrRatio})
 * @param warmupSteps     linear warmup length in optimizer steps
 * @param minLrRatio      final learning rate as a fraction of lr, in [0, 1]
 * @param weightDecay     AdamW decoupled weight decay
 * @param maxGradNorm     global-norm clipping threshold (0 = no clipping)
 * @param clipLow         ratio clip epsilon below 1 (0.2)
 * @param clipHigh        ratio clip epsilon above 1 (0.2; DAPO 0.28)
 * @param beta            KL coefficient to the frozen initial policy (k3 estimator); 0 = no reference model at all
 * @param lossLevel       TOKEN (DAPO), SEQUENCE (GRPO) or DR_GRPO (constant normaliser: maxNewTokens per row)
 * @param advantageNorm   GROUP, BATCH or NONE_STD (Dr. GRPO)
 * @param eps             added to the std in advantage normalisation
 * @param microBatch      rows per forward/backward during updates (gradient accumulation); 0 = all rows at once
 * @param sampling        rollout sampling (its seed is the base of every step's rollout seed)
 * @param checkpointEvery rollout batches between checkpoints (0 = only at the end)
 * @param seed            prompt order
 */
public record RlConfig(int promptsPerStep, int groupSize, int steps, int mu, double lr, int warmupSteps,
                       double minLrRatio, double weightDecay, double maxGradNorm, double clipLow, double clipHigh,
                       double beta, GrpoLoss.Level lossLevel, AdvantageNorm advantageNorm, double eps, int microBatch,
                       SamplingConfig sampling, int checkpointEvery, long seed) {
    public RlConfig {
        if (promptsPerStep < 1) {
            throw new IllegalArgumentException("prompts per step must be >= 1, got " + promptsPerStep);
        }
        if (groupSize < 1) {
            throw new IllegalArgumentException("group size G must be >= 1 (>= 2 to learn anything), got " + groupSize);
        }
        if (steps < 0) {
            throw new IllegalArgumentException("RL steps must be >= 0, got " + steps);
        }
        if (mu < 1) {
            throw new IllegalArgumentException("mu (updates per rollout batch) must be >= 1, got " + mu);
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
        if (!(clipLow >= 0 && clipLow < 1) || !(clipHigh >= 0)) {
            throw new IllegalArgumentException("clip epsilons must satisfy 0 <= clip_low < 1 and clip_high >= 0, got "
                    + clipLow + ", " + clipHigh);
        }
        if (!(beta >= 0)) {
            throw new IllegalArgumentException("KL beta must be >= 0, got " + beta);
        }
        if (lossLevel == null || advantageNorm == null || sampling == null) {
            throw new IllegalArgumentException("RL config needs a loss level (TOKEN, SEQUENCE, DR_GRPO), an advantage "
                    + "normalisation (GROUP, BATCH, NONE_STD) and a sampling config");
        }
        if (!(eps >= 0)) {
            throw new IllegalArgumentException("advantage eps must be >= 0, got " + eps);
        }
        if (microBatch < 0) {
            throw new IllegalArgumentException("micro batch must be >= 0 (0 = whole batch), got " + microBatch);
        }
        if (checkpointEvery < 0) {
            throw new IllegalArgumentException("checkpoint_every must be >= 0, got " + checkpointEvery);
        }
    }

    /** The rows of one rollout batch, P*G. */
    public int rows() {
        return promptsPerStep * groupSize;
    }

    /** Optimizer steps in the stage (for the LR schedule). */
    public long optimizerSteps() {
        return (long) steps * mu;
    }

    /** The loss this config asks for. */
    public GrpoLoss loss() {
        return new GrpoLoss(clipLow, clipHigh, beta, lossLevel, lossLevel == GrpoLoss.Level.DR_GRPO
                ? sampling.maxNewTokens() : 0);
    }

    /** GRPO defaults for P prompts, G samples and a number of steps: lr 1e-6, clip 0.2, beta 0, token level. */
    public static RlConfig defaults(int promptsPerStep, int groupSize, int steps, SamplingConfig sampling) {
        return new RlConfig(promptsPerStep, groupSize, steps, 1, 1e-6, 0, 0.1, 0.0, 1.0, 0.2, 0.2, 0.0,
                GrpoLoss.Level.TOKEN, AdvantageNorm.GROUP, 1e-4, 0, sampling, 0, 0);
    }

    public RlConfig withLr(double newLr) {
        return new RlConfig(promptsPerStep, groupSize, steps, mu, newLr, warmupSteps, minLrRatio, weightDecay,
                maxGradNorm, clipLow, clipHigh, beta, lossLevel, advantageNorm, eps, microBatch, sampling,
                checkpointEvery, seed);
    }
}
