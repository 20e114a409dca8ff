package dev.rlsr.trainer.train;

import java.util.Map;

/**
 * Receives everything a run reports (metrics.jsonl lines, progress bars, console). Every method has an empty default,
 * so an implementation overrides only what it shows. Called from the training thread, in loop order.
 */
public interface TrainListener {

    /** A listener that ignores everything (tests, library use). */
    TrainListener NONE = new TrainListener() {};

    /** A phase begins, e.g. "sft epoch 1", "rl", "rollout", "eval"; {@code totalUnits} of {@code unit} (0 = unknown). */
    default void phaseStarted(String phase, long totalUnits, String unit) {}

    /** Units done so far in the current phase and live statistics (e.g. "loss", "tok/s"); drives a progress bar. */
    default void progress(long doneUnits, Map<String, Double> liveStats) {}

    default void phaseFinished(String phase) {}

    /**
     * Optimizer step {@code step} (counted from 1, as in {@link #step}) of {@code stage} begins: nothing of it has run
     * yet. Called from the training thread.
     */
    default void stepStarting(String stage, long step) {}

    /** One optimizer step's metrics (one metrics.jsonl line); {@code stage} is "sft", "pretrain" or "rl". */
    default void step(String stage, long step, Map<String, Object> metrics) {}

    default void log(String message) {}
}
