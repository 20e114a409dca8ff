package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.Test;

class LogprobGatherReferenceTest {
    private static final long SEED = 42L;

    private static float[] uniform(Random r, int n, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (r.nextFloat() * 2 - 1) * scale;
        }
        return x;
    }

    @Test
    void matchesNaiveLogSoftmax() {
        Random r = new Random(SEED);
        for (int v : new int[] {1, 2, 37, 1000}) {
            for (float t : new float[] {1f, 0.7f, 1.3f}) {
                int n = 13;
                float[] logits = uniform(r, n * v, 4f);
                int[] targets = new int[n];
                for (int i = 0; i < n; i++) {
                    targets[i] = r.nextInt(v);
                }
                float[] logp = new float[n], lse = new float[n];
                LogprobGatherReference.forward(logits, targets, n, v, t, logp, lse);
                for (int i = 0; i < n; i++) {
                    // no max subtraction: the inputs are small enough for the textbook formula in double
                    double sum = 0;
                    for (int j = 0; j < v; j++) {
                        sum += Math.exp(logits[i * v + j] / (double) t);
                    }
                    double l = Math.log(sum);
                    String where = "seed " + SEED + " v=" + v + " T=" + t + " row " + i;
                    assertEquals(l, lse[i], 1e-5, where);
                    assertEquals(logits[i * v + targets[i]] / (double) t - l, logp[i], 1e-5, where);
                }
            }
        }
    }

    @Test
    void logpIsNonPositiveAndExpSumsToOne() {
        Random r = new Random(SEED + 1);
        int v = 50;
        float[] row = uniform(r, v, 6f);
        float[] logits = new float[v * v];
        int[] targets = new int[v];
        for (int i = 0; i < v; i++) {
            System.arraycopy(row, 0, logits, i * v, v);
            targets[i] = i; // every target of the same row
        }
        float[] logp = new float[v], lse = new float[v];
        LogprobGatherReference.forward(logits, targets, v, v, 0.9f, logp, lse);
        double total = 0;
        for (float lp : logp) {
            assertTrue(lp <= 0f, "logp " + lp);
            total += Math.exp(lp);
        }
        assertEquals(1.0, total, 1e-5);
    }

    @Test
    void largeAndMaskedLogitsAreStable() {
        int v = 5;
        float[] logits = {1000f, 999f, Float.NEGATIVE_INFINITY, 998f, Float.NEGATIVE_INFINITY};
        float[] logp = new float[1], lse = new float[1];
        LogprobGatherReference.forward(logits, new int[] {1}, 1, v, 1f, logp, lse);
        double expect = -1 - Math.log(1 + Math.exp(-1) + Math.exp(-2));
        // lse ~ 1000.4 is held in fp32 (the CPU backend's arithmetic): half an ulp of 1000 is 3.1e-5, and logp inherits it
        assertEquals(expect, logp[0], Math.ulp(1000f));
        assertEquals(1000 + Math.log(1 + Math.exp(-1) + Math.exp(-2)), lse[0], 1e-3);
    }

    @Test
    void ignoredTargetsGiveZeroLogpAndZeroGradient() {
        Random r = new Random(SEED + 2);
        int n = 3, v = 11;
        float[] logits = uniform(r, n * v, 3f);
        int[] targets = {4, -100, 0};
        float[] logp = new float[n], lse = new float[n];
        LogprobGatherReference.forward(logits, targets, n, v, 1f, logp, lse);
        assertEquals(0f, logp[1]);
        float[] grad = new float[n * v];
        LogprobGatherReference.backward(logits, targets, lse, new float[] {1f, 1f, 1f}, n, v, 1f, grad);
        for (int j = 0; j < v; j++) {
            assertEquals(0f, grad[v + j]);
        }
        assertTrue(grad[4] > 0 && grad[0] != 0f); // the other rows got a real gradient
        assertThrows(IllegalArgumentException.class,
                () -> LogprobGatherReference.forward(logits, new int[] {0, v, 0}, n, v, 1f, logp, lse));
    }

    @Test
    void backwardEqualsFiniteDifferencesOfLogp() {
        Random r = new Random(SEED + 3);
        int n = 4, v = 9;
        float t = 0.8f;
        float[] logits = uniform(r, n * v, 2f);
        int[] targets = {3, 0, 8, 5};
        float[] dlogp = uniform(r, n, 1.5f); // upstream gradient of L = sum_r dlogp[r] * logp[r]
        float[] logp = new float[n], lse = new float[n];
        LogprobGatherReference.forward(logits, targets, n, v, t, logp, lse);
        float[] grad = new float[n * v];
        LogprobGatherReference.backward(logits, targets, lse, dlogp, n, v, t, grad);
        float h = 1e-2f;
        for (int i = 0; i < n * v; i++) {
            float x = logits[i];
            float[] plus = logits.clone(), minus = logits.clone();
            plus[i] = x + h;
            minus[i] = x - h;
            double lp = loss(plus, targets, dlogp, n, v, t), lm = loss(minus, targets, dlogp, n, v, t);
            double fd = (lp - lm) / ((double) plus[i] - minus[i]);
            assertEquals(fd, grad[i], 1e-3, "seed " + (SEED + 3) + " element " + i);
        }
        // in place gives the same numbers
        float[] inPlace = logits.clone();
        LogprobGatherReference.backward(inPlace, targets, lse, dlogp, n, v, t, inPlace);
        for (int i = 0; i < n * v; i++) {
            assertEquals(grad[i], inPlace[i], 0f);
        }
    }

    private static double loss(float[] logits, int[] targets, float[] w, int n, int v, float t) {
        float[] logp = new float[n], lse = new float[n];
        LogprobGatherReference.forward(logits, targets, n, v, t, logp, lse);
        double l = 0;
        for (int i = 0; i < n; i++) {
            l += (double) w[i] * logp[i];
        }
        return l;
    }

    @Test
    void bf16BackwardIsTheRoundedFloatGradient() {
        Random r = new Random(SEED + 4);
        int n = 3, v = 17;
        short[] bits = BF16.fromFloat(uniform(r, n * v, 3f));
        int[] targets = {0, 16, 7};
        float[] logp = new float[n], lse = new float[n];
        LogprobGatherReference.forward(bits, targets, n, v, 1f, logp, lse);
        float[] dlogp = {1f, -0.5f, 2f};
        short[] out = new short[n * v];
        LogprobGatherReference.backward(bits, targets, lse, dlogp, n, v, 1f, out);
        float[] ref = new float[n * v];
        LogprobGatherReference.backward(BF16.toFloat(bits), targets, lse, dlogp, n, v, 1f, ref);
        for (int i = 0; i < n * v; i++) {
            assertEquals(BF16.fromFloat(ref[i]), out[i]);
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals((short) 0x3f80, BF16.fromFloat(1.0f));
        assertEquals((short) 0x3f80, BF16.fromFloat(Float.intBitsToFloat(0x3f808000))); // tie -> even (down)
        assertEquals((short) 0x3f82, BF16.fromFloat(Float.intBitsToFloat(0x3f818000))); // tie -> even (up)
        assertEquals((short) 0x3f81, BF16.fromFloat(Float.intBitsToFloat(0x3f808001)));
        assertTrue(Float.isNaN(BF16.toFloat(BF16.fromFloat(Float.NaN))));
        assertEquals(-2.5f, BF16.toFloat(BF16.fromFloat(-2.5f)));
    }

    @Test
    void viewsGiveTheBitsOfWholeArrays() {
        Random r = new Random(SEED + 5);
        int n = 5, v = 37;
        float t = 0.8f;
        float[] logits = uniform(r, n * v, 3f);
        int[] targets = {3, -100, 36, 0, 12};
        float[] dlogp = {0.5f, 1f, -2f, 0f, 1.5f}; // row 3: a zero upstream gradient gives a zero row
        float[] logp = new float[n], lse = new float[n], grad = new float[n * v];
        LogprobGatherReference.forward(logits, targets, n, v, t, logp, lse);
        LogprobGatherReference.backward(logits, targets, lse, dlogp, n, v, t, grad);
        float[] lv = Near.embed(logits, 4), lpv = Near.embed(new float[n], 1), lsv = Near.embed(new float[n], 2);
        int[] tv = new int[n + 3];
        System.arraycopy(targets, 0, tv, 3, n);
        LogprobGatherReference.forward(lv, 4, tv, 3, n, v, t, lpv, 1, lsv, 2);
        assertArrayEquals(logp, Near.slice(lpv, 1, n));
        assertArrayEquals(lse, Near.slice(lsv, 2, n));
        float[] gv = Near.embed(new float[n * v], 6);
        LogprobGatherReference.backward(lv, 4, tv, 3, Near.embed(lse, 1), 1, dlogp, 0, n, v, t, gv, 6);
        assertArrayEquals(grad, Near.slice(gv, 6, n * v));
        for (int j = 0; j < v; j++) {
            assertEquals(0f, grad[3 * v + j]);
        }
    }
}
