package dev.rlsr.engine.cpu;

import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Blocked attention (several query blocks, a partial last block, GQA, padding, a KV-cache offset) against a
 * plain double-precision implementation that materialises the full probability matrix, forward and backward.
 * The HF fixtures have T = 16, a single block, so this is where multi-block attention is checked.
 */
class CpuBackendAttentionTest {
    private final Backend be = CpuBackend.INSTANCE;

    private static float[] gaussian(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    /** Reference forward and backward in double; returns {out, dq, dk, dv}. */
    static double[][] reference(AttentionShape s, float[] q, float[] k, float[] v, float[] dOut, int[] mask) {
        int B = s.batch(), H = s.heads(), D = s.headDim(), Tq = s.qLen(), ks = s.kStride(), rep = H / s.kvHeads();
        int qw = H * D, kw = s.kvHeads() * D;
        double[] out = new double[q.length], dq = new double[q.length], dk = new double[k.length],
                dv = new double[v.length];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                int kh = h / rep;
                for (int i = 0; i < Tq; i++) {
                    int qo = (b * Tq + i) * qw + h * D;
                    double[] p = new double[s.kLen()];
                    double mx = Double.NEGATIVE_INFINITY;
                    boolean any = false;
                    for (int j = 0; j < s.kLen(); j++) {
                        boolean visible = j <= s.qOffset() + i && (mask == null || mask[b * ks + j] != 0);
                        if (!visible) {
                            p[j] = Double.NaN;
                            continue;
                        }
                        double sc = 0;
                        for (int d = 0; d < D; d++) {
                            sc += (double) q[qo + d] * k[(b * ks + j) * kw + kh * D + d];
                        }
                        p[j] = sc * s.scale();
                        mx = Math.max(mx, p[j]);
                        any = true;
                    }
                    if (!any) {
                        continue;
                    }
                    double sum = 0;
                    for (int j = 0; j < p.length; j++) {
                        p[j] = Double.isNaN(p[j]) ? 0 : Math.exp(p[j] - mx);
                        sum += p[j];
                    }
                    for (int j = 0; j < p.length; j++) {
                        p[j] /= sum;
                    }
                    for (int j = 0; j < p.length; j++) {
                        for (int d = 0; d < D; d++) {
                            out[qo + d] += p[j] * v[(b * ks + j) * kw + kh * D + d];
                        }
                    }
                    // backward: dP_j = dO·v_j ; dS_j = P_j (dP_j - sum_l P_l dP_l)
                    double[] dp = new double[p.length];
                    double dot = 0;
                    for (int j = 0; j < p.length; j++) {
                        for (int d = 0; d < D; d++) {
                            dp[j] += (double) dOut[qo + d] * v[(b * ks + j) * kw + kh * D + d];
                        }
                        dot += p[j] * dp[j];
                    }
                    for (int j = 0; j < p.length; j++) {
                        double ds = p[j] * (dp[j] - dot) * s.scale();
                        int ko = (b * ks + j) * kw + kh * D;
                        for (int d = 0; d < D; d++) {
                            dq[qo + d] += ds * k[ko + d];
                            dk[ko + d] += ds * q[qo + d];
                            dv[ko + d] += p[j] * dOut[qo + d];
                        }
                    }
                }
            }
        }
        return new double[][]{out, dq, dk, dv};
    }

    private static void compare(String what, float[] got, double[] want, double tol) {
        double scale = 0;
        for (double w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        for (int i = 0; i < got.length; i++) {
            double err = Math.abs(got[i] - want[i]);
            if (!(err <= tol * Math.max(1, scale))) {
                fail(what + ": index " + i + " got " + got[i] + ", expected " + want[i] + " (error " + err
                        + ", tolerance " + tol * Math.max(1, scale) + ")");
            }
        }
    }

    private void check(String what, AttentionShape s, int[] mask, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int qn = s.batch() * s.qLen() * s.heads() * s.headDim();
        int kn = s.batch() * s.kStride() * s.kvHeads() * s.headDim();
        float[] q = gaussian(r, qn), k = gaussian(r, kn), v = gaussian(r, kn), g = gaussian(r, qn);
        double[][] ref = reference(s, q, k, v, g, mask);
        Tensor tq = be.upload(q, qn), tk = be.upload(k, kn), tv = be.upload(v, kn), tg = be.upload(g, qn);
        Tensor out = be.zeros(qn), lse = be.zeros((long) s.batch() * s.heads() * s.qLen());
        Tensor dq = be.zeros(qn), dk = be.zeros(kn), dv = be.zeros(kn);
        // poison outputs so unwritten elements fail
        be.fill(out, Float.NaN);
        be.fill(dq, Float.NaN);
        be.fill(dk, Float.NaN);
        be.fill(dv, Float.NaN);
        Tensor tm = mask == null ? null : be.upload(mask, mask.length);
        be.attention(tq, tk, tv, out, lse, s, tm);
        compare(what + " out", be.download(out), ref[0], 2e-5);
        be.attentionBackward(tq, tk, tv, out, lse, tg, dq, dk, dv, s, tm);
        compare(what + " dq", be.download(dq), ref[1], 2e-5);
        compare(what + " dk", be.download(dk), ref[2], 2e-5);
        compare(what + " dv", be.download(dv), ref[3], 2e-5);
    }

    @Test
    void multiBlockCausalGqa() {
        // 150 queries: blocks of 64, 64 and a partial 22; 6 query heads on 2 kv heads; head dim not a lane multiple
        check("causal T=150", AttentionShape.selfAttention(2, 150, 6, 2, 20), null, 1);
    }

    @Test
    void leftPaddingWithFullyMaskedQueries() {
        int b = 2, t = 70;
        int[] mask = new int[b * t];
        Arrays.fill(mask, 1);
        Arrays.fill(mask, t, t + 9, 0); // row 1: 9 left pads, whose queries see no key at all
        mask[5] = 0;                     // and a hole in row 0
        AttentionShape s = AttentionShape.selfAttention(b, t, 4, 4, 16);
        check("left padded T=70", s, mask, 2);
        Tensor q = be.upload(new float[b * t * 64], b * t * 64L);
        Tensor out = be.zeros(b * t * 64L), lse = be.zeros(b * 4L * t);
        be.attention(q, q, q, out, lse, s, be.upload(mask, mask.length));
        for (float x : be.download(out)) {
            assertFalse(Float.isNaN(x), "fully masked query rows must not produce NaN");
        }
    }

    @Test
    void cacheOffset() {
        // 3 new queries at positions 97..99 against a 128-slot cache holding 100 valid keys
        int b = 2, cap = 128;
        int[] mask = new int[b * cap];
        Arrays.fill(mask, 0, 100, 1);
        Arrays.fill(mask, cap + 4, cap + 100, 1);
        check("cache offset", new AttentionShape(b, 3, 100, cap, 97, 4, 2, 32, 0.17f), mask, 3);
    }
}
