package dev.rlsr.engine.generate;

import dev.rlsr.kernels.SamplingReference;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sampler on hand-made logits, against probabilities and filters written out independently here (the exact
 * contract, ties and the generator are pinned by the kernels module's SamplingReferenceTest).
 */
class SamplerTest {

    private static float[] logitsOf(double... probs) {
        float[] l = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            l[i] = (float) Math.log(probs[i]);
        }
        return l;
    }

    /** Draws of one row at steps 0..draws-1 (independent numbers of the row's stream). */
    private static int[] histogram(Sampler s, float[] logits, int draws, int row) {
        int[] h = new int[logits.length];
        for (int step = 0; step < draws; step++) {
            h[s.sample(logits, 0, row, step)]++;
        }
        return h;
    }

    @Test
    void unfilteredFrequenciesFollowTheSoftmax() {
        double[] p = {0.1, 0.4, 0.05, 0.25, 0.2};
        float[] logits = logitsOf(p);
        int n = 40_000;
        int[] h = histogram(new Sampler(SamplingConfig.of(8, 1), p.length), logits, n, 7);
        for (int i = 0; i < p.length; i++) {
            double f = (double) h[i] / n;
            // 5 binomial standard deviations
            double tol = 5 * Math.sqrt(p[i] * (1 - p[i]) / n);
            assertEquals(p[i], f, tol, "frequency of token " + i);
        }
    }

    @Test
    void temperatureSharpensAndEntropyMatchesTheFormula() {
        double[] p = {0.1, 0.4, 0.05, 0.25, 0.2};
        float[] logits = logitsOf(p);
        double temp = 0.5;
        Sampler s = new Sampler(new SamplingConfig(temp, 1.0, 0, 8, List.of(), 0), p.length);
        s.sample(logits, 0, 0, 0);
        // softmax(log p / T) = p^(1/T) / sum
        double z = 0;
        for (double v : p) {
            z += Math.pow(v, 1 / temp);
        }
        double h = 0;
        for (double v : p) {
            double q = Math.pow(v, 1 / temp) / z;
            h -= q * Math.log(q);
        }
        assertEquals(h, s.lastEntropy(), 1e-6, "entropy of softmax(logits / T)");
        int[] hist = histogram(s, logits, 40_000, 3);
        double q1 = Math.pow(0.4, 2) / z;
        assertEquals(q1, hist[1] / 40_000.0, 5 * Math.sqrt(q1 * (1 - q1) / 40_000), "tempered frequency");
    }

    @Test
    void topKAndTopPKeepOnlyTheirTokens() {
        double[] p = {0.05, 0.3, 0.15, 0.5};
        float[] logits = logitsOf(p);
        int[] k2 = histogram(new Sampler(new SamplingConfig(1, 1, 2, 8, List.of(), 0), 4), logits, 20_000, 5);
        assertEquals(0, k2[0] + k2[2], "top-k=2 keeps tokens 3 and 1 only");
        // renormalised over {3, 1}: 0.5/0.8
        assertEquals(0.625, k2[3] / 20_000.0, 0.02);
        // HF top-p 0.7: sorted 0.5, 0.3, 0.15, 0.05; ascending cumsum 0.05, 0.2, 0.5, 1.0; removed where <= 0.3
        int[] p7 = histogram(new Sampler(new SamplingConfig(1, 0.7, 0, 8, List.of(), 0), 4), logits, 20_000, 5);
        assertEquals(0, p7[0] + p7[2], "top-p 0.7 keeps tokens 3 and 1");
        assertTrue(p7[1] > 0 && p7[3] > 0);
        // top-p 0.85: cumsum 0.05, 0.2 <= 0.15? no: removed only 0.05 (<= 0.15)
        int[] p85 = histogram(new Sampler(new SamplingConfig(1, 0.85, 0, 8, List.of(), 0), 4), logits, 20_000, 5);
        assertEquals(0, p85[0], "top-p 0.85 drops only the 0.05 token");
        assertTrue(p85[2] > 0);
    }

    @Test
    void topKOneAndTinyTopPAreArgmaxWithLowestIdOnTies() {
        float[] logits = {0.3f, 2.5f, -1f, 2.5f, 1f};
        for (SamplingConfig c : List.of(new SamplingConfig(1, 1, 1, 8, List.of(), 0),
                new SamplingConfig(1, 1e-9, 0, 8, List.of(), 0), SamplingConfig.greedy(8))) {
            Sampler s = new Sampler(c, logits.length);
            for (int i = 0; i < 50; i++) {
                assertEquals(1, s.sample(logits, 0, 3, i), "first maximal id under " + c);
            }
        }
    }

    @Test
    void drawsTheReferenceTokenOfSeedRowAndStep() {
        float[] logits = logitsOf(0.1, 0.4, 0.05, 0.25, 0.2);
        SamplingConfig c = new SamplingConfig(0.9, 0.95, 4, 8, List.of(), 31);
        Sampler s = new Sampler(c, logits.length);
        SamplingReference.Workspace ref = new SamplingReference.Workspace(logits.length);
        for (int step = 0; step < 100; step++) {
            int want = ref.sample(logits, 0, 0.9f, 4, 0.95f, 31, 6, step);
            assertEquals(want, s.sample(logits, 0, 6, step), "step " + step);
            assertEquals(ref.logprob(), s.lastLogprob());
        }
    }

    @Test
    void logprobIsTheTemperedLogSoftmaxAndMaskedTokensKeepTheEntropyFinite() {
        float ninf = Float.NEGATIVE_INFINITY;
        float[] logits = {ninf, 1.5f, 0.5f, ninf, -0.5f};
        Sampler s = new Sampler(new SamplingConfig(0.5, 1.0, 0, 8, List.of(), 2), logits.length);
        // softmax(l / 0.5) over the finite entries: exp(3), exp(1), exp(-1)
        double z = Math.exp(3) + Math.exp(1) + Math.exp(-1);
        double h = 0;
        for (double e : new double[] {3, 1, -1}) {
            double q = Math.exp(e) / z;
            h -= q * Math.log(q);
        }
        for (int step = 0; step < 20; step++) {
            int id = s.sample(logits, 0, 0, step);
            assertTrue(id == 1 || id == 2 || id == 4, "a finite token, got " + id);
            double want = 2 * logits[id] - Math.log(z);
            assertEquals(want, s.lastLogprob(), 1e-6, "log p of " + id);
            assertEquals(h, s.lastEntropy(), 1e-9, "entropy with masked tokens");
        }
    }

    @Test
    void rowsWithoutADistributionThrow() {
        Sampler s = new Sampler(SamplingConfig.of(8, 1), 3);
        for (float[] bad : new float[][] {{0f, Float.NaN, 1f}, {Float.POSITIVE_INFINITY, 0f, 0f},
                {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}}) {
            assertThrows(NonFiniteLogitsException.class, () -> s.sample(bad, 0, 0, 0), Arrays.toString(bad));
        }
    }
}
