package dev.rlsr.kernels;

/**
 * How the GRPO loss aggregates its per-token terms {@code pt} over the mask {@code m} of a (B, L) batch (mask sums are
 * clamped to &gt;= 1 as TRL does, so an empty row contributes 0, not NaN).
 */
public enum GrpoLevel {
    /** {@code sum(pt*m) / sum(m)}: every completion token weighs the same. */
    TOKEN,
    /** {@code mean_b(sum_t(pt*m) / sum_t(m))}: every sequence weighs the same. */
    SEQUENCE,
    /** {@code sum(pt*m) / (B * maxCompletionLength)}: Dr. GRPO's constant normaliser. */
    DR_GRPO
}
