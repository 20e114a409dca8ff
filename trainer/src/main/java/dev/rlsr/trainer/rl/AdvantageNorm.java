package dev.rlsr.trainer.rl;

/** How rewards (P,G) become advantages; see {@link Advantages}. */
public enum AdvantageNorm {
    /** GRPO: {@code (r - mean_g) / (std_g + eps)}, std the sample standard deviation of the group. */
    GROUP,
    /** Group mean, batch scale: {@code (r - mean_g) / (std_batch + eps)}, std over all P*G rewards (TRL "batch"). */
    BATCH,
    /** Dr. GRPO: {@code r - mean_g}, no std scaling. */
    NONE_STD
}
