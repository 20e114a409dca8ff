package dev.rlsr.trainer.sft;

import java.util.List;

/**
 * @param steps        optimizer steps of the stage in total (including those before a resume)
 * @param finalEvalLoss eval loss at the end, NaN without eval data
 * @param history      the steps run by this call
 */
public record SftResult(long steps, double finalEvalLoss, List<SftStepMetrics> history) {
    public SftResult {
        history = List.copyOf(history);
    }

    /** Loss of the last step run, or NaN. */
    public double lastLoss() {
        return history.isEmpty() ? Double.NaN : history.getLast().loss();
    }
}
