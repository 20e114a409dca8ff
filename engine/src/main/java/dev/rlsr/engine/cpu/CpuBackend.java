package dev.rlsr.engine.cpu;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.Sgemm;
import dev.rlsr.kernels.cpu.CpuVec;

import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.util.Arrays;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

/**
 * fp32 backend on the Java heap. Matrix products go through {@link Sgemm}; row-wise ops run in parallel over rows
 * on {@link CpuParallel} ({@code rlsr.threads}); attention runs in parallel over (batch, head) forward and
 * (batch, kv-head) backward, so that the GQA heads sharing a key/value head write their dk/dv without races.
 *
 * <p>Attention keeps no probabilities: the forward saves the log-sum-exp per query row and the backward recomputes
 * {@code p = exp(score - lse)} (flash-attention style), so memory is O(B*H*T), not O(B*H*T^2).
 */
public final class CpuBackend implements Backend {

    /** A shared instance; the backend itself is stateless. */
    public static final CpuBackend INSTANCE = new CpuBackend();

    private static final int ROW_GRAIN = 16;

    private final ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[256]);

    /** A backend; all instances share the worker pool of {@code CpuParallel}, so {@link #INSTANCE} is usually enough. */
    public CpuBackend() {}

    @Override
    public String name() {
        return "cpu";
    }

    // ------------------------------------------------------------------ memory

    static float[] a(Tensor t) {
        if (t instanceof CpuTensor c) {
            return c.array();
        }
        throw new IllegalArgumentException("tensor " + t + " does not belong to the CPU backend");
    }

    private static int n(Tensor t) {
        return a(t).length;
    }

    private static int div(int total, int width, String what) {
        if (width <= 0 || total % width != 0) {
            throw new IllegalArgumentException(what + ": " + total + " elements are not a whole number of rows of "
                    + width);
        }
        return total / width;
    }

    private static void same(int x, int y, String what) {
        if (x != y) {
            throw new IllegalArgumentException(what + ": " + x + " != " + y);
        }
    }

    @Override
    public Tensor alloc(long... shape) {
        return zeros(shape);
    }

    @Override
    public Tensor zeros(long... shape) {
        long n = CpuTensor.count(shape);
        if (n < 0 || n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("shape " + Tensor.describe(shape) + " has " + n
                    + " elements; the CPU backend holds at most 2^31-9 per tensor");
        }
        return new CpuTensor(this, shape, new float[(int) n]);
    }

    @Override
    public Tensor upload(float[] data, long... shape) {
        if (CpuTensor.count(shape) != data.length) {
            throw new IllegalArgumentException("upload: " + data.length + " values for shape " + Tensor.describe(shape));
        }
        return new CpuTensor(this, shape, data.clone());
    }

    @Override
    public float[] download(Tensor t) {
        return a(t).clone();
    }

    @Override
    public void upload(float[] data, Tensor dst) {
        float[] d = a(dst);
        same(data.length, d.length, "upload into " + dst);
        System.arraycopy(data, 0, d, 0, d.length);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        float[] s = a(src), d = a(dst);
        same(s.length, d.length, "copy " + src + " -> " + dst);
        System.arraycopy(s, 0, d, 0, s.length);
    }

    @Override
    public void fill(Tensor t, float value) {
        Arrays.fill(a(t), value);
    }

    @Override
    public void copyRows(Tensor src, int srcStride, int srcRow0, Tensor dst, int dstStride, int dstRow0, int batch,
                         int rows, int width) {
        float[] s = a(src), d = a(dst);
        if ((long) batch * srcStride * width > s.length || (long) batch * dstStride * width > d.length
                || srcRow0 + rows > srcStride || dstRow0 + rows > dstStride) {
            throw new IllegalArgumentException("copyRows out of bounds: batch=" + batch + " rows=" + rows + " width="
                    + width + " src " + src + " stride " + srcStride + "@" + srcRow0 + ", dst " + dst + " stride "
                    + dstStride + "@" + dstRow0);
        }
        for (int b = 0; b < batch; b++) {
            System.arraycopy(s, (b * srcStride + srcRow0) * width, d, (b * dstStride + dstRow0) * width,
                    rows * width);
        }
    }

    @Override
    public void gatherRows(Tensor src, int[] rows, Tensor dst) {
        float[] s = a(src), d = a(dst);
        int w = div(d.length, rows.length, "gatherRows dst");
        int r = div(s.length, w, "gatherRows src");
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] < 0 || rows[i] >= r) {
                throw new IllegalArgumentException("gatherRows: row " + rows[i] + " outside [0, " + r + ")");
            }
            System.arraycopy(s, rows[i] * w, d, i * w, w);
        }
    }

    // ------------------------------------------------------------------ elementwise

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        float[] x = a(a), y = a(b), o = a(out);
        same(x.length, y.length, "add");
        same(x.length, o.length, "add out");
        CpuParallel.forRange(x.length, 1 << 14, (lo, hi) -> {
            int i = lo;
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector.fromArray(S, x, i).add(FloatVector.fromArray(S, y, i)).intoArray(o, i);
            }
            for (; i < hi; i++) {
                o[i] = x[i] + y[i];
            }
        });
    }

    @Override
    public void scale(Tensor t, float s) {
        float[] x = a(t);
        CpuParallel.forRange(x.length, 1 << 14, (lo, hi) -> CpuVec.scaleInto(s, x, lo, x, lo, hi - lo));
    }

    @Override
    public double sumOfSquares(Tensor t) {
        float[] x = a(t);
        double s = 0;
        // float lanes per block of 4096 keep the rounding error tiny; blocks are summed in double
        for (int i = 0; i < x.length; i += 4096) {
            s += CpuVec.sumSquares(x, i, Math.min(4096, x.length - i));
        }
        return s;
    }

    @Override
    public int[] argmaxRows(Tensor x) {
        long[] sh = x.shape();
        int w = (int) sh[sh.length - 1];
        float[] d = a(x);
        int rows = div(d.length, w, "argmaxRows");
        int[] out = new int[rows];
        for (int r = 0; r < rows; r++) {
            int best = 0;
            float bv = d[r * w];
            for (int j = 1; j < w; j++) {
                float v = d[r * w + j];
                if (v > bv || (Float.isNaN(v) && !Float.isNaN(bv))) {
                    bv = v;
                    best = j;
                }
            }
            out[r] = best;
        }
        return out;
    }

    // ------------------------------------------------------------------ linear

    private static int[] linearDims(Tensor x, Tensor w, Tensor y, String op) {
        long[] ws = w.shape();
        if (ws.length != 2) {
            throw new IllegalArgumentException(op + ": weight must be (out,in), got " + w);
        }
        int out = (int) ws[0], in = (int) ws[1];
        int rows = div(n(x), in, op + " input " + x + " vs weight " + w);
        same(n(y), rows * out, op + " output " + y + " size vs rows*out");
        return new int[]{rows, in, out};
    }

    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor y, boolean accumulate) {
        int[] d = linearDims(x, w, y, "linear");
        int rows = d[0], in = d[1], out = d[2];
        float[] yd = a(y);
        Sgemm.sgemm(false, true, rows, out, in, 1f, a(x), 0, in, a(w), 0, in, accumulate ? 1f : 0f, yd, 0, out);
        if (bias != null) {
            float[] bd = a(bias);
            same(bd.length, out, "linear bias");
            CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
                for (int r = lo; r < hi; r++) {
                    CpuVec.axpy(1f, bd, 0, yd, r * out, out);
                }
            });
        }
    }

    @Override
    public void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate) {
        int[] d = linearDims(dx, w, dy, "linearBackwardInput");
        int rows = d[0], in = d[1], out = d[2];
        Sgemm.sgemm(false, false, rows, in, out, 1f, a(dy), 0, out, a(w), 0, in, accumulate ? 1f : 0f, a(dx), 0, in);
    }

    @Override
    public void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias) {
        int[] d = linearDims(x, dw, dy, "linearBackwardWeight");
        int rows = d[0], in = d[1], out = d[2];
        float[] g = a(dy);
        Sgemm.sgemm(true, false, out, in, rows, 1f, g, 0, out, a(x), 0, in, 1f, a(dw), 0, in);
        if (dBias != null) {
            float[] db = a(dBias);
            same(db.length, out, "linearBackwardWeight bias");
            int chunk = Math.max(L, ((out / CpuParallel.THREADS) + L - 1) / L * L);
            CpuParallel.forRange((out + chunk - 1) / chunk, 1, (lo, hi) -> {
                for (int c = lo; c < hi; c++) {
                    int j0 = c * chunk, len = Math.min(out, j0 + chunk) - j0;
                    for (int r = 0; r < rows; r++) {
                        CpuVec.axpy(1f, g, r * out + j0, db, j0, len);
                    }
                }
            });
        }
    }

    // ------------------------------------------------------------------ embedding

    @Override
    public void embedding(int[] ids, Tensor table, Tensor out) {
        float[] t = a(table), o = a(out);
        int c = div(o.length, ids.length, "embedding out");
        int v = div(t.length, c, "embedding table");
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= v) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i
                        + " is outside the vocabulary [0, " + v + ")");
            }
        }
        CpuParallel.forRange(ids.length, ROW_GRAIN,
                (lo, hi) -> {
                    for (int i = lo; i < hi; i++) {
                        System.arraycopy(t, ids[i] * c, o, i * c, c);
                    }
                });
    }

    @Override
    public void embeddingBackward(int[] ids, Tensor dOut, Tensor dTable) {
        float[] g = a(dOut), t = a(dTable);
        int c = div(g.length, ids.length, "embeddingBackward dOut");
        div(t.length, c, "embeddingBackward dTable");
        // split the columns, not the rows: repeated ids then never race
        int chunk = Math.max(L, ((c / CpuParallel.THREADS) + L - 1) / L * L);
        int chunks = (c + chunk - 1) / chunk;
        CpuParallel.forEach(chunks, k -> {
            int j0 = k * chunk, len = Math.min(c, j0 + chunk) - j0;
            for (int i = 0; i < ids.length; i++) {
                CpuVec.axpy(1f, g, i * c + j0, t, ids[i] * c + j0, len);
            }
        });
    }

    // ------------------------------------------------------------------ rmsnorm

    @Override
    public void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd) {
        float[] xd = a(x), wd = a(w), od = a(out), rd = a(rstd);
        int dim = wd.length;
        int rows = div(xd.length, dim, "rmsNorm input " + x + " vs weight " + w);
        same(od.length, xd.length, "rmsNorm out");
        same(rd.length, rows, "rmsNorm rstd");
        CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = r * dim;
                float var = CpuVec.sumSquares(xd, off, dim) / dim;
                float rs = (float) (1.0 / Math.sqrt(var + eps));
                rd[r] = rs;
                int i = 0;
                FloatVector vr = FloatVector.broadcast(S, rs);
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector.fromArray(S, xd, off + i).mul(vr).mul(FloatVector.fromArray(S, wd, i))
                            .intoArray(od, off + i);
                }
                for (; i < dim; i++) {
                    od[off + i] = wd[i] * (xd[off + i] * rs);
                }
            }
        });
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw,
                                boolean accumulateDx) {
        float[] g = a(dOut), xd = a(x), wd = a(w), rd = a(rstd), dxd = a(dx), dwd = a(dw);
        int dim = wd.length;
        int rows = div(xd.length, dim, "rmsNormBackward");
        same(g.length, xd.length, "rmsNormBackward dOut");
        same(dxd.length, xd.length, "rmsNormBackward dx");
        same(rd.length, rows, "rmsNormBackward rstd");
        same(dwd.length, dim, "rmsNormBackward dw");
        int chunks = Math.min(rows, CpuParallel.THREADS * 4);
        int per = (rows + chunks - 1) / chunks;
        int count = (rows + per - 1) / per;
        float[][] partial = new float[count][];
        CpuParallel.forEach(count, c -> {
            float[] pw = new float[dim];
            partial[c] = pw;
            for (int r = c * per, end = Math.min(rows, (c + 1) * per); r < end; r++) {
                int off = r * dim;
                float rs = rd[r];
                // sum_i w_i * g_i * x_i, needed before dx overwrites g when they alias
                FloatVector vrs = FloatVector.broadcast(S, rs);
                FloatVector acc = FloatVector.zero(S);
                int i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector gx = FloatVector.fromArray(S, g, off + i).mul(FloatVector.fromArray(S, xd, off + i));
                    acc = gx.fma(FloatVector.fromArray(S, wd, i), acc);
                    gx.fma(vrs, FloatVector.fromArray(S, pw, i)).intoArray(pw, i);
                }
                float sum = acc.reduceLanes(VectorOperators.ADD);
                for (; i < dim; i++) {
                    float gx = g[off + i] * xd[off + i];
                    sum += wd[i] * gx;
                    pw[i] += gx * rs;
                }
                float k = sum * rs * rs * rs / dim;
                FloatVector vk = FloatVector.broadcast(S, k);
                i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector val = FloatVector.fromArray(S, g, off + i).mul(FloatVector.fromArray(S, wd, i)).mul(vrs)
                            .sub(FloatVector.fromArray(S, xd, off + i).mul(vk));
                    if (accumulateDx) {
                        val = val.add(FloatVector.fromArray(S, dxd, off + i));
                    }
                    val.intoArray(dxd, off + i);
                }
                for (; i < dim; i++) {
                    float val = rs * wd[i] * g[off + i] - k * xd[off + i];
                    dxd[off + i] = accumulateDx ? dxd[off + i] + val : val;
                }
            }
        });
        for (float[] pw : partial) {
            for (int i = 0; i < dim; i++) {
                dwd[i] += pw[i];
            }
        }
    }

    // ------------------------------------------------------------------ rope

    @Override
    public void ropeTable(int[] positions, Tensor invFreq, Tensor table) {
        float[] inv = a(invFreq), t = a(table);
        int half = inv.length, dim = 2 * half;
        same(t.length, positions.length * dim, "ropeTable table size vs positions*headDim");
        CpuParallel.forRange(positions.length, 64, (lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                float pos = positions[n];
                for (int i = 0; i < half; i++) {
                    float f = pos * inv[i]; // fp32 product, as HF's inv_freq @ position_ids
                    t[n * dim + i] = (float) Math.cos(f);
                    t[n * dim + half + i] = (float) Math.sin(f);
                }
            }
        });
    }

    @Override
    public void rope(Tensor x, Tensor table, int heads, boolean inverse) {
        float[] xd = a(x), t = a(table);
        long[] ts = table.shape();
        int dim = (int) ts[ts.length - 1];
        int n = div(t.length, dim, "rope table");
        same(xd.length, n * heads * dim, "rope x size vs table rows*heads*headDim");
        int half = dim / 2;
        float sgn = inverse ? -1f : 1f;
        CpuParallel.forRange(n, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int tb = r * dim;
                for (int h = 0; h < heads; h++) {
                    int base = (r * heads + h) * dim;
                    int i = 0;
                    for (int ub = S.loopBound(half); i < ub; i += L) {
                        FloatVector c = FloatVector.fromArray(S, t, tb + i);
                        FloatVector sn = FloatVector.fromArray(S, t, tb + half + i);
                        if (inverse) {
                            sn = sn.neg();
                        }
                        FloatVector x1 = FloatVector.fromArray(S, xd, base + i);
                        FloatVector x2 = FloatVector.fromArray(S, xd, base + half + i);
                        x1.mul(c).sub(x2.mul(sn)).intoArray(xd, base + i);
                        x2.mul(c).add(x1.mul(sn)).intoArray(xd, base + half + i);
                    }
                    for (; i < half; i++) {
                        float c = t[tb + i], sn = sgn * t[tb + half + i];
                        float x1 = xd[base + i], x2 = xd[base + half + i];
                        xd[base + i] = x1 * c - x2 * sn;
                        xd[base + half + i] = x2 * c + x1 * sn;
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------ attention

    private float[] scratch(int n) {
        float[] s = scratch.get();
        if (s.length < n) {
            s = new float[Math.max(n, s.length * 2)];
            scratch.set(s);
        }
        return s;
    }

    private static void checkAttention(AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                                       int[] keyMask) {
        int qw = s.heads() * s.headDim(), kw = s.kvHeads() * s.headDim();
        same(n(q), s.batch() * s.qLen() * qw, "attention q " + q + " vs " + s);
        same(n(out), s.batch() * s.qLen() * qw, "attention out " + out + " vs " + s);
        same(n(k), s.batch() * s.kStride() * kw, "attention k " + k + " vs " + s);
        same(n(v), s.batch() * s.kStride() * kw, "attention v " + v + " vs " + s);
        same(n(lse), s.batch() * s.heads() * s.qLen(), "attention lse " + lse + " vs " + s);
        if (keyMask != null) {
            same(keyMask.length, s.batch() * s.kStride(), "attention key mask length vs batch*kStride");
        }
    }

    /** Query rows per attention block: scores for a block live in a (QB, kLen) scratch, never (T, T). */
    private static final int QB = 64;

    /**
     * Scaled, masked scores of one query block: {@code p[r, j] = scale * q_r·k_j} for visible keys, -inf for keys
     * that are padding or in the causal future of row r.
     */
    private static void blockScores(float[] qd, int qOff, int qw, float[] kd, int kOff, int kw, int nq, int kEnd,
                                    int D, float scale, float[] p, int firstPos, int[] keyMask, int maskOff) {
        Sgemm.sgemm(false, true, nq, kEnd, D, scale, qd, qOff, qw, kd, kOff, kw, 0f, p, 0, kEnd);
        for (int r = 0; r < nq; r++) {
            int last = firstPos + r, ro = r * kEnd;
            if (last + 1 < kEnd) {
                Arrays.fill(p, ro + last + 1, ro + kEnd, Float.NEGATIVE_INFINITY);
            }
            if (keyMask != null) {
                for (int j = 0, e = Math.min(last + 1, kEnd); j < e; j++) {
                    if (keyMask[maskOff + j] == 0) {
                        p[ro + j] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
        }
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, int[] keyMask) {
        checkAttention(s, q, k, v, out, lse, keyMask);
        float[] qd = a(q), kd = a(k), vd = a(v), od = a(out), ld = a(lse);
        int B = s.batch(), H = s.heads(), D = s.headDim(), Tq = s.qLen(), ks = s.kStride();
        int qw = H * D, kw = s.kvHeads() * D, rep = H / s.kvHeads();
        float scale = s.scale();
        int blocks = (Tq + QB - 1) / QB;
        // one task per (batch, head, query block): causal blocks differ in cost, the shared counter balances them
        CpuParallel.forEach(B * H * blocks, task -> {
            int bh = task / blocks, blk = task % blocks;
            int b = bh / H, h = bh % H, kh = h / rep;
            int i0 = blk * QB, nq = Math.min(Tq, i0 + QB) - i0;
            int kEnd = Math.min(s.kLen(), s.qOffset() + i0 + nq);
            float[] p = scratch(nq * kEnd);
            int qOff = (b * Tq + i0) * qw + h * D, kOff = b * ks * kw + kh * D;
            blockScores(qd, qOff, qw, kd, kOff, kw, nq, kEnd, D, scale, p, s.qOffset() + i0, keyMask, b * ks);
            for (int r = 0; r < nq; r++) {
                int ro = r * kEnd;
                float mx = CpuVec.max(p, ro, kEnd);
                int li = (b * H + h) * Tq + i0 + r;
                if (mx == Float.NEGATIVE_INFINITY) {
                    // a padding query with no visible key: zero output, no gradient (lse = +inf)
                    Arrays.fill(p, ro, ro + kEnd, 0f);
                    ld[li] = Float.POSITIVE_INFINITY;
                    continue;
                }
                double sum = CpuVec.sumExp(p, ro, kEnd, mx);
                CpuVec.expScaled(p, ro, p, ro, kEnd, mx, (float) (1.0 / sum));
                ld[li] = mx + (float) Math.log(sum);
            }
            Sgemm.sgemm(false, false, nq, D, kEnd, 1f, p, 0, kEnd, vd, kOff, kw, 0f, od, qOff, qw);
        });
    }

    @Override
    public void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                  Tensor dk, Tensor dv, AttentionShape s, int[] keyMask) {
        checkAttention(s, q, k, v, out, lse, keyMask);
        same(n(dOut), n(out), "attentionBackward dOut");
        same(n(dq), n(q), "attentionBackward dq");
        same(n(dk), n(k), "attentionBackward dk");
        same(n(dv), n(v), "attentionBackward dv");
        float[] qd = a(q), kd = a(k), vd = a(v), od = a(out), ld = a(lse), go = a(dOut);
        float[] gq = a(dq), gk = a(dk), gv = a(dv);
        int B = s.batch(), H = s.heads(), KH = s.kvHeads(), D = s.headDim(), Tq = s.qLen(), ks = s.kStride();
        int qw = H * D, kw = KH * D, rep = H / KH;
        float scale = s.scale();
        // one task per (batch, kv head): the query heads sharing it accumulate into its dk/dv without races
        CpuParallel.forEach(B * KH, bk -> {
            int b = bk / KH, kh = bk % KH;
            int kOff = b * ks * kw + kh * D;
            for (int j = 0; j < ks; j++) {
                Arrays.fill(gk, kOff + j * kw, kOff + j * kw + D, 0f);
                Arrays.fill(gv, kOff + j * kw, kOff + j * kw + D, 0f);
            }
            for (int h = kh * rep; h < (kh + 1) * rep; h++) {
                for (int i0 = 0; i0 < Tq; i0 += QB) {
                    int nq = Math.min(Tq, i0 + QB) - i0;
                    int kEnd = Math.min(s.kLen(), s.qOffset() + i0 + nq);
                    float[] buf = scratch(2 * nq * kEnd);
                    int dpo = nq * kEnd;
                    int qOff = (b * Tq + i0) * qw + h * D;
                    // recompute P = exp(S - lse) instead of having stored it
                    blockScores(qd, qOff, qw, kd, kOff, kw, nq, kEnd, D, scale, buf, s.qOffset() + i0, keyMask,
                            b * ks);
                    // dP = dO · Vᵀ
                    Sgemm.sgemm(false, true, nq, kEnd, D, 1f, go, qOff, qw, vd, kOff, kw, 0f, buf, dpo, kEnd);
                    for (int r = 0; r < nq; r++) {
                        int ro = r * kEnd, qo = qOff + r * qw;
                        float lsei = ld[(b * H + h) * Tq + i0 + r];
                        if (lsei == Float.POSITIVE_INFINITY) {
                            Arrays.fill(buf, ro, ro + kEnd, 0f);
                            Arrays.fill(buf, dpo + ro, dpo + ro + kEnd, 0f);
                            continue;
                        }
                        CpuVec.expScaled(buf, ro, buf, ro, kEnd, lsei, 1f);
                        float di = CpuVec.dot(go, qo, od, qo, D);
                        // dS = P * (dP - rowsum(dO*O)) * scale, written over dP
                        softmaxGrad(buf, ro, buf, dpo + ro, kEnd, di, scale);
                    }
                    // dQ = dS · K ; dK += dSᵀ · Q ; dV += Pᵀ · dO
                    Sgemm.sgemm(false, false, nq, D, kEnd, 1f, buf, dpo, kEnd, kd, kOff, kw, 0f, gq, qOff, qw);
                    Sgemm.sgemm(true, false, kEnd, D, nq, 1f, buf, dpo, kEnd, qd, qOff, qw, 1f, gk, kOff, kw);
                    Sgemm.sgemm(true, false, kEnd, D, nq, 1f, buf, 0, kEnd, go, qOff, qw, 1f, gv, kOff, kw);
                }
            }
        });
    }

    /** ds = p * (dp - di) * scale, in place over dp. */
    private static void softmaxGrad(float[] p, int po, float[] dp, int dpo, int n, float di, float scale) {
        int i = 0;
        FloatVector vd = FloatVector.broadcast(S, di), vs = FloatVector.broadcast(S, scale);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            FloatVector.fromArray(S, dp, dpo + i).sub(vd).mul(FloatVector.fromArray(S, p, po + i)).mul(vs)
                    .intoArray(dp, dpo + i);
        }
        for (; i < n; i++) {
            dp[dpo + i] = p[po + i] * (dp[dpo + i] - di) * scale;
        }
    }

    // ------------------------------------------------------------------ swiglu

    @Override
    public void swiglu(Tensor g, Tensor u, Tensor h) {
        float[] gd = a(g), ud = a(u), hd = a(h);
        same(gd.length, ud.length, "swiglu");
        same(gd.length, hd.length, "swiglu out");
        CpuParallel.forRange(gd.length, 1 << 13, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector x = FloatVector.fromArray(S, gd, i);
                FloatVector sig = one.div(one.add(x.neg().lanewise(VectorOperators.EXP)));
                x.mul(sig).mul(FloatVector.fromArray(S, ud, i)).intoArray(hd, i);
            }
            for (; i < hi; i++) {
                float x = gd[i];
                float sig = 1f / (1f + (float) Math.exp(-x));
                hd[i] = x * sig * ud[i];
            }
        });
    }

    @Override
    public void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du) {
        float[] gd = a(g), ud = a(u), hh = a(dh), dgd = a(dg), dud = a(du);
        same(gd.length, ud.length, "swigluBackward");
        same(gd.length, hh.length, "swigluBackward dh");
        same(gd.length, dgd.length, "swigluBackward dg");
        same(gd.length, dud.length, "swigluBackward du");
        CpuParallel.forRange(gd.length, 1 << 13, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector x = FloatVector.fromArray(S, gd, i);
                FloatVector up = FloatVector.fromArray(S, ud, i);
                FloatVector d = FloatVector.fromArray(S, hh, i);
                FloatVector sig = one.div(one.add(x.neg().lanewise(VectorOperators.EXP)));
                FloatVector silu = x.mul(sig);
                d.mul(silu).intoArray(dud, i);
                // d silu/dx = sig * (1 + x * (1 - sig))
                d.mul(up).mul(sig.mul(one.add(x.mul(one.sub(sig))))).intoArray(dgd, i);
            }
            for (; i < hi; i++) {
                float x = gd[i];
                float sig = 1f / (1f + (float) Math.exp(-x));
                dud[i] = hh[i] * x * sig;
                dgd[i] = hh[i] * ud[i] * sig * (1f + x * (1f - sig));
            }
        });
    }

    // ------------------------------------------------------------------ losses

    private static int vocab(Tensor logits, int rows) {
        return div(n(logits), rows, "logits " + logits + " vs " + rows + " targets");
    }

    @Override
    public double crossEntropy(Tensor logits, int[] targets, float gradScale, Tensor dLogits) {
        float[] x = a(logits), gx = a(dLogits);
        int rows = targets.length, V = vocab(logits, rows);
        same(gx.length, x.length, "crossEntropy dLogits");
        double[] partial = new double[rows];
        CpuParallel.forRange(rows, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = r * V, t = targets[r];
                if (t < 0) {
                    Arrays.fill(gx, off, off + V, 0f);
                    continue;
                }
                if (t >= V) {
                    throw new IllegalArgumentException("target " + t + " at row " + r + " outside [0, " + V + ")");
                }
                float mx = CpuVec.max(x, off, V);
                float lse = mx + (float) Math.log(CpuVec.sumExp(x, off, V, mx));
                partial[r] = lse - x[off + t];
                CpuVec.expScaled(x, off, gx, off, V, lse, gradScale);
                gx[off + t] -= gradScale;
            }
        });
        double sum = 0;
        for (double p : partial) {
            sum += p;
        }
        return sum;
    }

    @Override
    public void logProbGather(Tensor logits, int[] targets, Tensor logp, Tensor lse) {
        float[] x = a(logits), lp = a(logp), ls = a(lse);
        int rows = targets.length, V = vocab(logits, rows);
        same(lp.length, rows, "logProbGather logp");
        same(ls.length, rows, "logProbGather lse");
        CpuParallel.forRange(rows, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = r * V, t = targets[r];
                float mx = CpuVec.max(x, off, V);
                float l = mx + (float) Math.log(CpuVec.sumExp(x, off, V, mx));
                ls[r] = l;
                if (t >= V) {
                    throw new IllegalArgumentException("target " + t + " at row " + r + " outside [0, " + V + ")");
                }
                lp[r] = t < 0 ? 0f : x[off + t] - l;
            }
        });
    }

    @Override
    public void logProbGatherBackward(Tensor logits, int[] targets, Tensor lse, Tensor dLogp, Tensor dLogits) {
        float[] x = a(logits), ls = a(lse), g = a(dLogp), gx = a(dLogits);
        int rows = targets.length, V = vocab(logits, rows);
        same(gx.length, x.length, "logProbGatherBackward dLogits");
        same(g.length, rows, "logProbGatherBackward dLogp");
        CpuParallel.forRange(rows, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = r * V, t = targets[r];
                if (t < 0 || g[r] == 0f) {
                    Arrays.fill(gx, off, off + V, 0f);
                    continue;
                }
                CpuVec.expScaled(x, off, gx, off, V, ls[r], -g[r]);
                gx[off + t] += g[r];
            }
        });
    }

    // ------------------------------------------------------------------ optimizer

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWParams hp) {
        float[] p = a(param), g = a(grad), md = a(m), vd = a(v);
        same(p.length, g.length, "adamW grad");
        same(p.length, md.length, "adamW m");
        same(p.length, vd.length, "adamW v");
        float decay = 1f - hp.lr() * hp.weightDecay();
        float b1 = hp.beta1(), b2 = hp.beta2(), eps = hp.eps();
        float stepSize = (float) (hp.lr() / hp.biasCorrection1());
        float bc2Sqrt = (float) Math.sqrt(hp.biasCorrection2());
        CpuParallel.forRange(p.length, 1 << 14, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                float gi = g[i];
                float pi = p[i] * decay;
                float mi = md[i] + (gi - md[i]) * (1f - b1);
                float vi = vd[i] * b2 + (1f - b2) * gi * gi;
                md[i] = mi;
                vd[i] = vi;
                p[i] = pi - stepSize * (mi / ((float) Math.sqrt(vi) / bc2Sqrt + eps));
            }
        });
    }

    // ------------------------------------------------------------------ encoder (BERT) ops

    @Override
    public void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
        float[] xd = a(x), wd = a(w), bd = a(b), od = a(out);
        int dim = wd.length;
        same(bd.length, dim, "layerNorm bias vs weight");
        int rows = div(xd.length, dim, "layerNorm input " + x + " vs weight " + w);
        same(od.length, xd.length, "layerNorm out");
        CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = r * dim;
                float mean = sum(xd, off, dim) / dim;
                // two passes (mean, then squared deviations) as torch: no cancellation from E[x^2] - E[x]^2
                FloatVector vm = FloatVector.broadcast(S, mean);
                FloatVector acc = FloatVector.zero(S);
                int i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector d = FloatVector.fromArray(S, xd, off + i).sub(vm);
                    acc = d.fma(d, acc);
                }
                float ss = acc.reduceLanes(VectorOperators.ADD);
                for (; i < dim; i++) {
                    float d = xd[off + i] - mean;
                    ss += d * d;
                }
                float rs = (float) (1.0 / Math.sqrt(ss / dim + eps));
                FloatVector vr = FloatVector.broadcast(S, rs);
                i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector.fromArray(S, xd, off + i).sub(vm).mul(vr).fma(FloatVector.fromArray(S, wd, i),
                            FloatVector.fromArray(S, bd, i)).intoArray(od, off + i);
                }
                for (; i < dim; i++) {
                    od[off + i] = (xd[off + i] - mean) * rs * wd[i] + bd[i];
                }
            }
        });
    }

    private static float sum(float[] x, int off, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            acc = acc.add(FloatVector.fromArray(S, x, off + i));
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += x[off + i];
        }
        return s;
    }

    // erfc(z), z >= 0, by the Chebyshev fit of Numerical Recipes (erfcc): fractional error < 1.2e-7 for every z,
    // which keeps GELU within fp32 rounding of torch's erf; it vectorises (one exp), unlike a branchy erf.
    private static final float[] ERFC_P = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
            0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
    private static final float INV_SQRT2 = (float) (1.0 / Math.sqrt(2.0));

    private static float erfc(float z) {
        float t = 1f / (1f + 0.5f * z);
        float p = ERFC_P[9];
        for (int j = 8; j >= 0; j--) {
            p = p * t + ERFC_P[j];
        }
        return t * (float) Math.exp(-z * z + p);
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        float[] xd = a(x), od = a(out);
        same(xd.length, od.length, "gelu out");
        CpuParallel.forRange(xd.length, 1 << 13, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f), half = FloatVector.broadcast(S, 0.5f);
            FloatVector rs2 = FloatVector.broadcast(S, INV_SQRT2);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector v = FloatVector.fromArray(S, xd, i);
                FloatVector z = v.abs().mul(rs2);
                FloatVector t = one.div(z.fma(half, one));
                FloatVector p = FloatVector.broadcast(S, ERFC_P[9]);
                for (int j = 8; j >= 0; j--) {
                    p = p.fma(t, FloatVector.broadcast(S, ERFC_P[j]));
                }
                // Phi(x) = 1 - erfc(z)/2 for x >= 0 and erfc(z)/2 below: no cancellation on the negative side
                FloatVector he = t.mul(z.mul(z).neg().add(p).lanewise(VectorOperators.EXP)).mul(half);
                FloatVector phi = one.sub(he).blend(he, v.compare(VectorOperators.LT, 0f));
                v.mul(phi).intoArray(od, i);
            }
            for (; i < hi; i++) {
                float v = xd[i];
                float he = 0.5f * erfc(Math.abs(v) * INV_SQRT2);
                od[i] = v * (v < 0f ? he : 1f - he);
            }
        });
    }

    @Override
    public void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, int[] keyMask) {
        if (s.qOffset() != 0 || s.qLen() != s.kLen()) {
            throw new IllegalArgumentException("bidirectional attention is self-attention over one sequence: qOffset "
                    + s.qOffset() + " must be 0 and qLen " + s.qLen() + " must equal kLen " + s.kLen());
        }
        int qw0 = s.heads() * s.headDim(), kw0 = s.kvHeads() * s.headDim();
        same(n(q), s.batch() * s.qLen() * qw0, "bidirectionalAttention q " + q + " vs " + s);
        same(n(out), s.batch() * s.qLen() * qw0, "bidirectionalAttention out " + out + " vs " + s);
        same(n(k), s.batch() * s.kStride() * kw0, "bidirectionalAttention k " + k + " vs " + s);
        same(n(v), s.batch() * s.kStride() * kw0, "bidirectionalAttention v " + v + " vs " + s);
        if (keyMask != null) {
            same(keyMask.length, s.batch() * s.kStride(), "bidirectionalAttention key mask length vs batch*kStride");
        }
        float[] qd = a(q), kd = a(k), vd = a(v), od = a(out);
        int B = s.batch(), H = s.heads(), D = s.headDim(), T = s.qLen(), ks = s.kStride();
        int qw = qw0, kw = kw0, rep = H / s.kvHeads();
        float scale = s.scale();
        // keys past a row's last real token are padding: scoring them would only add exact zeros, so skip them
        int[] kValid = new int[B];
        for (int b = 0; b < B; b++) {
            int e = s.kLen();
            if (keyMask != null) {
                while (e > 0 && keyMask[b * ks + e - 1] == 0) {
                    e--;
                }
            }
            kValid[b] = e;
        }
        int blocks = (T + QB - 1) / QB;
        CpuParallel.forEach(B * H * blocks, task -> {
            int bh = task / blocks, blk = task % blocks;
            int b = bh / H, h = bh % H, kh = h / rep;
            int i0 = blk * QB, nq = Math.min(T, i0 + QB) - i0;
            int kEnd = kValid[b];
            int qOff = (b * T + i0) * qw + h * D, kOff = b * ks * kw + kh * D;
            if (kEnd == 0) {
                for (int r = 0; r < nq; r++) {
                    Arrays.fill(od, qOff + r * qw, qOff + r * qw + D, 0f);
                }
                return;
            }
            float[] p = scratch(nq * kEnd);
            Sgemm.sgemm(false, true, nq, kEnd, D, scale, qd, qOff, qw, kd, kOff, kw, 0f, p, 0, kEnd);
            for (int r = 0; r < nq; r++) {
                int ro = r * kEnd;
                if (keyMask != null) {
                    for (int j = 0; j < kEnd; j++) {
                        if (keyMask[b * ks + j] == 0) {
                            p[ro + j] = Float.NEGATIVE_INFINITY;
                        }
                    }
                }
                float mx = CpuVec.max(p, ro, kEnd);
                if (mx == Float.NEGATIVE_INFINITY) {
                    Arrays.fill(p, ro, ro + kEnd, 0f);
                    continue;
                }
                double sumExp = CpuVec.sumExp(p, ro, kEnd, mx);
                CpuVec.expScaled(p, ro, p, ro, kEnd, mx, (float) (1.0 / sumExp));
            }
            Sgemm.sgemm(false, false, nq, D, kEnd, 1f, p, 0, kEnd, vd, kOff, kw, 0f, od, qOff, qw);
        });
    }

    @Override
    public void meanPool(Tensor x, int[] mask, Tensor pooled) {
        float[] xd = a(x), pd = a(pooled);
        int c = (int) pooled.dim(-1);
        int rowsB = div(pd.length, c, "meanPool pooled");
        int t = div(div(xd.length, c, "meanPool input " + x + " vs pooled " + pooled), rowsB, "meanPool batch");
        if (mask != null) {
            same(mask.length, rowsB * t, "meanPool mask length vs B*T");
        }
        CpuParallel.forEach(rowsB, b -> {
            Arrays.fill(pd, b * c, (b + 1) * c, 0f);
            int count = 0;
            for (int j = 0; j < t; j++) {
                if (mask == null || mask[b * t + j] != 0) {
                    count++;
                    CpuVec.axpy(1f, xd, (b * t + j) * c, pd, b * c, c);
                }
            }
            CpuVec.scaleInto((float) (1.0 / Math.max(count, 1e-9)), pd, b * c, pd, b * c, c);
        });
    }

    @Override
    public void l2NormalizeRows(Tensor x, float eps) {
        float[] xd = a(x);
        int w = (int) x.dim(-1);
        int rows = div(xd.length, w, "l2NormalizeRows");
        CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                float norm = (float) Math.sqrt(CpuVec.sumSquares(xd, r * w, w));
                CpuVec.scaleInto(1f / Math.max(norm, eps), xd, r * w, xd, r * w, w);
            }
        });
    }
}
