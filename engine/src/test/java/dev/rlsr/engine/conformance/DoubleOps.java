package dev.rlsr.engine.conformance;

import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.GrpoSpec;

/**
 * Independent double-precision references of every {@code Backend} op, written from the textbook formula of each op
 * with plain loops: no call into {@code CpuBackend}, the kernels' {@code *Reference} classes or {@code GrpoLoss}.
 * Inputs are the exact values the backend sees (already rounded to bf16 in bf16 mode); layouts are those of
 * {@code Backend}.
 *
 * <p>Each result comes with a per-element <em>magnitude</em> {@code mag}: the sum of the absolute values of the terms
 * that make up the element (including the first-order propagation of rounding errors of scores into
 * probabilities). Rounding errors of any evaluation order are proportional to it, so the conformance check
 * {@code |got - ref| <= rel*|ref| + abs*mag} stays meaningful under cancellation, where a purely relative bound
 * would not.
 */
public final class DoubleOps {
    private DoubleOps() {}

    /**
     * A reference tensor.
     *
     * @param v   values
     * @param mag magnitude of each element's terms (see the class comment)
     */
    public record Ref(double[] v, double[] mag) {
        static Ref of(int n) {
            return new Ref(new double[n], new double[n]);
        }

        /** A reference whose elements are single exact values (no sum): mag = |v|. */
        static Ref exact(double[] v) {
            double[] m = new double[v.length];
            for (int i = 0; i < v.length; i++) {
                m[i] = Math.abs(v[i]);
            }
            return new Ref(v, m);
        }
    }

    // ------------------------------------------------------------------ number formats

    /**
     * Rounds to the nearest bf16 value, ties to even (8 significant bits, the float exponent range), computed from
     * the value's binade in double, not by bit manipulation: NaN stays NaN, infinities stay, overflow goes to
     * infinity.
     *
     * @param f a float
     * @return the bf16 value as a float
     */
    public static float bf16(float f) {
        if (Float.isNaN(f) || Float.isInfinite(f) || f == 0f) {
            return f;
        }
        int e = Math.max(Math.getExponent(f), Float.MIN_EXPONENT);
        double ulp = Math.scalb(1.0, e - 7);
        double q = Math.rint(f / ulp) * ulp; // rint rounds half to even
        return (float) q; // beyond the largest finite bf16 (2^128 after rounding) this is infinity
    }

    /**
     * {@link #bf16(float)} of every element.
     *
     * @param x values
     * @return a new array of the rounded values
     */
    public static float[] bf16(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = bf16(x[i]);
        }
        return out;
    }

    /**
     * The value of an IEEE binary16 bit pattern, from its sign, exponent and mantissa fields.
     *
     * @param h the 16 bits
     * @return the value
     */
    public static float f16(short h) {
        int bits = h & 0xffff;
        double sign = (bits & 0x8000) != 0 ? -1 : 1;
        int exp = (bits >>> 10) & 0x1f, man = bits & 0x3ff;
        if (exp == 0x1f) {
            return man == 0 ? (float) (sign * Double.POSITIVE_INFINITY) : Float.NaN;
        }
        double v = exp == 0 ? man * Math.scalb(1.0, -24) : (1 + man / 1024.0) * Math.scalb(1.0, exp - 15);
        return (float) (sign * v);
    }

    // ------------------------------------------------------------------ special functions

    /**
     * erf(z) in double: the all-positive series {@code 2/sqrt(pi) e^{-z^2} sum_n (2z^2)^n z / (2n+1)!!} for |z| below
     * 2.5 (no cancellation), {@code 1 - erfc} from the continued fraction of erfc above.
     *
     * @param z argument
     * @return erf(z)
     */
    public static double erf(double z) {
        double a = Math.abs(z);
        double r = a < 2.5 ? erfSeries(a) : 1 - erfcFraction(a);
        return z < 0 ? -r : r;
    }

    /**
     * erfc(z) = 1 - erf(z) without cancellation for large z.
     *
     * @param z argument
     * @return erfc(z)
     */
    public static double erfc(double z) {
        if (z < 0) {
            return 2 - erfc(-z);
        }
        return z < 2.5 ? 1 - erfSeries(z) : erfcFraction(z);
    }

    private static double erfSeries(double a) {
        double term = a, sum = a;
        for (int n = 1; n < 500 && term > 1e-18 * sum; n++) {
            term *= 2 * a * a / (2 * n + 1);
            sum += term;
        }
        return 2 / Math.sqrt(Math.PI) * Math.exp(-a * a) * sum;
    }

    // erfc(z) = e^{-z^2}/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))), evaluated from the tail
    private static double erfcFraction(double a) {
        double f = a;
        for (int k = 400; k >= 1; k--) {
            f = a + k / 2.0 / f;
        }
        return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
    }

    // ------------------------------------------------------------------ elementwise

    static Ref add(float[] a, float[] b) {
        Ref r = Ref.of(a.length);
        for (int i = 0; i < a.length; i++) {
            r.v[i] = (double) a[i] + b[i];
            r.mag[i] = Math.abs((double) a[i]) + Math.abs((double) b[i]);
        }
        return r;
    }

    static Ref scale(float[] a, float s) {
        Ref r = Ref.of(a.length);
        for (int i = 0; i < a.length; i++) {
            r.v[i] = (double) a[i] * s;
            r.mag[i] = Math.abs(r.v[i]);
        }
        return r;
    }

    /** @return {norm, scale} of torch's clip_grad_norm_ ({@code min(1, max/(norm+1e-6))}, 1 without a maximum) */
    static Ref[] clipScale(float[] g, float maxNorm) {
        double ss = 0;
        for (float x : g) {
            ss += (double) x * x;
        }
        double norm = Math.sqrt(ss);
        double scale = maxNorm > 0 ? Math.min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
        // {sum of squares (what the backend writes), clip factor}; ss is a sum of positive terms: mag = ss
        return new Ref[]{new Ref(new double[]{ss}, new double[]{ss}),
                new Ref(new double[]{scale}, new double[]{scale})};
    }

    /** Row-wise argmax: first index of the maximum; the first NaN wins (torch). */
    static int[] argmax(float[] x, int rows, int w) {
        int[] out = new int[rows];
        for (int r = 0; r < rows; r++) {
            int best = -1;
            double bv = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < w; j++) {
                double v = x[r * w + j];
                if (Double.isNaN(v)) {
                    best = j;
                    break;
                }
                if (best < 0 || v > bv) {
                    best = j;
                    bv = v;
                }
            }
            out[r] = best;
        }
        return out;
    }

    // ------------------------------------------------------------------ linear layers

    /** y (N,out) = x (N,in) W(out,in)^T + bias + residual; bias/residual may be null. */
    static Ref linear(float[] x, float[] w, float[] bias, float[] residual, int n, int in, int out) {
        Ref r = Ref.of(n * out);
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out; o++) {
                double s = 0, m = 0;
                for (int k = 0; k < in; k++) {
                    double t = (double) x[i * in + k] * w[o * in + k];
                    s += t;
                    m += Math.abs(t);
                }
                if (bias != null) {
                    s += bias[o];
                    m += Math.abs(bias[o]);
                }
                if (residual != null) {
                    s += residual[i * out + o];
                    m += Math.abs(residual[i * out + o]);
                }
                r.v[i * out + o] = s;
                r.mag[i * out + o] = m;
            }
        }
        return r;
    }

    /** dx (N,in) = dy (N,out) W (out,in) (+ dx0 when not null). */
    static Ref linearBackwardInput(float[] dy, float[] w, float[] dx0, int n, int in, int out) {
        Ref r = Ref.of(n * in);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < in; k++) {
                double s = dx0 == null ? 0 : dx0[i * in + k], m = Math.abs(s);
                for (int o = 0; o < out; o++) {
                    double t = (double) dy[i * out + o] * w[o * in + k];
                    s += t;
                    m += Math.abs(t);
                }
                r.v[i * in + k] = s;
                r.mag[i * in + k] = m;
            }
        }
        return r;
    }

    /** dW (out,in) = dW0 + dy^T x. */
    static Ref linearBackwardWeight(float[] dy, float[] x, float[] dw0, int n, int in, int out) {
        Ref r = Ref.of(out * in);
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                double s = dw0[o * in + k], m = Math.abs(s);
                for (int i = 0; i < n; i++) {
                    double t = (double) dy[i * out + o] * x[i * in + k];
                    s += t;
                    m += Math.abs(t);
                }
                r.v[o * in + k] = s;
                r.mag[o * in + k] = m;
            }
        }
        return r;
    }

    /** dBias (out) = dBias0 + column sums of dy (N,out). */
    static Ref columnSums(float[] dy, float[] db0, int n, int out) {
        Ref r = Ref.of(out);
        for (int o = 0; o < out; o++) {
            double s = db0[o], m = Math.abs(s);
            for (int i = 0; i < n; i++) {
                s += dy[i * out + o];
                m += Math.abs(dy[i * out + o]);
            }
            r.v[o] = s;
            r.mag[o] = m;
        }
        return r;
    }

    // ------------------------------------------------------------------ embedding

    /** dTable (V,C) = dTable0 with dOut[n,:] added at row ids[n], for every n. */
    static Ref embeddingBackward(int[] ids, float[] dOut, float[] dTable0, int c) {
        Ref r = Ref.of(dTable0.length);
        for (int i = 0; i < dTable0.length; i++) {
            r.v[i] = dTable0[i];
            r.mag[i] = Math.abs(dTable0[i]);
        }
        for (int n = 0; n < ids.length; n++) {
            for (int j = 0; j < c; j++) {
                r.v[ids[n] * c + j] += dOut[n * c + j];
                r.mag[ids[n] * c + j] += Math.abs(dOut[n * c + j]);
            }
        }
        return r;
    }

    // ------------------------------------------------------------------ RMSNorm

    /** @return {out (rows,D), rstd (rows)} of {@code out = w * x / sqrt(mean(x^2) + eps)} */
    static Ref[] rmsNorm(float[] x, float[] w, double eps, int rows, int d) {
        Ref out = Ref.of(rows * d), rstd = Ref.of(rows);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < d; i++) {
                ss += (double) x[r * d + i] * x[r * d + i];
            }
            double rs = 1 / Math.sqrt(ss / d + eps);
            rstd.v[r] = rs;
            rstd.mag[r] = rs;
            for (int i = 0; i < d; i++) {
                out.v[r * d + i] = w[i] * (x[r * d + i] * rs);
                out.mag[r * d + i] = Math.abs(out.v[r * d + i]);
            }
        }
        return new Ref[]{out, rstd};
    }

    /**
     * Backward of RMSNorm given the saved rstd: {@code dx = rstd*w*g - x * rstd^3/D * sum(w*g*x)} (+ dx0),
     * {@code dw = dw0 + sum_rows g*x*rstd}.
     *
     * @return {dx, dw}
     */
    static Ref[] rmsNormBackward(float[] g, float[] x, float[] w, float[] rstd, float[] dx0, float[] dw0, int rows,
                                 int d) {
        Ref dx = Ref.of(rows * d), dw = Ref.of(d);
        for (int i = 0; i < d; i++) {
            dw.v[i] = dw0[i];
            dw.mag[i] = Math.abs(dw0[i]);
        }
        for (int r = 0; r < rows; r++) {
            double rs = rstd[r], s = 0, sm = 0;
            for (int i = 0; i < d; i++) {
                double t = (double) w[i] * g[r * d + i] * x[r * d + i];
                s += t;
                sm += Math.abs(t);
            }
            double k = s * rs * rs * rs / d, km = sm * rs * rs * rs / d;
            for (int i = 0; i < d; i++) {
                int e = r * d + i;
                double a = rs * w[i] * g[e], b = k * x[e];
                double base = dx0 == null ? 0 : dx0[e];
                dx.v[e] = base + a - b;
                dx.mag[e] = Math.abs(base) + Math.abs(a) + km * Math.abs(x[e]);
                double t = (double) g[e] * x[e] * rs;
                dw.v[i] += t;
                dw.mag[i] += Math.abs(t);
            }
        }
        return new Ref[]{dx, dw};
    }

    // ------------------------------------------------------------------ RoPE

    /**
     * cos/sin table (N, D) of the fp32 angle {@code fl32(pos * invFreq[i])} (the op's contract, as HF computes
     * {@code inv_freq @ position_ids} in fp32), cos and sin then evaluated in double.
     */
    static Ref ropeTable(int[] pos, float[] invFreq) {
        int half = invFreq.length, d = 2 * half;
        Ref r = Ref.of(pos.length * d);
        for (int n = 0; n < pos.length; n++) {
            for (int i = 0; i < half; i++) {
                // the double product of a 24-bit integer and a float is exact; the cast is the one fp32 rounding
                double angle = (float) ((double) pos[n] * invFreq[i]);
                r.v[n * d + i] = Math.cos(angle);
                r.v[n * d + half + i] = Math.sin(angle);
                r.mag[n * d + i] = 1;
                r.mag[n * d + half + i] = 1;
            }
        }
        return r;
    }

    /** Rotation of x (N, heads*D) by the table: {@code x*cos + rotate_half(x)*sin}; inverse negates sin. */
    static Ref rope(float[] x, float[] table, int n, int heads, int d, boolean inverse) {
        Ref r = Ref.of(x.length);
        int half = d / 2;
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * d;
                for (int i = 0; i < half; i++) {
                    double c = table[t * d + i], s = table[t * d + half + i] * (inverse ? -1.0 : 1.0);
                    double x1 = x[base + i], x2 = x[base + half + i];
                    r.v[base + i] = x1 * c - x2 * s;
                    r.v[base + half + i] = x2 * c + x1 * s;
                    r.mag[base + i] = Math.abs(x1 * c) + Math.abs(x2 * s);
                    r.mag[base + half + i] = Math.abs(x2 * c) + Math.abs(x1 * s);
                }
            }
        }
        return r;
    }

    // ------------------------------------------------------------------ attention

    private static boolean visible(AttentionShape s, int[] mask, boolean causal, int b, int i, int j) {
        return j < s.kLen() && (!causal || j <= s.qOffset() + i) && (mask == null || mask[b * s.kStride() + j] != 0);
    }

    /**
     * Softmax attention (causal, or bidirectional when {@code causal} is false) with GQA and a key mask.
     *
     * @return {out (B,Tq,H*D), lse (B,H,Tq)}; a row with no visible key has out 0 and lse +inf
     */
    static Ref[] attention(float[] q, float[] k, float[] v, int[] mask, AttentionShape s, boolean causal) {
        int B = s.batch(), H = s.heads(), D = s.headDim(), Tq = s.qLen(), ks = s.kStride(), rep = H / s.kvHeads();
        int qw = H * D, kw = s.kvHeads() * D;
        Ref out = Ref.of(q.length), lse = Ref.of(B * H * Tq);
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                int kh = h / rep;
                for (int i = 0; i < Tq; i++) {
                    int qo = (b * Tq + i) * qw + h * D, li = (b * H + h) * Tq + i;
                    double[] sc = new double[s.kLen()], mg = new double[s.kLen()];
                    double mx = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < s.kLen(); j++) {
                        if (!visible(s, mask, causal, b, i, j)) {
                            continue;
                        }
                        double dot = 0, am = 0;
                        for (int e = 0; e < D; e++) {
                            double t = (double) q[qo + e] * k[(b * ks + j) * kw + kh * D + e];
                            dot += t;
                            am += Math.abs(t);
                        }
                        sc[j] = dot * s.scale();
                        mg[j] = am * s.scale();
                        mx = Math.max(mx, sc[j]);
                    }
                    if (mx == Double.NEGATIVE_INFINITY) {
                        lse.v[li] = Double.POSITIVE_INFINITY; // out stays exactly 0
                        continue;
                    }
                    double sum = 0;
                    for (int j = 0; j < s.kLen(); j++) {
                        if (visible(s, mask, causal, b, i, j)) {
                            sum += Math.exp(sc[j] - mx);
                        }
                    }
                    double l = mx + Math.log(sum), sbar = 0;
                    double[] p = new double[s.kLen()];
                    for (int j = 0; j < s.kLen(); j++) {
                        if (visible(s, mask, causal, b, i, j)) {
                            p[j] = Math.exp(sc[j] - l);
                            sbar += p[j] * mg[j];
                        }
                    }
                    lse.v[li] = l;
                    lse.mag[li] = 1 + Math.abs(l) + sbar;
                    for (int j = 0; j < s.kLen(); j++) {
                        if (p[j] == 0) {
                            continue;
                        }
                        for (int e = 0; e < D; e++) {
                            double vv = v[(b * ks + j) * kw + kh * D + e];
                            out.v[qo + e] += p[j] * vv;
                            // a score error delta turns into a relative error delta of p: first order in (1+S_j+S̄)
                            out.mag[qo + e] += p[j] * Math.abs(vv) * (1 + mg[j] + sbar);
                        }
                    }
                }
            }
        }
        return new Ref[]{out, lse};
    }

    /**
     * Gradients of causal attention from the given saved {@code out} and {@code lse} (exactly what the backend
     * receives): {@code P = exp(S - lse)}, {@code dP = dO V^T}, {@code D_i = dO_i . out_i}, {@code dS = P (dP - D)},
     * {@code dQ = scale dS K}, {@code dK = scale dS^T Q}, {@code dV = P^T dO}. Keys that no query sees, and rows of
     * the key buffer at or beyond kLen, get zero gradients.
     *
     * @return {dq, dk, dv}
     */
    static Ref[] attentionBackward(float[] q, float[] k, float[] v, float[] out, float[] lse, float[] dOut,
                                   int[] mask, AttentionShape s) {
        int B = s.batch(), H = s.heads(), D = s.headDim(), Tq = s.qLen(), ks = s.kStride(), rep = H / s.kvHeads();
        int qw = H * D, kw = s.kvHeads() * D;
        Ref dq = Ref.of(q.length), dk = Ref.of(k.length), dv = Ref.of(v.length);
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                int kh = h / rep;
                for (int i = 0; i < Tq; i++) {
                    int qo = (b * Tq + i) * qw + h * D;
                    double l = lse[(b * H + h) * Tq + i];
                    if (l == Double.POSITIVE_INFINITY) {
                        continue;
                    }
                    double di = 0, dim = 0;
                    for (int e = 0; e < D; e++) {
                        di += (double) dOut[qo + e] * out[qo + e];
                        dim += Math.abs((double) dOut[qo + e] * out[qo + e]);
                    }
                    for (int j = 0; j < s.kLen(); j++) {
                        if (!visible(s, mask, true, b, i, j)) {
                            continue;
                        }
                        int ko = (b * ks + j) * kw + kh * D;
                        double dot = 0, sm = 0, dp = 0, dpm = 0;
                        for (int e = 0; e < D; e++) {
                            double t = (double) q[qo + e] * k[ko + e];
                            dot += t;
                            sm += Math.abs(t);
                            double u = (double) dOut[qo + e] * v[ko + e];
                            dp += u;
                            dpm += Math.abs(u);
                        }
                        double sc = s.scale();
                        double p = Math.exp(dot * sc - l), pmag = p * (1 + sm * sc + Math.abs(l));
                        double ds = p * (dp - di);
                        double dsm = p * (dpm + dim) + Math.abs(dp - di) * pmag;
                        for (int e = 0; e < D; e++) {
                            dq.v[qo + e] += sc * ds * k[ko + e];
                            dq.mag[qo + e] += sc * dsm * Math.abs(k[ko + e]);
                            dk.v[ko + e] += sc * ds * q[qo + e];
                            dk.mag[ko + e] += sc * dsm * Math.abs(q[qo + e]);
                            dv.v[ko + e] += p * dOut[qo + e];
                            dv.mag[ko + e] += pmag * Math.abs(dOut[qo + e]);
                        }
                    }
                }
            }
        }
        return new Ref[]{dq, dk, dv};
    }

    // ------------------------------------------------------------------ MLP

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    /** h = silu(g) * u. */
    static Ref swiglu(float[] g, float[] u) {
        Ref r = Ref.of(g.length);
        for (int i = 0; i < g.length; i++) {
            r.v[i] = g[i] * sigmoid(g[i]) * u[i];
            r.mag[i] = Math.abs(r.v[i]);
        }
        return r;
    }

    /** @return {dg, du}: {@code du = dh silu(g)}, {@code dg = dh u sig(g) (1 + g (1 - sig(g)))} */
    static Ref[] swigluBackward(float[] g, float[] u, float[] dh) {
        Ref dg = Ref.of(g.length), du = Ref.of(g.length);
        for (int i = 0; i < g.length; i++) {
            double sg = sigmoid(g[i]);
            du.v[i] = dh[i] * g[i] * sg;
            du.mag[i] = Math.abs(du.v[i]);
            dg.v[i] = dh[i] * u[i] * sg * (1 + g[i] * (1 - sg));
            // 1 + g(1 - sig) cancels near g = -1.28: the error scales with its terms, not the result
            dg.mag[i] = Math.abs(dh[i] * u[i] * sg) * (1 + Math.abs(g[i]) * (1 - sg));
        }
        return new Ref[]{dg, du};
    }

    // ------------------------------------------------------------------ losses

    private static double rowLse(float[] x, int off, int v, double invT) {
        double mx = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            mx = Math.max(mx, x[off + i] * invT);
        }
        double s = 0;
        for (int i = 0; i < v; i++) {
            s += Math.exp(x[off + i] * invT - mx);
        }
        return mx + Math.log(s);
    }

    /**
     * Cross entropy with ignored (negative) targets: {dLogits = gradScale (softmax - onehot) (0 on ignored rows),
     * lossSum = loss0 + sum of (lse - x[target]) over counted rows}.
     */
    static Ref[] crossEntropy(float[] x, int[] targets, int v, float gradScale, float loss0) {
        int n = targets.length;
        Ref d = Ref.of(n * v), loss = Ref.of(1);
        loss.v[0] = loss0;
        loss.mag[0] = Math.abs(loss0);
        for (int r = 0; r < n; r++) {
            int t = targets[r];
            if (t < 0) {
                continue; // zeros with magnitude 0: exactly zero required
            }
            double l = rowLse(x, r * v, v, 1);
            loss.v[0] += l - x[r * v + t];
            loss.mag[0] += 1 + Math.abs(l) + Math.abs(x[r * v + t]);
            for (int i = 0; i < v; i++) {
                double p = Math.exp(x[r * v + i] - l);
                d.v[r * v + i] = gradScale * (p - (i == t ? 1 : 0));
                d.mag[r * v + i] = Math.abs(gradScale) * (p * (1 + Math.abs(x[r * v + i]) + Math.abs(l))
                        + (i == t ? 1 : 0));
            }
        }
        return new Ref[]{d, loss};
    }

    /** @return {logp (0 on ignored rows), lse of logits/T (every row)} */
    static Ref[] logProbGather(float[] x, int[] targets, int v, float temperature) {
        int n = targets.length;
        double invT = 1.0 / temperature;
        Ref logp = Ref.of(n), lse = Ref.of(n);
        for (int r = 0; r < n; r++) {
            double l = rowLse(x, r * v, v, invT), mx = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                mx = Math.max(mx, Math.abs(x[r * v + i] * invT));
            }
            lse.v[r] = l;
            lse.mag[r] = 1 + Math.abs(l) + mx;
            int t = targets[r];
            if (t >= 0) {
                logp.v[r] = x[r * v + t] * invT - l;
                logp.mag[r] = 1 + Math.abs(l) + mx;
            }
        }
        return new Ref[]{logp, lse};
    }

    /** dLogits = dLogp (onehot - exp(x/T - lse)) / T with the given lse; 0 on ignored rows. */
    static Ref logProbGatherBackward(float[] x, int[] targets, float[] lse, float[] dLogp, int v, float temperature) {
        int n = targets.length;
        double invT = 1.0 / temperature;
        Ref d = Ref.of(n * v);
        for (int r = 0; r < n; r++) {
            int t = targets[r];
            if (t < 0) {
                continue;
            }
            for (int i = 0; i < v; i++) {
                double p = Math.exp(x[r * v + i] * invT - lse[r]);
                double g = dLogp[r] * invT;
                d.v[r * v + i] = g * ((i == t ? 1 : 0) - p);
                d.mag[r * v + i] = Math.abs(g) * (p * (1 + Math.abs(x[r * v + i] * invT) + Math.abs(lse[r]))
                        + (i == t ? 1 : 0));
            }
        }
        return d;
    }

    /**
     * The GRPO objective, from its definition: {@code r = exp(logp - old)}, {@code pt = -min(r A, clip(r, 1-lo,
     * 1+hi) A) + beta (e^{ref-logp} - (ref-logp) - 1)}, aggregated with per-token weights (TOKEN: 1/max(1, sum m);
     * SEQUENCE: 1/(B max(1, sum_t m_b)); DR_GRPO: 1/(B Lmax)), the gradient of min split evenly on ties and the
     * clamp passing its gradient inside the closed interval (torch's autograd rules).
     *
     * @return {dLogp (B,L), stats [loss, meanRatio, clipFraction, meanKl]}
     */
    static Ref[] grpo(GrpoSpec spec, float[] logp, float[] old, float[] ref, float[] adv, float[] mask, int batch,
                      int len) {
        Ref d = Ref.of(batch * len), stats = Ref.of(4);
        double lo = 1 - spec.clipLow(), hi = 1 + spec.clipHigh(), beta = spec.beta();
        double total = 0;
        double[] rowSum = new double[batch];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < len; t++) {
                rowSum[b] += mask[b * len + t];
            }
            total += rowSum[b];
        }
        int lmax = spec.maxCompletionLength() > 0 ? spec.maxCompletionLength() : len;
        double denom = Math.max(1, total);
        for (int b = 0; b < batch; b++) {
            double w = switch (spec.aggregation()) {
                case TOKEN -> 1 / Math.max(1, total);
                case SEQUENCE -> 1 / (batch * Math.max(1, rowSum[b]));
                case DR_GRPO -> 1.0 / ((double) batch * lmax);
            };
            double a = adv[b];
            for (int t = 0; t < len; t++) {
                int i = b * len + t;
                double m = mask[i];
                if (m == 0) {
                    continue;
                }
                double lp = logp[i], ol = old == null ? lp : old[i];
                double r = Math.exp(lp - ol);
                double rc = Math.min(Math.max(r, lo), hi);
                double u = r * a, c = rc * a;
                double dClip = r >= lo && r <= hi ? a : 0;
                double dMin = u < c ? a : u > c ? dClip : 0.5 * (a + dClip);
                double dpt = -dMin * r;
                double rErr = 1 + Math.abs(lp) + Math.abs(ol); // fp32 error of lp - old, relative in r
                double dMag = Math.abs(dMin) * r * rErr, ptMag = Math.abs(a) * r * rErr, kl = 0, klMag = 0;
                if (beta > 0) {
                    double dd = ref[i] - lp, e = Math.exp(dd);
                    kl = e - dd - 1;
                    // e - d - 1 cancels for small d: its fp32 error scales with e + |d| + 1
                    klMag = e * (1 + Math.abs(ref[i]) + Math.abs(lp)) + Math.abs(dd) + 1;
                    dpt += beta * (1 - e);
                    dMag += beta * (1 + e * (1 + Math.abs(ref[i]) + Math.abs(lp)));
                    ptMag += beta * klMag;
                }
                d.v[i] = w * m * dpt;
                d.mag[i] = w * m * dMag;
                stats.v[0] += w * m * (-Math.min(u, c) + beta * kl);
                stats.mag[0] += w * m * ptMag;
                stats.v[1] += m * r / denom;
                stats.mag[1] += m * r * rErr / denom;
                stats.v[2] += (u > c ? m : 0) / denom;
                stats.mag[2] += m / denom;
                stats.v[3] += m * kl / denom;
                stats.mag[3] += m * klMag / denom;
            }
        }
        return new Ref[]{d, stats};
    }

    // ------------------------------------------------------------------ optimizer

    /**
     * torch.optim.AdamW on one flat buffer: {@code g *= clip}; decay {@code p *= 1 - lr*wd} for {@code i < decayEnd};
     * {@code m = b1 m + (1-b1) g}; {@code v = b2 v + (1-b2) g^2};
     * {@code p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)}.
     *
     * @return {param, m, v}
     */
    static Ref[] adamW(float[] p, float[] g, float[] m, float[] v, long decayEnd, float lr, float b1, float b2,
                       float eps, float wd, double bc1, double bc2, float clip) {
        int n = p.length;
        Ref pr = Ref.of(n), mr = Ref.of(n), vr = Ref.of(n);
        for (int i = 0; i < n; i++) {
            double gi = (double) g[i] * clip;
            double pi = i < decayEnd ? p[i] * (1 - (double) lr * wd) : p[i];
            double mi = (double) b1 * m[i] + (1 - (double) b1) * gi;
            double vi = (double) b2 * v[i] + (1 - (double) b2) * gi * gi;
            double den = Math.sqrt(vi) / Math.sqrt(bc2) + eps;
            double step = lr / bc1;
            double upd = step * mi / den;
            mr.v[i] = mi;
            mr.mag[i] = Math.abs(b1 * m[i]) + Math.abs((1 - (double) b1) * gi);
            vr.v[i] = vi;
            vr.mag[i] = vi;
            pr.v[i] = pi - upd;
            pr.mag[i] = Math.abs(p[i]) + Math.abs(upd) + step * mr.mag[i] / den;
        }
        return new Ref[]{pr, mr, vr};
    }

    // ------------------------------------------------------------------ encoder ops

    /** torch.nn.LayerNorm (biased variance): {@code (x - mean) / sqrt(var + eps) * w + b}. */
    static Ref layerNorm(float[] x, float[] w, float[] bias, double eps, int rows, int d) {
        Ref r = Ref.of(rows * d);
        for (int row = 0; row < rows; row++) {
            double mean = 0;
            for (int i = 0; i < d; i++) {
                mean += x[row * d + i];
            }
            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++) {
                double c = x[row * d + i] - mean;
                var += c * c;
            }
            double rs = 1 / Math.sqrt(var / d + eps);
            for (int i = 0; i < d; i++) {
                int e = row * d + i;
                r.v[e] = (x[e] - mean) * rs * w[i] + bias[i];
                r.mag[e] = (Math.abs(x[e]) + Math.abs(mean)) * rs * Math.abs(w[i]) + Math.abs(bias[i]);
            }
        }
        return r;
    }

    /** The exact GELU {@code x Phi(x)}, Phi through erf/erfc in double. */
    static Ref gelu(float[] x) {
        Ref r = Ref.of(x.length);
        for (int i = 0; i < x.length; i++) {
            double z = x[i] / Math.sqrt(2);
            double phi = z >= 0 ? 0.5 * (1 + erf(z)) : 0.5 * erfc(-z);
            r.v[i] = x[i] * phi;
            r.mag[i] = Math.abs(x[i]);
        }
        return r;
    }

    /** Masked mean over T of x (B,T,C); the count clamped at 1e-9 (an all-padding row gives zeros). */
    static Ref meanPool(float[] x, int[] mask, int b, int t, int c) {
        Ref r = Ref.of(b * c);
        for (int row = 0; row < b; row++) {
            int count = 0;
            for (int j = 0; j < t; j++) {
                if (mask == null || mask[row * t + j] != 0) {
                    count++;
                    for (int e = 0; e < c; e++) {
                        r.v[row * c + e] += x[(row * t + j) * c + e];
                        r.mag[row * c + e] += Math.abs(x[(row * t + j) * c + e]);
                    }
                }
            }
            double inv = 1 / Math.max(count, 1e-9);
            for (int e = 0; e < c; e++) {
                r.v[row * c + e] *= inv;
                r.mag[row * c + e] *= inv;
            }
        }
        return r;
    }

    /** Every row divided by {@code max(||row||_2, eps)} (torch F.normalize). */
    static Ref l2Normalize(float[] x, int rows, int w, double eps) {
        Ref r = Ref.of(x.length);
        for (int row = 0; row < rows; row++) {
            double ss = 0;
            for (int i = 0; i < w; i++) {
                ss += (double) x[row * w + i] * x[row * w + i];
            }
            double den = Math.max(Math.sqrt(ss), eps);
            for (int i = 0; i < w; i++) {
                r.v[row * w + i] = x[row * w + i] / den;
                r.mag[row * w + i] = Math.abs(r.v[row * w + i]);
            }
        }
        return r;
    }

    /**
     * {@code cos(ref[r / g], x[r])} for each row r of {@code x (P*G,D)}: {@code dot / max(|a| |b|, eps)}, in double.
     * mag is {@code (sum |a_k b_k|) / max(|a| |b|, eps) + |cos|}: the terms of the dot product and of the norms whose
     * rounding a fp32 accumulation carries.
     */
    static Ref cosine(float[] ref, float[] x, int p, int g, int d, double eps) {
        Ref r = Ref.of(p * g);
        for (int row = 0; row < p * g; row++) {
            int a0 = (row / g) * d, b0 = row * d;
            double ab = 0, aa = 0, bb = 0, abs = 0;
            for (int k = 0; k < d; k++) {
                double u = ref[a0 + k], v = x[b0 + k];
                ab += u * v;
                abs += Math.abs(u * v);
                aa += u * u;
                bb += v * v;
            }
            double den = Math.max(Math.sqrt(aa) * Math.sqrt(bb), eps);
            r.v[row] = ab / den;
            r.mag[row] = abs / den + Math.abs(r.v[row]);
        }
        return r;
    }

    /**
     * GRPO advantages of {@code rewards (P,G)}: {@code (r - mean) / (std + eps)} with the sample std (divisor G-1, 0
     * for G = 1), or {@code r - mean}, in double. mag is {@code (|r| + |mean|) / (std + eps)} (or {@code |r| + |mean|}):
     * the terms whose fp32 rounding the difference carries, relative to the divisor.
     */
    static Ref groupAdvantages(float[] r, int p, int g, boolean scaleByStd, double eps) {
        Ref out = Ref.of(p * g);
        for (int q = 0; q < p; q++) {
            double mean = 0;
            for (int i = 0; i < g; i++) {
                mean += r[q * g + i];
            }
            mean /= g;
            double ss = 0;
            for (int i = 0; i < g; i++) {
                ss += (r[q * g + i] - mean) * (r[q * g + i] - mean);
            }
            double div = scaleByStd ? (g > 1 ? Math.sqrt(ss / (g - 1)) : 0) + eps : 1;
            for (int i = 0; i < g; i++) {
                int k = q * g + i;
                out.v[k] = (r[k] - mean) / div;
                out.mag[k] = (Math.abs(r[k]) + Math.abs(mean)) / div;
            }
        }
        return out;
    }
}
