package dev.rlsr.kernels;

import static dev.rlsr.kernels.Near.assertNear;
import static dev.rlsr.kernels.Near.embed;
import static dev.rlsr.kernels.Near.slice;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link CrossEntropyReference} against log-softmax in double, on views. Tolerance (fp32): rtol 5e-6 of
 * {@code 1 + |lse| + |x_t|} for a row loss: lse is {@code max + log(sum of exp)} with the exponentials summed in fp32
 * lanes (up to ~1000/8 terms per lane: up to a few 1e-6 relative on the sum, the same absolute on its log); the
 * gradient {@code gs * exp(x - lse)} inherits that absolute lse error as a relative one: rtol 5e-6 of
 * {@code |gs| (p + onehot)} (1.6e-6 seen).
 */
class CrossEntropyReferenceTest {
    private static final double RTOL = 5e-6;

    @Test
    void matchesDoubleLogSoftmax() {
        for (int v : new int[] {1, 2, 37, 1000}) {
            int n = 11;
            long seed = 5L + v;
            Random r = new Random(seed);
            float[] logits = Near.randn(r, n * v, 3);
            int[] targets = new int[n];
            for (int i = 0; i < n; i++) {
                targets[i] = r.nextInt(v);
            }
            targets[4] = -100;
            float gs = 0.37f;
            double[] loss = new double[n], lossScale = new double[n], grad = new double[n * v], gScale = new double[n * v];
            double sum = 0, sumScale = 0;
            for (int q = 0; q < n; q++) {
                if (targets[q] < 0) {
                    continue;
                }
                double s = 0;
                for (int j = 0; j < v; j++) {
                    s += Math.exp(logits[q * v + j]);
                }
                double lse = Math.log(s);
                double xt = logits[q * v + targets[q]];
                loss[q] = lse - xt;
                lossScale[q] = 1 + Math.abs(lse) + Math.abs(xt);
                sum += loss[q];
                sumScale += lossScale[q];
                for (int j = 0; j < v; j++) {
                    double p = Math.exp(logits[q * v + j] - lse), hot = j == targets[q] ? 1 : 0;
                    grad[q * v + j] = gs * (p - hot);
                    gScale[q * v + j] = Math.abs(gs) * (p + hot);
                }
            }
            float[] g = embed(new float[n * v], 3), rowLoss = embed(new float[n], 1);
            int[] tv = new int[n + 2];
            System.arraycopy(targets, 0, tv, 2, n);
            double got = CrossEntropyReference.forwardBackward(embed(logits, 5), 5, tv, 2, n, v, gs, g, 3, rowLoss, 1);
            String tag = "V=" + v;
            assertNear("row loss " + tag, seed, loss, lossScale, slice(rowLoss, 1, n), RTOL);
            assertNear("loss sum " + tag, seed, new double[] {sum}, new double[] {sumScale}, new float[] {(float) got}, RTOL);
            assertNear("dlogits " + tag, seed, grad, gScale, slice(g, 3, n * v), RTOL);
            for (int j = 0; j < v; j++) {
                assertEquals(0f, g[3 + 4 * v + j], "ignored row");
            }
            // in place: the same bits
            float[] inPlace = logits.clone();
            double got2 = CrossEntropyReference.forwardBackward(inPlace, 0, targets, 0, n, v, gs, inPlace, 0, null, 0);
            assertEquals(got, got2, 0.0);
            assertArrayEquals(slice(g, 3, n * v), inPlace);
        }
    }

    @Test
    void bf16IsTheRoundedFloatGradient() {
        int n = 4, v = 19;
        Random r = new Random(9);
        short[] bits = BF16.fromFloat(Near.randn(r, n * v, 2));
        int[] targets = {0, 18, -1, 7};
        short[] g = new short[n * v];
        float[] gf = new float[n * v];
        double a = CrossEntropyReference.forwardBackward(bits, 0, targets, 0, n, v, 0.5f, g, 0, null, 0);
        double b = CrossEntropyReference.forwardBackward(BF16.toFloat(bits), 0, targets, 0, n, v, 0.5f, gf, 0, null, 0);
        assertEquals(b, a, 0.0);
        for (int i = 0; i < n * v; i++) {
            assertEquals(BF16.fromFloat(gf[i]), g[i]);
        }
    }

    @Test
    void targetOutsideTheVocabularyIsRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CrossEntropyReference
                .forwardBackward(new float[6], 0, new int[] {0, 3}, 0, 2, 3, 1f, new float[6], 0, null, 0));
        assertEquals(true, e.getMessage().contains("outside [0, 3)"), e.getMessage());
    }
}
