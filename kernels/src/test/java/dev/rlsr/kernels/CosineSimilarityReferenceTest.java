package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;

import org.junit.jupiter.api.Test;

class CosineSimilarityReferenceTest {
    private static final long SEED = 20261126L;

    static float[] randn(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    // independent formula: the textbook definition, one sequential double loop per quantity
    private static double naive(float[] a, int ao, float[] b, int bo, int d) {
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < d; k++) {
            dot += (double) a[ao + k] * b[bo + k];
        }
        for (int k = 0; k < d; k++) {
            na += (double) a[ao + k] * a[ao + k];
        }
        for (int k = 0; k < d; k++) {
            nb += (double) b[bo + k] * b[bo + k];
        }
        return dot / Math.max(Math.sqrt(na * nb), 1e-8);
    }

    @Test
    void pairsMatchNaiveFormula() {
        Random r = new Random(SEED);
        for (int[] nd : new int[][] {{1, 1}, {7, 3}, {33, 129}, {64, 384}, {5, 1025}}) {
            int n = nd[0], d = nd[1];
            float[] a = randn(r, n * d), b = randn(r, n * d);
            float[] out = CosineSimilarityReference.pairs(a, b, n, d);
            for (int i = 0; i < n; i++) {
                assertEquals(naive(a, i * d, b, i * d, d), out[i], 1e-6, "seed " + SEED + " n=" + n + " d=" + d + " row " + i);
            }
        }
    }

    @Test
    void againstReferenceMatchesNaiveFormula() {
        Random r = new Random(SEED + 1);
        int p = 5, g = 4, d = 77;
        float[] ref = randn(r, p * d), resp = randn(r, p * g * d);
        float[] out = CosineSimilarityReference.againstReference(ref, resp, p, g, d);
        for (int q = 0; q < p; q++) {
            for (int j = 0; j < g; j++) {
                assertEquals(naive(ref, q * d, resp, (q * g + j) * d, d), out[q * g + j], 1e-6, "prompt " + q + " response " + j);
            }
        }
    }

    @Test
    void identicalOppositeScaledAndZero() {
        Random r = new Random(SEED + 2);
        int d = 300;
        float[] a = randn(r, d);
        float[] neg = new float[d], scaled = new float[d], zero = new float[d];
        for (int k = 0; k < d; k++) {
            neg[k] = -a[k];
            scaled[k] = 3.5f * a[k];
        }
        assertEquals(1.0, CosineSimilarityReference.pairs(a, a, 1, d)[0], 1e-6);
        assertEquals(-1.0, CosineSimilarityReference.pairs(a, neg, 1, d)[0], 1e-6);
        float[] b = randn(r, d);
        assertEquals(CosineSimilarityReference.pairs(a, b, 1, d)[0], CosineSimilarityReference.pairs(scaled, b, 1, d)[0], 1e-6);
        assertEquals(0.0f, CosineSimilarityReference.pairs(a, zero, 1, d)[0]); // eps keeps it finite
    }

    @Test
    void bf16InputsEqualTheirWidenedValues() {
        Random r = new Random(SEED + 3);
        int n = 9, d = 65;
        short[] a = BF16.fromFloat(randn(r, n * d)), b = BF16.fromFloat(randn(r, n * d));
        float[] viaBits = CosineSimilarityReference.pairs(a, b, n, d, 1e-8f);
        float[] viaFloat = CosineSimilarityReference.pairs(BF16.toFloat(a), BF16.toFloat(b), n, d);
        for (int i = 0; i < n; i++) {
            assertEquals(viaFloat[i], viaBits[i], 0f);
        }
    }

    @Test
    void rejectsWrongLengths() {
        assertThrows(IllegalArgumentException.class, () -> CosineSimilarityReference.pairs(new float[6], new float[5], 2, 3));
    }
}
