package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

/**
 * Global-norm gradient clipping, as {@code torch.nn.utils.clip_grad_norm_} (L2 norm over every gradient, eps 1e-6),
 * computed on the backend over the flat gradient buffer: the norm and the clip factor stay in device memory and
 * {@link AdamW#step(Parameterized, Tensor)} applies the factor, so clipping costs no host round trip.
 */
public final class GradClip {
    private GradClip() {}

    /**
     * Writes the sum of squares of all gradients (the global norm squared) and the clip factor
     * {@code min(1, maxNorm / (norm + 1e-6))} of a model.
     *
     * @param model   the model (its flat gradient)
     * @param maxNorm threshold; &lt;= 0 means no clipping (factor 1)
     * @param sumSq   F32 (1) output
     * @param scale   F32 (1) output
     */
    public static void clipScale(Parameterized model, float maxNorm, Tensor sumSq, Tensor scale) {
        Tensor g = model.store().gradFlat();
        if (g == null) {
            throw new IllegalArgumentException("the model is frozen: it has no gradients to clip");
        }
        g.backend().clipScale(g, maxNorm, sumSq, scale);
    }

    /**
     * The global gradient norm, read back to the host (a synchronisation point: for tests and tools, not for
     * training loops).
     *
     * @param model the model
     * @return the L2 norm of all gradients together
     */
    public static float globalNorm(Parameterized model) {
        Backend be = model.store().backend();
        try (Tensor sumSq = be.zeros(1); Tensor scale = be.zeros(1)) {
            clipScale(model, 0f, sumSq, scale);
            return (float) Math.sqrt(be.download(sumSq)[0]);
        }
    }

    /**
     * Scales the gradients in place by the clip factor and returns the norm before clipping (what torch returns);
     * reads the norm back to the host. Training loops use {@link #clipScale} and pass the factor to AdamW instead.
     *
     * @param model   the model
     * @param maxNorm threshold, &gt; 0
     * @return the norm before clipping
     */
    public static float clipGlobalNorm(Parameterized model, float maxNorm) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("maxNorm must be > 0, got " + maxNorm);
        }
        Backend be = model.store().backend();
        try (Tensor sumSq = be.zeros(1); Tensor scale = be.zeros(1)) {
            clipScale(model, maxNorm, sumSq, scale);
            float s = be.download(scale)[0];
            if (s < 1f) {
                be.scale(model.store().gradFlat(), s);
            }
            return (float) Math.sqrt(be.download(sumSq)[0]);
        }
    }
}
