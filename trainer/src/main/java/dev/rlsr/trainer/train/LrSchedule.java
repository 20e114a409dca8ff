package dev.rlsr.trainer.train;

/**
 * Linear warmup then cosine decay to a floor, as HF {@code get_cosine_with_min_lr_schedule_with_warmup} (one cycle):
 * for optimizer step s (0-based, the step about to be taken)
 * <pre>
 *   s &lt; warmup:  lr = peak * s / warmup
 *   otherwise:   p = (s - warmup) / max(1, total - warmup),  f = 0.5 * (1 + cos(pi * min(p, 1)))
 *                lr = peak * (minRatio + (1 - minRatio) * f)
 * </pre>
 * As in HF the very first warmup step has lr 0.
 *
 * @param peakLr      learning rate after warmup
 * @param warmupSteps warmup length
 * @param totalSteps  optimizer steps of the whole stage
 * @param minLrRatio  final lr as a fraction of peak, in [0, 1]
 */
public record LrSchedule(double peakLr, long warmupSteps, long totalSteps, double minLrRatio) {
    public LrSchedule {
        if (!(peakLr >= 0) || Double.isInfinite(peakLr)) {
            throw new IllegalArgumentException("peak learning rate must be a finite number >= 0, got " + peakLr);
        }
        if (warmupSteps < 0 || totalSteps < 0) {
            throw new IllegalArgumentException("warmup and total steps must be >= 0, got " + warmupSteps + ", "
                    + totalSteps);
        }
        if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
            throw new IllegalArgumentException("min_lr_ratio must be in [0, 1], got " + minLrRatio);
        }
    }

    /** The learning rate for optimizer step {@code step} (0-based). */
    public double lr(long step) {
        if (step < warmupSteps) {
            return peakLr * step / warmupSteps;
        }
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        double f = 0.5 * (1 + Math.cos(Math.PI * Math.min(progress, 1.0)));
        return peakLr * (minLrRatio + (1 - minLrRatio) * f);
    }
}
