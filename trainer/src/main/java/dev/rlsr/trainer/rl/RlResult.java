package dev.rlsr.trainer.rl;

import java.util.List;

/**
 * The outcome of an RL stage.
 *
 * @param steps            rollout batches completed in total (including those before a resume)
 * @param optimizerSteps   AdamW steps taken in total
 * @param history          metrics of the steps run by this call, in order
 */
public record RlResult(long steps, long optimizerSteps, List<RlStepMetrics> history) {
    public RlResult {
        history = List.copyOf(history);
    }

    /** Mean reward of the last step run, or NaN. */
    public double lastRewardMean() {
        return history.isEmpty() ? Double.NaN : history.getLast().rewardMean();
    }
}
