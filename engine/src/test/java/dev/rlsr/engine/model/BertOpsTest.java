package dev.rlsr.engine.model;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The encoder ops of the CPU backend against plain double-precision references on seeded random inputs (outputs
 * poisoned with NaN first, so unwritten elements fail). The GELU reference evaluates erf by its Taylor series /
 * continued fraction in double, independently of the backend's Chebyshev erfc.
 */
class BertOpsTest {
    private static final long SEED = 20251126L;
    private final Backend be = CpuBackend.INSTANCE;

    private static float[] randn(SplittableRandom r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (scale * r.nextGaussian());
        }
        return x;
    }

    private static void check(String what, double[] ref, float[] out, double atol, double rtol) {
        for (int i = 0; i < ref.length; i++) {
            double d = Math.abs(out[i] - ref[i]);
            assertTrue(d <= atol + rtol * Math.abs(ref[i]), what + " seed " + SEED + ": first mismatch at " + i
                    + ": got " + out[i] + ", reference " + ref[i]);
        }
    }

    /** erf in double: Taylor series for |x| < 2.5, continued fraction of erfc beyond (both ~1e-15 there). */
    static double erf(double x) {
        double z = Math.abs(x);
        double r;
        if (z < 2.5) {
            double term = z, sum = z;
            for (int n = 1; n < 200; n++) {
                term *= -z * z / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17) {
                    break;
                }
            }
            r = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            double f = 0;
            for (int k = 60; k >= 1; k--) {
                f = k / 2.0 / (z + f);
            }
            r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
        }
        return Math.copySign(r, x);
    }

    @Test
    void geluMatchesExactErfForm() {
        SplittableRandom r = new SplittableRandom(SEED);
        float[] x = randn(r, 4099, 3.0);
        x[0] = 0f;
        x[1] = -12f;
        x[2] = 9f;
        double[] ref = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            ref[i] = x[i] * 0.5 * (1 + erf(x[i] / Math.sqrt(2)));
        }
        try (Tensor t = be.upload(x, x.length); Tensor o = be.upload(nan(x.length), x.length)) {
            be.gelu(t, o);
            check("gelu", ref, be.download(o), 1e-6, 1e-6);
            be.gelu(t, t);
            check("gelu in place", ref, be.download(t), 1e-6, 1e-6);
        }
    }

    @Test
    void layerNormMatchesTwoPassDouble() {
        SplittableRandom r = new SplittableRandom(SEED);
        int rows = 37, d = 83;
        float[] x = randn(r, rows * d, 2.0), w = randn(r, d, 1.0), b = randn(r, d, 1.0);
        for (int i = 0; i < x.length; i++) {
            x[i] += 5f; // an offset mean: a one-pass variance would lose digits
        }
        double[] ref = new double[x.length];
        for (int row = 0; row < rows; row++) {
            double mean = 0, var = 0;
            for (int j = 0; j < d; j++) {
                mean += x[row * d + j];
            }
            mean /= d;
            for (int j = 0; j < d; j++) {
                var += (x[row * d + j] - mean) * (x[row * d + j] - mean);
            }
            var /= d;
            for (int j = 0; j < d; j++) {
                ref[row * d + j] = (x[row * d + j] - mean) / Math.sqrt(var + 1e-12) * w[j] + b[j];
            }
        }
        try (Tensor t = be.upload(x, rows, d); Tensor tw = be.upload(w, d); Tensor tb = be.upload(b, d);
             Tensor o = be.upload(nan(x.length), rows, d)) {
            be.layerNorm(t, tw, tb, 1e-12f, o);
            check("layerNorm", ref, be.download(o), 1e-5, 1e-5);
        }
    }

    @Test
    void bidirectionalAttentionMatchesNaive() {
        SplittableRandom r = new SplittableRandom(SEED);
        int B = 3, T = 70, H = 2, D = 8, C = H * D; // T > one 64-row query block
        float[] q = randn(r, B * T * C, 1.0), k = randn(r, B * T * C, 1.0), v = randn(r, B * T * C, 1.0);
        int[] mask = new int[B * T];
        int[] lens = {T, 41, 1};
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < lens[b]; t++) {
                mask[b * T + t] = 1;
            }
        }
        mask[5] = 0; // a hole in the middle of row 0 (not only right padding)
        double scale = 1 / Math.sqrt(D);
        double[] ref = new double[q.length];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                for (int i = 0; i < T; i++) {
                    double[] s = new double[T];
                    double mx = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < T; j++) {
                        if (mask[b * T + j] == 0) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double dot = 0;
                        for (int d = 0; d < D; d++) {
                            dot += q[(b * T + i) * C + h * D + d] * k[(b * T + j) * C + h * D + d];
                        }
                        s[j] = dot * scale;
                        mx = Math.max(mx, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < T; j++) {
                        s[j] = Math.exp(s[j] - mx);
                        sum += s[j];
                    }
                    for (int d = 0; d < D; d++) {
                        double acc = 0;
                        for (int j = 0; j < T; j++) {
                            acc += s[j] / sum * v[(b * T + j) * C + h * D + d];
                        }
                        ref[(b * T + i) * C + h * D + d] = acc;
                    }
                }
            }
        }
        try (Tensor tq = be.upload(q, B, T, C); Tensor tk = be.upload(k, B, T, C); Tensor tv = be.upload(v, B, T, C);
             Tensor o = be.upload(nan(q.length), B, T, C)) {
            be.bidirectionalAttention(tq, tk, tv, o, AttentionShape.selfAttention(B, T, H, H, D),
                    be.upload(mask, mask.length));
            check("bidirectional attention", ref, be.download(o), 1e-5, 1e-5);
        }
    }

    @Test
    void meanPoolAndNormalize() {
        SplittableRandom r = new SplittableRandom(SEED);
        int B = 3, T = 5, C = 19;
        float[] x = randn(r, B * T * C, 1.0);
        int[] mask = {1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
        double[] ref = new double[B * C];
        for (int b = 0; b < B; b++) {
            int n = 0;
            for (int t = 0; t < T; t++) {
                if (mask[b * T + t] == 1) {
                    n++;
                    for (int c = 0; c < C; c++) {
                        ref[b * C + c] += x[(b * T + t) * C + c];
                    }
                }
            }
            for (int c = 0; c < C; c++) {
                ref[b * C + c] /= Math.max(n, 1e-9);
            }
        }
        try (Tensor t = be.upload(x, B, T, C); Tensor p = be.upload(nan(B * C), B, C)) {
            be.meanPool(t, be.upload(mask, mask.length), p);
            check("meanPool", ref, be.download(p), 1e-6, 1e-6);
            for (int b = 0; b < 2; b++) {
                double norm = 0;
                for (int c = 0; c < C; c++) {
                    norm += ref[b * C + c] * ref[b * C + c];
                }
                for (int c = 0; c < C; c++) {
                    ref[b * C + c] /= Math.sqrt(norm);
                }
            }
            be.l2NormalizeRows(p, 1e-12f);
            check("l2NormalizeRows (the all-padding row stays zero)", ref, be.download(p), 1e-6, 1e-6);
        }
    }

    private static float[] nan(int n) {
        float[] a = new float[n];
        Arrays.fill(a, Float.NaN);
        return a;
    }
}
