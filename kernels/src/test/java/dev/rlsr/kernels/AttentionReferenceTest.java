package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link AttentionReference} against a naive double-precision softmax attention (every score, the full softmax per
 * row) and its gradient written out independently ({@code dS = P * (dP - sum_j P dP)}, the definition rather than
 * the {@code rowsum(dO*O)} shortcut the code under test uses); that double gradient is itself checked against
 * central finite differences of the double forward.
 *
 * <p>Tolerances, |ref - naive| <= atol + rtol*|naive|, inputs ~N(0,1) and D <= 64: the fp32 reference rounds each
 * score (a length-D dot, ~sqrt(D) * 2^-24 relative) and each exponential (CpuVec's float exp, a few ulp), and sums
 * up to 140 terms per output in fp32, which leaves up to ~5e-7 absolute on outputs of magnitude ~1: out, lse atol
 * 2e-6 rtol 1e-6; gradients sum over queries and keys: atol 5e-6 rtol 1e-5. bf16 variants: the outputs are rounded
 * to bf16 (relative 2^-9) after the same fp32 computation: rtol 2^-8 on top of the fp32 atol.
 */
class AttentionReferenceTest {
    private static final double OUT_ATOL = 2e-6, OUT_RTOL = 1e-6;
    private static final double GRAD_ATOL = 5e-6, GRAD_RTOL = 1e-5;
    private static final double BF16_RTOL = 1.0 / 256;

    /** One attention problem; offsets put every tensor inside a larger array, as CPU tensor views are. */
    record Problem(long seed, int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads,
            int headDim, float scale, float[] q, float[] k, float[] v, float[] dOut, int[] mask) {
        int qn() {
            return batch * qLen * heads * headDim;
        }

        int kn() {
            return batch * kStride * kvHeads * headDim;
        }

        int ln() {
            return batch * heads * qLen;
        }

        @Override
        public String toString() {
            return "seed " + seed + " B=" + batch + " qLen=" + qLen + " kLen=" + kLen + " kStride=" + kStride
                    + " qOffset=" + qOffset + " H=" + heads + " Hkv=" + kvHeads + " D=" + headDim
                    + (mask == null ? "" : " masked");
        }
    }

    static Problem problem(long seed, int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads,
            int headDim, boolean leftPadding) {
        Random r = new Random(seed);
        int qn = batch * qLen * heads * headDim, kn = batch * kStride * kvHeads * headDim;
        float[] q = randn(r, qn), k = randn(r, kn), v = randn(r, kn), dOut = randn(r, qn);
        int[] mask = null;
        if (leftPadding) {
            mask = new int[batch * kStride];
            for (int b = 0; b < batch; b++) {
                // batch 0 unpadded, batch 1 fully padded (no visible key anywhere), others a random left pad
                int pad = b == 0 ? 0 : b == 1 ? kStride : r.nextInt(kLen);
                for (int j = 0; j < kStride; j++) {
                    mask[b * kStride + j] = j >= pad ? 1 : 0;
                }
            }
        }
        return new Problem(seed, batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim,
                (float) (1.0 / Math.sqrt(headDim)), q, k, v, dOut, mask);
    }

    static float[] randn(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    // ---- the naive double formulas

    /** Double results: out, lse and, when dOut is given, dq, dk, dv. */
    record Naive(double[] out, double[] lse, double[] dq, double[] dk, double[] dv) {
    }

    static boolean visible(Problem p, int b, int i, int j, boolean causal) {
        if (j >= p.kLen() || (causal && j > p.qOffset() + i)) {
            return false;
        }
        return p.mask() == null || p.mask()[b * p.kStride() + j] != 0;
    }

    static Naive naive(Problem p, double[] q, double[] k, double[] v, double[] dOut, boolean causal) {
        return naive(p, q, k, v, dOut, causal, null);
    }

    /**
     * With {@code storedOut} given, {@code sum_j P dP} is replaced by {@code dO · storedOut} (equal in exact
     * arithmetic): the gradient for an output that was rounded when it was stored (bf16), as a backward that reads
     * the stored output sees it.
     */
    static Naive naive(Problem p, double[] q, double[] k, double[] v, double[] dOut, boolean causal,
            double[] storedOut) {
        int B = p.batch(), Tq = p.qLen(), H = p.heads(), D = p.headDim(), ks = p.kStride(), kLen = p.kLen();
        int qw = H * D, kw = p.kvHeads() * D, rep = H / p.kvHeads();
        double[] out = new double[p.qn()], lse = new double[p.ln()];
        double[] dq = dOut == null ? null : new double[p.qn()];
        double[] dk = dOut == null ? null : new double[p.kn()];
        double[] dv = dOut == null ? null : new double[p.kn()];
        double[] s = new double[kLen], dp = new double[kLen];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                int kh = h / rep;
                for (int i = 0; i < Tq; i++) {
                    int qo = (b * Tq + i) * qw + h * D;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < kLen; j++) {
                        if (!visible(p, b, i, j, causal)) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        int ko = (b * ks + j) * kw + kh * D;
                        double dot = 0;
                        for (int d = 0; d < D; d++) {
                            dot += q[qo + d] * k[ko + d];
                        }
                        s[j] = p.scale() * dot;
                        max = Math.max(max, s[j]);
                    }
                    int li = (b * H + h) * Tq + i;
                    if (max == Double.NEGATIVE_INFINITY) {
                        lse[li] = Double.POSITIVE_INFINITY; // out row stays 0, no gradient
                        continue;
                    }
                    double sum = 0;
                    for (int j = 0; j < kLen; j++) {
                        sum += Math.exp(s[j] - max);
                    }
                    lse[li] = max + Math.log(sum);
                    for (int j = 0; j < kLen; j++) {
                        s[j] = Math.exp(s[j] - max) / sum; // now the probability
                        int ko = (b * ks + j) * kw + kh * D;
                        for (int d = 0; d < D; d++) {
                            out[qo + d] += s[j] * v[ko + d];
                        }
                    }
                    if (dOut == null) {
                        continue;
                    }
                    double pdp = 0;
                    for (int j = 0; j < kLen; j++) {
                        int ko = (b * ks + j) * kw + kh * D;
                        double x = 0;
                        for (int d = 0; d < D; d++) {
                            x += dOut[qo + d] * v[ko + d];
                        }
                        dp[j] = x;
                        pdp += s[j] * x;
                    }
                    if (storedOut != null) {
                        pdp = 0;
                        for (int d = 0; d < D; d++) {
                            pdp += dOut[qo + d] * storedOut[qo + d];
                        }
                    }
                    for (int j = 0; j < kLen; j++) {
                        if (s[j] == 0) {
                            continue;
                        }
                        int ko = (b * ks + j) * kw + kh * D;
                        double ds = s[j] * (dp[j] - pdp) * p.scale();
                        for (int d = 0; d < D; d++) {
                            dq[qo + d] += ds * k[ko + d];
                            dk[ko + d] += ds * q[qo + d];
                            dv[ko + d] += s[j] * dOut[qo + d];
                        }
                    }
                }
            }
        }
        return new Naive(out, lse, dq, dk, dv);
    }

    static double[] wide(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    static void assertClose(String what, Problem p, double[] expected, float[] actual, int off, double atol,
            double rtol) {
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[off + i];
            boolean ok = e == a || Math.abs(a - e) <= atol + rtol * Math.abs(e);
            if (!ok) {
                if (bad++ < 8) {
                    first.append(String.format("%n  [%d] expected %.9g got %.9g", i, e, a));
                }
            }
        }
        if (bad > 0) {
            fail(what + " (" + p + "): " + bad + " of " + expected.length + " mismatches:" + first);
        }
    }

    // ---- forward and backward against the naive formulas

    private static final int OFF = 7; // every tensor starts 7 elements into its array

    static float[] embed(float[] x) {
        float[] a = new float[x.length + 2 * OFF];
        Arrays.fill(a, Float.NaN); // outside the view: must never be read or written
        System.arraycopy(x, 0, a, OFF, x.length);
        return a;
    }

    static int[] embed(int[] m) {
        if (m == null) {
            return null;
        }
        int[] a = new int[m.length + 2 * OFF];
        System.arraycopy(m, 0, a, OFF, m.length);
        return a;
    }

    private static void checkCausal(Problem p) {
        float[] q = embed(p.q()), k = embed(p.k()), v = embed(p.v()), dOut = embed(p.dOut());
        float[] out = embed(new float[p.qn()]), lse = embed(new float[p.ln()]);
        int[] mask = embed(p.mask());
        AttentionReference.forward(q, OFF, k, OFF, v, OFF, out, OFF, lse, OFF, mask, OFF, p.batch(), p.qLen(),
                p.kLen(), p.kStride(), p.qOffset(), p.heads(), p.kvHeads(), p.headDim(), p.scale());
        Naive n = naive(p, wide(p.q()), wide(p.k()), wide(p.v()), wide(p.dOut()), true);
        assertClose("out", p, n.out(), out, OFF, OUT_ATOL, OUT_RTOL);
        assertClose("lse", p, n.lse(), lse, OFF, OUT_ATOL, OUT_RTOL);
        assertUntouched("out", out, p.qn());

        float[] dq = embed(new float[p.qn()]), dk = embed(new float[p.kn()]), dv = embed(new float[p.kn()]);
        Arrays.fill(dk, OFF, OFF + p.kn(), 123f); // must be overwritten, not accumulated into
        Arrays.fill(dv, OFF, OFF + p.kn(), -5f);
        AttentionReference.backward(q, OFF, k, OFF, v, OFF, out, OFF, lse, OFF, dOut, OFF, dq, OFF, dk, OFF, dv, OFF,
                mask, OFF, p.batch(), p.qLen(), p.kLen(), p.kStride(), p.qOffset(), p.heads(), p.kvHeads(),
                p.headDim(), p.scale());
        assertClose("dq", p, n.dq(), dq, OFF, GRAD_ATOL, GRAD_RTOL);
        assertClose("dk", p, n.dk(), dk, OFF, GRAD_ATOL, GRAD_RTOL);
        assertClose("dv", p, n.dv(), dv, OFF, GRAD_ATOL, GRAD_RTOL);
        assertUntouched("dk", dk, p.kn());
    }

    private static void assertUntouched(String what, float[] a, int n) {
        for (int i = 0; i < OFF; i++) {
            assertTrue(Float.isNaN(a[i]) && Float.isNaN(a[OFF + n + i]), what + ": wrote outside its view");
        }
    }

    @Test
    void trainingShapesOddLengthsAndGqa() {
        long seed = 100;
        for (int t : new int[] {1, 3, 17, 65, 130}) {
            for (int[] hk : new int[][] {{2, 2}, {4, 2}, {3, 1}, {7, 1}}) {
                checkCausal(problem(seed++, 2, t, t, t, 0, hk[0], hk[1], 16, false));
            }
        }
        checkCausal(problem(seed++, 1, 70, 70, 70, 0, 4, 2, 64, false));
    }

    @Test
    void leftPaddingWithAFullyPaddedRow() {
        long seed = 200;
        for (int t : new int[] {3, 17, 65}) {
            Problem p = problem(seed++, 3, t, t, t, 0, 4, 2, 16, true);
            checkCausal(p);
            // batch 1 is all padding: lse = +inf and zero output exactly
            float[] out = new float[p.qn()], lse = new float[p.ln()];
            AttentionReference.forward(p.q(), 0, p.k(), 0, p.v(), 0, out, 0, lse, 0, p.mask(), 0, p.batch(), p.qLen(),
                    p.kLen(), p.kStride(), p.qOffset(), p.heads(), p.kvHeads(), p.headDim(), p.scale());
            int rowsPerBatch = p.heads() * p.qLen(), width = p.qLen() * p.heads() * p.headDim();
            for (int i = 0; i < rowsPerBatch; i++) {
                assertEquals(Float.POSITIVE_INFINITY, lse[rowsPerBatch + i], "lse of a row with no visible key");
            }
            for (int i = 0; i < width; i++) {
                assertEquals(0f, out[width + i], "output of a row with no visible key");
            }
        }
    }

    @Test
    void prefillIntoACacheAndDecode() {
        long seed = 300;
        // prefill: kStride (capacity) > kLen; decode: one or three queries after qOffset cached positions
        checkCausal(problem(seed++, 2, 17, 17, 40, 0, 4, 2, 16, false));
        checkCausal(problem(seed++, 3, 1, 33, 40, 32, 7, 1, 16, true));
        checkCausal(problem(seed++, 2, 3, 70, 96, 67, 6, 2, 32, true));
        checkCausal(problem(seed++, 2, 5, 140, 140, 135, 2, 2, 64, false));
    }

    /**
     * decodeAt(L) against the naive formula for one query at position L - 1 over the first L keys (qLen 1,
     * kLen L, qOffset L - 1), for L from 1 to kStride, with rows past L holding NaN (never read), both dtypes.
     */
    @Test
    void decodeAtIsTheLastQueryOverTheFirstLKeys() {
        long seed = 350;
        int kStride = 45;
        for (int L : new int[] {1, 2, 17, kStride}) {
            Problem p = problem(seed++, 3, 1, L, kStride, L - 1, 7, 1, 16, true);
            int kw = p.kvHeads() * p.headDim();
            for (int b = 0; b < p.batch(); b++) {
                Arrays.fill(p.k(), (b * kStride + L) * kw, (b + 1) * kStride * kw, Float.NaN);
                Arrays.fill(p.v(), (b * kStride + L) * kw, (b + 1) * kStride * kw, Float.NaN);
            }
            float[] out = embed(new float[p.qn()]), lse = embed(new float[p.ln()]);
            AttentionReference.decodeAt(embed(p.q()), OFF, embed(p.k()), OFF, embed(p.v()), OFF, out, OFF, lse, OFF,
                    embed(p.mask()), OFF, p.batch(), kStride, p.heads(), p.kvHeads(), p.headDim(), p.scale(), L);
            Naive n = naive(p, wide(p.q()), wide(p.k()), wide(p.v()), null, true);
            assertClose("decodeAt out L=" + L, p, n.out(), out, OFF, OUT_ATOL, OUT_RTOL);
            assertClose("decodeAt lse L=" + L, p, n.lse(), lse, OFF, OUT_ATOL, OUT_RTOL);
            assertUntouched("decodeAt out", out, p.qn());

            short[] ob = new short[p.qn()];
            float[] lb = new float[p.ln()];
            short[] qb = BF16.fromFloat(p.q()), kb = BF16.fromFloat(p.k()), vb = BF16.fromFloat(p.v());
            AttentionReference.decodeAt(qb, 0, kb, 0, vb, 0, ob, 0, lb, 0, p.mask(), 0, p.batch(), kStride,
                    p.heads(), p.kvHeads(), p.headDim(), p.scale(), L);
            Naive nb = naive(p, wide(BF16.toFloat(qb)), wide(BF16.toFloat(kb)), wide(BF16.toFloat(vb)), null, true);
            assertClose("decodeAt bf16 out L=" + L, p, nb.out(), BF16.toFloat(ob), 0, OUT_ATOL, BF16_RTOL);
            assertClose("decodeAt bf16 lse L=" + L, p, nb.lse(), lb, 0, OUT_ATOL, OUT_RTOL);
        }
        float[] x = new float[4096];
        for (int bad : new int[] {0, kStride + 1}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AttentionReference
                    .decodeAt(x, 0, x, 0, x, 0, x, 0, x, 0, null, 0, 1, kStride, 2, 2, 8, 0.5f, bad));
            assertTrue(e.getMessage().contains("cache length " + bad), e.getMessage());
        }
    }

    @Test
    void bidirectionalMatchesNaive() {
        long seed = 400;
        for (int t : new int[] {1, 17, 65, 130}) {
            Problem p = problem(seed++, 3, t, t, t + 3, 0, 4, 4, 16, t > 1);
            float[] out = embed(new float[p.qn()]);
            AttentionReference.bidirectional(embed(p.q()), OFF, embed(p.k()), OFF, embed(p.v()), OFF, out, OFF,
                    embed(p.mask()), OFF, p.batch(), p.qLen(), p.kLen(), p.kStride(), 0, p.heads(), p.kvHeads(),
                    p.headDim(), p.scale());
            Naive n = naive(p, wide(p.q()), wide(p.k()), wide(p.v()), null, false);
            assertClose("bidirectional out", p, n.out(), out, OFF, OUT_ATOL, OUT_RTOL);
        }
    }

    @Test
    void bf16VariantsRoundTheFp32Result() {
        Problem p = problem(500, 3, 17, 17, 20, 0, 6, 2, 32, true);
        short[] q = BF16.fromFloat(p.q()), k = BF16.fromFloat(p.k()), v = BF16.fromFloat(p.v());
        short[] dOut = BF16.fromFloat(p.dOut());
        double[] qd = wide(BF16.toFloat(q)), kd = wide(BF16.toFloat(k)), vd = wide(BF16.toFloat(v));
        short[] out = new short[p.qn()];
        float[] lse = new float[p.ln()];
        AttentionReference.forward(q, 0, k, 0, v, 0, out, 0, lse, 0, p.mask(), 0, p.batch(), p.qLen(), p.kLen(),
                p.kStride(), 0, p.heads(), p.kvHeads(), p.headDim(), p.scale());
        Naive n = naive(p, qd, kd, vd, wide(BF16.toFloat(dOut)), true);
        assertClose("bf16 out", p, n.out(), BF16.toFloat(out), 0, OUT_ATOL, BF16_RTOL);
        assertClose("bf16 lse (fp32)", p, n.lse(), lse, 0, OUT_ATOL, OUT_RTOL);
        // the backward reads the bf16 output the forward stored; D_i = dO·O of that rounded O moves every dS of the
        // row (2^-9 relative of O, times sqrt(D)): the double formula takes the same stored O for D_i
        n = naive(p, qd, kd, vd, wide(BF16.toFloat(dOut)), true, wide(BF16.toFloat(out)));
        short[] dq = new short[p.qn()], dk = new short[p.kn()], dv = new short[p.kn()];
        AttentionReference.backward(q, 0, k, 0, v, 0, out, 0, lse, 0, dOut, 0, dq, 0, dk, 0, dv, 0, p.mask(), 0,
                p.batch(), p.qLen(), p.kLen(), p.kStride(), 0, p.heads(), p.kvHeads(), p.headDim(), p.scale());
        assertClose("bf16 dq", p, n.dq(), BF16.toFloat(dq), 0, GRAD_ATOL, BF16_RTOL);
        assertClose("bf16 dk", p, n.dk(), BF16.toFloat(dk), 0, GRAD_ATOL, BF16_RTOL);
        assertClose("bf16 dv", p, n.dv(), BF16.toFloat(dv), 0, GRAD_ATOL, BF16_RTOL);

        Problem pb = problem(501, 2, 17, 17, 17, 0, 4, 4, 16, true);
        short[] qb = BF16.fromFloat(pb.q()), kb = BF16.fromFloat(pb.k()), vb = BF16.fromFloat(pb.v());
        short[] bo = new short[pb.qn()];
        AttentionReference.bidirectional(qb, 0, kb, 0, vb, 0, bo, 0, pb.mask(), 0, pb.batch(), pb.qLen(), pb.kLen(),
                pb.kStride(), 0, pb.heads(), pb.kvHeads(), pb.headDim(), pb.scale());
        Naive nb = naive(pb, wide(BF16.toFloat(qb)), wide(BF16.toFloat(kb)), wide(BF16.toFloat(vb)), null, false);
        assertClose("bf16 bidirectional out", pb, nb.out(), BF16.toFloat(bo), 0, OUT_ATOL, BF16_RTOL);
    }

    /** The double gradient formula used above, against central differences of the double forward. */
    @Test
    void naiveGradientMatchesFiniteDifferences() {
        Problem p = problem(600, 2, 5, 6, 8, 1, 4, 2, 4, true);
        double[] q = wide(p.q()), k = wide(p.k()), v = wide(p.v()), w = wide(p.dOut());
        Naive n = naive(p, q, k, v, w, true);
        double h = 1e-6;
        for (double[][] pair : new double[][][] {{q, n.dq()}, {k, n.dk()}, {v, n.dv()}}) {
            double[] x = pair[0], g = pair[1];
            for (int i = 0; i < x.length; i++) {
                double x0 = x[i];
                x[i] = x0 + h;
                double up = loss(naive(p, q, k, v, null, true).out(), w);
                x[i] = x0 - h;
                double down = loss(naive(p, q, k, v, null, true).out(), w);
                x[i] = x0;
                assertEquals((up - down) / (2 * h), g[i], 1e-7, "d loss / d x[" + i + "]");
            }
        }
    }

    private static double loss(double[] out, double[] w) {
        double s = 0;
        for (int i = 0; i < out.length; i++) {
            s += out[i] * w[i];
        }
        return s;
    }

    @Test
    void rejectsBadGeometryNamingTheProblem() {
        float[] x = new float[64];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AttentionReference.forward(x,
                0, x, 0, x, 0, x, 0, x, 0, null, 0, 1, 2, 2, 2, 0, 3, 2, 4, 0.5f));
        assertTrue(e.getMessage().contains("multiple of key/value heads"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AttentionReference.forward(x, 0, x, 0, x, 0, x, 0, x,
                0, null, 0, 1, 2, 2, 1, 0, 2, 2, 4, 0.5f));
        assertTrue(e.getMessage().contains("kStride"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AttentionReference.forward(x, 0, x, 0, x, 0, x, 0, x,
                0, null, 0, 1, 2, 4, 4, 3, 2, 2, 4, 0.5f));
        assertTrue(e.getMessage().contains("do not fit"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AttentionReference.forward(x, 60, x, 0, x, 0, x, 0, x,
                0, null, 0, 1, 2, 2, 2, 0, 2, 2, 4, 0.5f));
        assertTrue(e.getMessage().contains("attention q"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AttentionReference.bidirectional(x, 0, x, 0, x, 0, x,
                0, null, 0, 1, 1, 2, 2, 1, 2, 2, 4, 0.5f));
        assertTrue(e.getMessage().contains("bidirectional"), e.getMessage());
    }
}
