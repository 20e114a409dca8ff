package dev.rlsr.trainer.train;

import java.util.Map;

/**
 * Plain data describing where a stage stands, enough to continue a run identically: optimizer steps taken, the
 * current epoch, examples consumed in the data order, the stage seed (data order and sampling are functions of the
 * seed and the step, so no RNG object is stored), and free-form extras (e.g. "rollout_seed").
 *
 * @param stage        "sft", "pretrain" or "rl"
 * @param step         optimizer steps completed
 * @param epoch        0-based epoch the next step belongs to (SFT; 0 for RL)
 * @param examplesSeen examples consumed so far in the whole stage
 * @param seed         the stage seed
 * @param extra        anything else (string values), never null
 */
public record TrainState(String stage, long step, int epoch, long examplesSeen, long seed, Map<String, String> extra) {
    public TrainState {
        if (stage == null || stage.isBlank()) {
            throw new IllegalArgumentException("train state needs a stage name");
        }
        if (step < 0 || epoch < 0 || examplesSeen < 0) {
            throw new IllegalArgumentException("train state counters must be >= 0, got step " + step + ", epoch "
                    + epoch + ", examplesSeen " + examplesSeen);
        }
        extra = extra == null ? Map.of() : Map.copyOf(extra);
    }

    /** The state of a stage that has not started. */
    public static TrainState initial(String stage, long seed) {
        return new TrainState(stage, 0, 0, 0, seed, Map.of());
    }
}
