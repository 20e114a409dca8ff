package dev.rlsr.trainer.sft;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One supervised optimizer step: mean token cross-entropy over the step's label tokens (all micro-batches), the
 * gradient's global norm before clipping, the lr used, and eval loss when it was measured at this step (else NaN).
 */
public record SftStepMetrics(long step, int epoch, double loss, double gradNorm, double lr, long labelTokens,
                             double tokensPerSecond, double evalLoss, double stepSeconds) {
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epoch", epoch);
        m.put("loss", loss);
        m.put("grad_norm", gradNorm);
        m.put("lr", lr);
        m.put("label_tokens", labelTokens);
        m.put("tokens_per_s", tokensPerSecond);
        if (!Double.isNaN(evalLoss)) {
            m.put("eval_loss", evalLoss);
        }
        m.put("step_s", stepSeconds);
        return m;
    }
}
