package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.Tensor;

import java.util.Collection;
import java.util.Map;

/** Global-norm gradient clipping, as {@code torch.nn.utils.clip_grad_norm_} (L2 norm, eps 1e-6). */
public final class GradClip {
    private GradClip() {}

    /**
     * The L2 norm of all gradients together, without changing them.
     *
     * @param grads the gradients
     * @return {@code sqrt(sum of squares)}
     */
    public static float globalNorm(Collection<Tensor> grads) {
        double ss = 0;
        for (Tensor g : grads) {
            ss += g.backend().sumOfSquares(g);
        }
        return (float) Math.sqrt(ss);
    }

    /**
     * Scales every gradient by {@code min(1, maxNorm / (totalNorm + 1e-6))} and returns the total norm before
     * clipping (what torch returns and trainers log).
     *
     * @param grads   the gradients, scaled in place
     * @param maxNorm the largest allowed norm
     * @return the norm before clipping
     */
    public static float clipGlobalNorm(Collection<Tensor> grads, float maxNorm) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("maxNorm must be > 0, got " + maxNorm);
        }
        float total = globalNorm(grads);
        double coef = maxNorm / (total + 1e-6);
        if (coef < 1.0) {
            for (Tensor g : grads) {
                g.backend().scale(g, (float) coef);
            }
        }
        return total;
    }

    /**
     * {@link #clipGlobalNorm(Collection, float)} over a model's gradient map.
     *
     * @param grads   gradients by name, scaled in place
     * @param maxNorm the largest allowed norm
     * @return the norm before clipping
     */
    public static float clipGlobalNorm(Map<String, Tensor> grads, float maxNorm) {
        return clipGlobalNorm(grads.values(), maxNorm);
    }
}
