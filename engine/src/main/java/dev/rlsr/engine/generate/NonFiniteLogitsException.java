package dev.rlsr.engine.generate;

/**
 * A logits row with no finite maximum (NaN, or every entry -inf): nothing can be sampled from it. It means the model
 * produced non-finite values (its weights, or a diverged training step), so a trainer can stop with a clear message.
 */
public final class NonFiniteLogitsException extends IllegalStateException {
    /**
     * A logits row that cannot be sampled.
     *
     * @param message what could not be sampled
     */
    public NonFiniteLogitsException(String message) {
        super(message);
    }
}
