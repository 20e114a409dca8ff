package dev.rlsr.trainer.rl;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What one RL step (one rollout batch and its mu updates) reports. Loss, KL, clip fraction and grad norm are means
 * over the mu updates; KL is the mean k3 estimate over completion tokens (0 without a reference model); entropy is
 * the mean per-token entropy of the sampling distribution; lr is the last update's.
 */
public record RlStepMetrics(long step, double loss, double rewardMean, double rewardStd, double kl,
                            double clipFraction, double entropy, double gradNorm, double lr, double tokensPerSecond,
                            double completionLength, double truncatedFraction, double rolloutSeconds,
                            double rewardSeconds, double updateSeconds, double stepSeconds) {

    /** The metrics.jsonl fields (snake_case). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("loss", loss);
        m.put("reward_mean", rewardMean);
        m.put("reward_std", rewardStd);
        m.put("kl", kl);
        m.put("clip_fraction", clipFraction);
        m.put("entropy", entropy);
        m.put("grad_norm", gradNorm);
        m.put("lr", lr);
        m.put("tokens_per_s", tokensPerSecond);
        m.put("completion_length", completionLength);
        m.put("truncated_fraction", truncatedFraction);
        m.put("rollout_s", rolloutSeconds);
        m.put("reward_s", rewardSeconds);
        m.put("update_s", updateSeconds);
        m.put("step_s", stepSeconds);
        return m;
    }
}
