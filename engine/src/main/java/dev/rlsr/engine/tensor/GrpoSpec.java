package dev.rlsr.engine.tensor;

/**
 * The constants of one GRPO loss evaluation on a backend ({@link Backend#grpoLoss}); {@code GrpoLoss} (engine.model)
 * is the user-facing definition and turns itself into this.
 *
 * @param clipLow             epsilon below 1
 * @param clipHigh            epsilon above 1
 * @param beta                KL coefficient (0: no reference log-probs needed)
 * @param aggregation         how per-token terms are averaged
 * @param maxCompletionLength DR_GRPO's constant per-row normaliser (0 = the row length L)
 */
public record GrpoSpec(double clipLow, double clipHigh, double beta, Aggregation aggregation, int maxCompletionLength) {

    /** TOKEN {@code sum(pt*m)/sum(m)}, SEQUENCE {@code mean_b(sum_t(pt*m)/sum_t(m))}, DR_GRPO {@code sum(pt*m)/(B*Lmax)}. */
    public enum Aggregation { TOKEN, SEQUENCE, DR_GRPO }

    public GrpoSpec {
        if (!(clipLow >= 0 && clipLow < 1) || !(clipHigh >= 0)) {
            throw new IllegalArgumentException("clip epsilons must satisfy 0 <= clipLow < 1 and clipHigh >= 0, got "
                    + clipLow + ", " + clipHigh);
        }
        if (!(beta >= 0)) {
            throw new IllegalArgumentException("KL beta must be >= 0, got " + beta);
        }
        if (aggregation == null) {
            throw new IllegalArgumentException("aggregation is required (TOKEN, SEQUENCE or DR_GRPO)");
        }
        if (maxCompletionLength < 0) {
            throw new IllegalArgumentException("maxCompletionLength must be >= 0, got " + maxCompletionLength);
        }
    }
}
