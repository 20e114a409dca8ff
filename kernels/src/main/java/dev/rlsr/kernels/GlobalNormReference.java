package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuVec;

/**
 * CPU reference and CPU implementation of {@link GlobalNorm}: the CPU backend's sum of squares (fp32 Vector API lanes
 * over blocks of 4096 elements, the blocks summed in double) and {@code GradClip}'s clip factor.
 */
public final class GlobalNormReference {
    private static final int BLOCK = 4096;

    private GlobalNormReference() {
    }

    /**
     * {@code sum(x^2)} of the view {@code x[off, off+n)}.
     *
     * @param x   the array
     * @param off offset of the view
     * @param n   elements
     * @return the sum of squares
     */
    public static double sumOfSquares(float[] x, int off, int n) {
        Rows.checkRange("x", x.length, off, n, "(n)");
        double s = 0;
        // float lanes per block of 4096 keep the rounding error tiny; blocks are summed in double
        for (int i = 0; i < n; i += BLOCK) {
            s += CpuVec.sumSquares(x, off + i, Math.min(BLOCK, n - i));
        }
        return s;
    }

    /**
     * The factor {@code torch.nn.utils.clip_grad_norm_} scales gradients by: {@code min(1, maxNorm / (norm + 1e-6))}
     * with {@code norm = (float) sqrt(sumSq)}, 1 when {@code maxNorm <= 0} (no clipping) or the factor is not below 1.
     * A NaN sum of squares gives NaN (a non-finite gradient shows in the update instead of passing as "no clip").
     *
     * @param sumSq   the sum of squares of all gradients
     * @param maxNorm the clipping threshold
     * @return the scale
     */
    public static float clipScale(double sumSq, float maxNorm) {
        if (!(maxNorm > 0)) {
            return 1f;
        }
        float total = (float) Math.sqrt(sumSq);
        double coef = maxNorm / (total + 1e-6);
        return Double.isNaN(coef) ? Float.NaN : coef < 1.0 ? (float) coef : 1f;
    }
}
