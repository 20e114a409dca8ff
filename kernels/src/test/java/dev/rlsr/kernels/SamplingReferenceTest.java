package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link SamplingReference} against what it promises, with every expected value from an independent formula: the
 * generator against Random123's published known answers, the weights against {@code 2^y} in double, the drawn
 * frequencies against the softmax (filtered by hand) with a chi-square test, the boundaries of top-k/top-p, greedy
 * ties, stop ids, finished and non-finite rows, and reproducibility.
 */
class SamplingReferenceTest {
    /** T with s = log2(e) / T = 1 exactly: integer logits then have weights that are exact powers of two. */
    private static final float T_EXACT = SamplingReference.LOG2E;

    @Test
    void philoxMatchesRandom123KnownAnswers() {
        // Random123 kat_vectors, the three "philox4x32 10" lines: counter, key, output
        int[][][] kat = {
            {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
            {{-1, -1, -1, -1}, {-1, -1}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
            {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
                {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
        };
        for (int[][] v : kat) {
            assertArrayEquals(v[2], SamplingReference.philox4x32(v[0], v[1]), "philox4x32-10 of " + Arrays.toString(v[0]));
        }
        // random64 = output words 0 and 1 of counter (row, step, 0, 0) under key (seed low, seed high)
        long seed = 0x299f31d0a4093822L;
        int[] x = SamplingReference.philox4x32(new int[] {0x243f6a88, 0x85a308d3, 0, 0}, new int[] {0xa4093822, 0x299f31d0});
        assertEquals(Integer.toUnsignedLong(x[0]) | ((long) x[1] << 32),
                SamplingReference.random64(seed, 0x243f6a88, 0x85a308d3));
    }

    @Test
    void weightsAreTwoToTheYWithinTheirErrorBound() {
        float s = SamplingReference.LOG2E;
        assertEquals(1L << 40, SamplingReference.weight(3.5f, 3.5f, s), "the maximum");
        assertEquals(1L << 40, SamplingReference.weight(-0f, 0f, s), "-0 against a +0 maximum");
        assertEquals(0L, SamplingReference.weight(Float.NEGATIVE_INFINITY, 1f, s), "-inf");
        assertEquals(0L, SamplingReference.weight(Float.NEGATIVE_INFINITY, 1f, 0f), "-inf at T = +inf");
        assertEquals(1L << 40, SamplingReference.weight(-5f, 1f, 0f), "T = +inf: every finite logit weighs the same");
        assertEquals(0L, SamplingReference.weight(-1f, 0f, Float.POSITIVE_INFINITY), "T -> 0: only the maximum");
        assertEquals(1L, SamplingReference.weight(-40f, 0f, 1f), "2^-40 is the smallest weight");
        assertEquals(0L, SamplingReference.weight(-40.0001f, 0f, 1f), "below 2^-40");
        Random r = new Random(11);
        for (int i = 0; i < 200_000; i++) {
            float xmax = (float) (r.nextGaussian() * 8);
            float x = xmax - (float) (r.nextDouble() * 30);
            float temp = (float) (0.2 + 2 * r.nextDouble());
            float ss = SamplingReference.LOG2E / temp;
            // y as the reference forms it: d and d*s rounded to fp32, the fused steps exact; 2^y within 0.67 ulp
            // (the polynomial, measured over [-0.5, 0.5] in double) plus the truncation to an integer
            float d = x - xmax;
            double y = (double) d * ss;
            if (y < -40) {
                continue;
            }
            double exact = Math.pow(2, 40 + y);
            long w = SamplingReference.weight(x, xmax, ss);
            // fp32 rounding of y = d * s: |dy| <= ulp(y)/2, and 2^y moves by ln2 * dy relative
            double yRound = Math.ulp((float) y) * 0.5 * Math.log(2);
            double tol = exact * (8e-8 + yRound) + 1;
            assertTrue(Math.abs(w - exact) <= tol, () -> "weight of " + x + " under max " + xmax + " at T " + temp
                    + ": " + w + " vs 2^(40+y) = " + exact);
        }
    }

    /** Softmax of x / T in double, the independent side of the distribution tests. */
    private static double[] softmax(float[] x, double temp) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        double[] p = new double[x.length];
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
            p[i] = Math.exp((x[i] - max) / temp);
            sum += p[i];
        }
        for (int i = 0; i < x.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Keeps only the listed tokens of p and renormalises (the filters, written out by hand per case). */
    private static double[] keep(double[] p, int... ids) {
        double[] q = new double[p.length];
        double sum = 0;
        for (int i : ids) {
            sum += p[i];
        }
        for (int i : ids) {
            q[i] = p[i] / sum;
        }
        return q;
    }

    private static int[] histogram(float[] x, float temp, int k, float topP, long seed, int row, int draws) {
        SamplingReference.Workspace ws = new SamplingReference.Workspace(x.length);
        int[] h = new int[x.length];
        for (int step = 0; step < draws; step++) {
            h[ws.sample(x, 0, temp, k, topP, seed, row, step)]++;
        }
        return h;
    }

    /**
     * Pearson's chi-square of the counts against probabilities q: fails when a token with q = 0 was drawn, or when
     * the statistic exceeds the 1e-6 upper quantile of chi-square with (support - 1) degrees of freedom
     * (Wilson-Hilferty, z = 4.753): a correct sampler fails once in a million seeds.
     */
    private static void assertFollows(String what, double[] q, int[] h) {
        int n = Arrays.stream(h).sum(), support = 0;
        double chi2 = 0;
        for (int i = 0; i < q.length; i++) {
            if (q[i] == 0) {
                assertEquals(0, h[i], what + ": token " + i + " is filtered out but was drawn");
                continue;
            }
            support++;
            double e = n * q[i];
            chi2 += (h[i] - e) * (h[i] - e) / e;
        }
        int dof = support - 1;
        if (dof == 0) {
            return;
        }
        double a = 2.0 / (9 * dof);
        double crit = dof * Math.pow(1 - a + 4.753 * Math.sqrt(a), 3);
        assertTrue(chi2 <= crit, what + ": chi-square " + chi2 + " > " + crit + " (" + dof + " dof); counts "
                + Arrays.toString(h) + ", expected " + Arrays.toString(Arrays.stream(q).map(v -> v * n).toArray()));
    }

    private static final float[] LOGITS = {0.3f, 2.1f, -1.2f, 1.4f, 0.9f, -0.4f, 1.9f};
    private static final int DRAWS = 100_000;

    @Test
    void unfilteredDrawsFollowTheSoftmaxAtEachTemperature() {
        for (float temp : new float[] {1f, 0.5f, 1.7f}) {
            assertFollows("T " + temp, softmax(LOGITS, temp), histogram(LOGITS, temp, 0, 1f, 5, 2, DRAWS));
        }
    }

    @Test
    void theChiSquareTestSeesAWrongTemperature() {
        // the test above has power: T = 0.8 draws are not distributed as softmax(x / 1)
        int[] h = histogram(LOGITS, 0.8f, 0, 1f, 5, 2, DRAWS);
        assertThrows(AssertionError.class, () -> assertFollows("T 0.8 vs T 1", softmax(LOGITS, 1), h));
    }

    @Test
    void topKAndTopPDrawFromTheFilteredSoftmax() {
        double[] p = softmax(LOGITS, 1);
        // rank order: 1 (2.1), 6 (1.9), 3 (1.4), 4 (0.9), 0 (0.3), 5 (-0.4), 2 (-1.2)
        assertFollows("top-k 3", keep(p, 1, 6, 3), histogram(LOGITS, 1f, 3, 1f, 9, 0, DRAWS));
        // top-p 0.6: keep while the mass ranked before is < 0.6
        double[] ranked = {p[1], p[6], p[3], p[4], p[0], p[5], p[2]};
        int[] ids = {1, 6, 3, 4, 0, 5, 2};
        for (float topP : new float[] {0.3f, 0.6f, 0.8f, 0.95f}) {
            int n = 0;
            double before = 0;
            while (n < ids.length && (n == 0 || before < topP)) {
                before += ranked[n++];
            }
            int[] kept = Arrays.copyOf(ids, n);
            assertFollows("top-p " + topP + " keeps " + Arrays.toString(kept), keep(p, kept),
                    histogram(LOGITS, 1f, 0, topP, 9, 1, DRAWS));
        }
        // top-k 4, then top-p 0.7 of the renormalised top 4
        double m4 = ranked[0] + ranked[1] + ranked[2] + ranked[3];
        int n = 0;
        double before = 0;
        while (n < 4 && (n == 0 || before < 0.7 * m4)) {
            before += ranked[n++];
        }
        assertFollows("top-k 4, top-p 0.7", keep(p, Arrays.copyOf(ids, n)), histogram(LOGITS, 1f, 4, 0.7f, 3, 4, DRAWS));
    }

    @Test
    void topKCutsTiesByIndex() {
        // three logits tie at the top: top-2 keeps the two lowest indices, in equal measure
        float[] x = {1f, 3f, 3f, 2f, 3f, 0f};
        int[] h = histogram(x, 1f, 2, 1f, 1, 0, 40_000);
        assertFollows("top-2 of a three-way tie", new double[] {0, 0.5, 0.5, 0, 0, 0}, h);
        h = histogram(x, 1f, 4, 1f, 1, 0, 40_000);
        assertFollows("top-4 takes the whole tie and the next", keep(softmax(x, 1), 1, 2, 4, 3), h);
    }

    @Test
    void topPBoundaryIsExactOnDyadicWeights() {
        // at T = log2(e) the weights of integer logits are exact powers of two: 2, 1, 1 (units of 2^39), M = 4
        float[] x = {0f, -1f, -1f};
        // p = 0.75: limit = 3 = the mass before token 2, not below it: {0, 1} reach exactly 0.75 and stay alone
        assertFollows("p 0.75", new double[] {2 / 3.0, 1 / 3.0, 0}, histogram(x, T_EXACT, 0, 0.75f, 4, 0, 30_000));
        // just above 0.75 the tie's second token joins
        assertFollows("p 0.7500001", new double[] {0.5, 0.25, 0.25},
                histogram(x, T_EXACT, 0, Math.nextUp(0.75f), 4, 0, 30_000));
        // p = 0.5: the first token alone reaches it
        assertFollows("p 0.5", new double[] {1, 0, 0}, histogram(x, T_EXACT, 0, 0.5f, 4, 0, 1000));
        // p <= 0 keeps the first token (as p -> 0)
        assertFollows("p 0", new double[] {1, 0, 0}, histogram(x, T_EXACT, 0, 0f, 4, 0, 1000));
    }

    @Test
    void greedyIsTheFirstMaximum() {
        float[] x = {0.3f, 2.5f, -1f, 2.5f, 1f};
        SamplingReference.Workspace ws = new SamplingReference.Workspace(x.length);
        for (int step = 0; step < 50; step++) {
            assertEquals(1, ws.sample(x, 0, 0f, 0, 1f, 7, 0, step), "T = 0");
            assertEquals(1, ws.sample(x, 0, -1f, 0, 1f, 7, 0, step), "T < 0");
            assertEquals(1, ws.sample(x, 0, Float.NaN, 0, 1f, 7, 0, step), "T NaN");
            assertEquals(1, ws.sample(x, 0, 1.3f, 1, 1f, 7, 0, step), "top-k 1");
            assertEquals(1, ws.sample(x, 0, 1.3f, 0, 1e-9f, 7, 0, step), "tiny top-p");
        }
        float[] zeros = {-0f, 0f, -3f};
        assertEquals(0, new SamplingReference.Workspace(3).sample(zeros, 0, 0f, 0, 1f, 1, 0, 0), "-0 ties +0");
    }

    @Test
    void logprobIsTheLogSoftmaxBeforeTheFilters() {
        SamplingReference.Workspace ws = new SamplingReference.Workspace(LOGITS.length);
        for (float temp : new float[] {1f, 0.6f, 2f, 0f}) {
            double t = temp > 0 ? temp : 1;
            double[] p = softmax(LOGITS, t);
            // per weight: 0.67 ulp of the polynomial (8e-8), and x - xmax rounded to fp32 (ulp/2 of |d|, which moves
            // 2^y by ln2 * s * ulp(d)/2 relative, <= ln2 * 2^-24 * |y|); truncation to integers V * 2^-40 of the
            // mass; the fp32 result rounds by 2^-24 relative
            double yMax = (2.1 - -1.2) / Math.log(2) / t;
            for (int step = 0; step < 40; step++) {
                int tok = ws.sample(LOGITS, 0, temp, 3, 0.8f, 21, 1, step);
                double tol = 8e-8 + Math.log(2) * 0x1p-24 * yMax + LOGITS.length * 0x1p-40
                        + 0x1p-24 * Math.abs(Math.log(p[tok]));
                assertEquals(Math.log(p[tok]), ws.logprob(), tol, "log p of token " + tok + " at T " + temp);
            }
        }
    }

    @Test
    void deadTokensAndNonFiniteRows() {
        SamplingReference.Workspace ws = new SamplingReference.Workspace(4);
        float ninf = Float.NEGATIVE_INFINITY;
        float[] masked = {ninf, 1f, ninf, 1f};
        int[] h = histogram(masked, 1f, 0, 1f, 3, 0, 20_000);
        assertFollows("-inf logits are never drawn", new double[] {0, 0.5, 0, 0.5}, h);
        for (float[] bad : new float[][] {{1f, Float.NaN, 0f, 0f}, {1f, Float.POSITIVE_INFINITY, 0f, 0f},
                {ninf, ninf, ninf, ninf}}) {
            for (float temp : new float[] {1f, 0f}) {
                assertEquals(SamplingReference.NON_FINITE, ws.sample(bad, 0, temp, 0, 1f, 1, 0, 0),
                        Arrays.toString(bad) + " at T " + temp);
                assertTrue(Float.isNaN(ws.logprob()));
            }
        }
        // far below the maximum: weight 0, never drawn, yet part of V
        float[] far = {0f, -100f, -0.5f};
        int[] hf = histogram(far, 1f, 0, 1f, 3, 0, 20_000);
        assertEquals(0, hf[1]);
    }

    @Test
    void sameSeedRowAndStepSameToken() {
        Random r = new Random(5);
        float[] x = new float[1000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian() * 2;
        }
        SamplingReference.Workspace a = new SamplingReference.Workspace(x.length);
        SamplingReference.Workspace b = new SamplingReference.Workspace(x.length);
        int differRow = 0, differSeed = 0;
        for (int step = 0; step < 200; step++) {
            int t = a.sample(x, 0, 1f, 50, 0.9f, 42, 3, step);
            // another workspace, after other work: the same token
            b.sample(x, 0, 0.7f, 0, 1f, 1, 9, step);
            assertEquals(t, b.sample(x, 0, 1f, 50, 0.9f, 42, 3, step), "step " + step);
            // at T = 4 the 1000 tokens are nearly equally likely (two draws agree with probability ~1e-3): another
            // row or another seed draws another token
            int flat = a.sample(x, 0, 4f, 0, 1f, 42, 3, step);
            differRow += flat != a.sample(x, 0, 4f, 0, 1f, 42, 4, step) ? 1 : 0;
            differSeed += flat != a.sample(x, 0, 4f, 0, 1f, 43, 3, step) ? 1 : 0;
        }
        assertTrue(differRow >= 190 && differSeed >= 190, differRow + " / " + differSeed);
    }

    @Test
    void batchStepHandlesStopIdsFinishedAndNonFiniteRows() {
        int rows = 4, v = 5, len = 3;
        // rows 0, 1 greedy on token 2 (a stop id) and 4; row 2 non-finite; rows 3 samples
        float[] logits = {
            0f, 1f, 5f, 2f, 0f,
            0f, 1f, 2f, 3f, 9f,
            0f, Float.NaN, 0f, 0f, 0f,
            0.5f, 0.2f, Float.NEGATIVE_INFINITY, 0.4f, 0.3f, // never the stop id 2
        };
        float[] temp = {0f, 0f, 1f, 1f};
        int[] topK = {0, 0, 0, 0};
        float[] topP = {1f, 1f, 1f, 1f};
        int[] stops = {2, 7};
        int[] counters = new int[Sampling.COUNTERS], finished = new int[rows], steps = new int[rows];
        Arrays.fill(finished, 9);
        SamplingReference.reset(counters, finished, steps, rows, 0x1234_5678_9abcL);
        assertArrayEquals(new int[] {0x5678_9abc, 0x1234, rows, 0}, counters);
        int[] tokens = new int[rows], hist = new int[rows * len];
        float[] logp = new float[rows], lhist = new float[rows * len];
        Arrays.fill(hist, -5);
        int pad = 1;
        SamplingReference.sample(logits, 0, rows, v, 1, temp, topK, topP, stops, pad, counters, finished, steps, tokens,
                logp, hist, lhist, len);
        assertEquals(2, tokens[0]);
        assertEquals(4, tokens[1]);
        assertEquals(pad, tokens[2], "non-finite row writes the pad id");
        assertTrue(Float.isNaN(logp[2]));
        int t3 = tokens[3];
        assertArrayEquals(new int[] {1, 0, 1, 0}, finished, "stop id and non-finite rows finish");
        assertEquals(2, counters[Sampling.UNFINISHED]);
        assertEquals(1, counters[Sampling.NON_FINITE]);
        assertArrayEquals(new int[] {1, 1, 1, 1}, steps);
        // log_softmax at T = 1 for the greedy row 0
        assertEquals(Math.log(softmax(new float[] {0f, 1f, 5f, 2f, 0f}, 1)[2]), logp[0], 1e-6);

        SamplingReference.sample(logits, 0, rows, v, 1, temp, topK, topP, stops, pad, counters, finished, steps, tokens,
                logp, hist, lhist, len);
        assertEquals(pad, tokens[0], "finished rows write the pad id");
        assertEquals(0f, logp[0]);
        assertEquals(pad, tokens[2]);
        assertEquals(0f, logp[2], "a non-finite row is finished after its step");
        assertEquals(2, counters[Sampling.UNFINISHED], "finished rows count once");
        assertEquals(1, counters[Sampling.NON_FINITE]);
        assertArrayEquals(new int[] {2, 2, 2, 2}, steps);
        assertArrayEquals(new int[] {2, pad, -5, 4, 4, -5, pad, pad, -5, t3, tokens[3], -5}, hist, "history columns 0, 1");

        // the row's token is a function of (seed, row, step): a single-row workspace at step 1 agrees
        assertEquals(tokens[3], new SamplingReference.Workspace(v).sample(logits, 15, 1f, 0, 1f, 0x1234_5678_9abcL, 3, 1));
    }

    @Test
    void groupsShareALogitsRowWithTheirOwnStreams() {
        int prompts = 2, group = 3, v = 40;
        Random r = new Random(8);
        float[] logits = new float[prompts * v];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) r.nextGaussian();
        }
        int rows = prompts * group;
        float[] temp = new float[rows], topP = new float[rows];
        Arrays.fill(temp, 1f);
        Arrays.fill(topP, 1f);
        int[] counters = new int[Sampling.COUNTERS], finished = new int[rows], steps = new int[rows];
        int[] tokens = new int[rows];
        SamplingReference.reset(counters, finished, steps, rows, 77);
        SamplingReference.sample(logits, 0, rows, v, group, temp, new int[rows], topP, new int[0], 0, counters,
                finished, steps, tokens, new float[rows], null, null, 0);
        SamplingReference.Workspace ws = new SamplingReference.Workspace(v);
        for (int b = 0; b < rows; b++) {
            assertEquals(ws.sample(logits, (b / group) * v, 1f, 0, 1f, 77, b, 0), tokens[b], "row " + b);
        }
        assertNotEquals(-1, tokens[0]);
    }
}
