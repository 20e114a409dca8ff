package dev.rlsr.trainer.train;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tensor.Tensor;

import java.util.Locale;
import java.util.Map;

/**
 * Training produced a value that is not a finite number: the loss or the gradient norm of a step (checked before the
 * optimizer applies it, so the weights stay as they were), or a weight about to be saved. The run stops instead of
 * training on, so that no NaN model is ever written and {@code latest} keeps naming the last good checkpoint.
 */
public final class NonFiniteException extends RuntimeException {
    /** The stage that diverged. */
    private final String stage;
    /** The 1-based step, -1 when unknown. */
    private final long step;

    /**
     * A divergence of {@code stage} at {@code step}.
     *
     * @param stage   the stage that diverged
     * @param step    the 1-based optimizer step, or -1 when unknown (a final model)
     * @param message the whole message for the user
     */
    public NonFiniteException(String stage, long step, String message) {
        super(message);
        this.stage = stage;
        this.step = step;
    }

    /**
     * The stage that diverged.
     *
     * @return "sft", "rl", ...
     */
    public String stage() {
        return stage;
    }

    /**
     * The step that diverged.
     *
     * @return the optimizer step (1-based) whose loss or gradient was not finite, or after which the weights were
     *         not; -1 when unknown
     */
    public long step() {
        return step;
    }

    /**
     * Throws when the loss or the gradient norm of a step is NaN or infinite.
     *
     * @param stage    the stage, for the message
     * @param step     the 1-based step, for the message
     * @param loss     the step's loss
     * @param gradNorm the step's global gradient norm (before clipping)
     * @param settings the config keys that usually cause it, for the message (e.g. "sft.lr, sft.max_grad_norm")
     */
    public static void checkStep(String stage, long step, double loss, double gradNorm, String settings) {
        if (Double.isFinite(loss) && Double.isFinite(gradNorm)) {
            return;
        }
        throw new NonFiniteException(stage, step, String.format(Locale.ROOT, "%s step %d: the %s (loss %s, gradient"
                        + " norm %s); training stopped before applying it, and nothing of this step was saved."
                        + " Lower the learning rate or enable gradient clipping (%s), or check the data and the"
                        + " start model.", stage, step,
                Double.isFinite(loss) ? "gradient norm is not a finite number" : "loss is not a finite number",
                fmt(loss), fmt(gradNorm), settings));
    }

    /**
     * Throws when a parameter of {@code model} holds a NaN or an infinity (checked before a save, so that a diverged
     * model is never written).
     *
     * @param stage    the stage, for the message
     * @param step     the step after which the weights are saved
     * @param model    the model about to be saved
     * @param settings the config keys that usually cause it, for the message
     */
    public static void checkWeights(String stage, long step, DecoderModel model, String settings) {
        String bad = firstNonFiniteParameter(model.parameters());
        if (bad != null) {
            throw new NonFiniteException(stage, step, stage + " step " + step + ": after the update the weight '" + bad
                    + "' holds values that are not finite numbers (the update diverged); the model was not saved"
                    + " and the last complete checkpoint stays the latest. Lower the learning rate or enable gradient"
                    + " clipping (" + settings + ").");
        }
    }

    /**
     * The first parameter holding a NaN or an infinity.
     *
     * @param params the parameters by name
     * @return the name of the first parameter with a NaN or infinite element, or null when all are finite
     */
    public static String firstNonFiniteParameter(Map<String, Tensor> params) {
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            // host copy per tensor: one tensor at a time bounds the extra memory to the largest parameter
            float[] v = e.getValue().backend().download(e.getValue());
            for (float x : v) {
                if (!Float.isFinite(x)) {
                    return e.getKey();
                }
            }
        }
        return null;
    }

    private static String fmt(double d) {
        return Double.isFinite(d) ? String.format(Locale.ROOT, "%.6g", d) : String.valueOf(d);
    }
}
