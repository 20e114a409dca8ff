package dev.rlsr.trainer.reward;

import dev.rlsr.kernels.CosineSimilarityReference;

/**
 * Batched cosine similarity of embedding rows on the CPU through the kernels module's
 * {@link CosineSimilarityReference} (the plain-Java reference of the GPU cosine kernel, double accumulation),
 * so that the reward and the CUDA kernel share one definition: {@code a.b / max(|a| |b|, eps)}. The full cosine,
 * not a bare dot product, keeps encoders whose rows are only approximately unit length (bf16, another
 * implementation) correct; a zero row gives 0. The result is clamped to [-1, 1] against fp32 rounding.
 */
final class Cosine {
    private Cosine() {
    }

    /** rows of a (N,D) against rows of b (N,D) -> (N). */
    static double[] pairs(float[][] a, float[][] b, int d) {
        int n = a.length;
        double[] out = new double[n];
        if (n == 0) {
            return out;
        }
        float[] fa = new float[n * d];
        float[] fb = new float[n * d];
        for (int i = 0; i < n; i++) {
            System.arraycopy(a[i], 0, fa, i * d, d);
            System.arraycopy(b[i], 0, fb, i * d, d);
        }
        float[] c = CosineSimilarityReference.pairs(fa, fb, n, d);
        for (int i = 0; i < n; i++) {
            out[i] = Math.max(-1.0, Math.min(1.0, c[i]));
        }
        return out;
    }

    static boolean isFinite(float[] v) {
        for (float x : v) {
            if (!Float.isFinite(x)) {
                return false;
            }
        }
        return true;
    }
}
