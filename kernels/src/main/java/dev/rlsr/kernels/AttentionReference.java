package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;
import dev.rlsr.kernels.cpu.Sgemm;

import jdk.incubator.vector.FloatVector;

import java.util.Arrays;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

/**
 * CPU reference and CPU implementation of {@link Attention}: causal grouped-query softmax attention with a key
 * padding mask, its backward, and the bidirectional (BERT) variant, on fp32 arrays given as (array, offset) pairs.
 *
 * <p>Geometry (the order of every method's trailing size arguments, as in the engine's {@code AttentionShape}):
 * {@code batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale}. Layouts, row-major, starting at the
 * given offset: queries, output and their gradients {@code (batch, qLen, heads*headDim)}; keys, values and their
 * gradients {@code (batch, kStride, kvHeads*headDim)} of which rows {@code [0, kLen)} are valid; lse
 * {@code (batch, heads, qLen)}; key mask {@code (batch, kStride)} (1 = attend, 0 = padding) or null for all keys.
 * Query {@code i} sits at key position {@code qOffset + i} and sees keys {@code j <= qOffset + i}, {@code j < kLen}
 * (causal); query head {@code h} reads key/value head {@code h / (heads / kvHeads)}. A query row with no visible
 * key outputs zeros and gets lse = +inf, so it contributes no gradient.
 *
 * <p>The arithmetic is the CPU backend's: query blocks of {@value #QB} rows, scores of a block through
 * {@link Sgemm} into a (QB, keys) scratch (never (T, T)), max-shifted exponentials with {@link CpuVec}, the backward
 * recomputing {@code P = exp(S - lse)} flash-attention style; the forward runs in parallel over
 * (batch, head, query block), the backward over (batch, kv head) so the heads sharing a kv head add their dk/dv in a
 * fixed order without races. The bf16 variants widen their inputs to fp32, run the same code and round the
 * activation outputs to bf16 (lse stays fp32).
 */
public final class AttentionReference {
    /** Query rows per block: scores for a block live in a (QB, kLen) scratch. */
    private static final int QB = 64;

    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[256]);

    private AttentionReference() {
    }

    private static float[] scratch(int n) {
        float[] s = SCRATCH.get();
        if (s.length < n) {
            s = new float[Math.max(n, s.length * 2)];
            SCRATCH.set(s);
        }
        return s;
    }

    /**
     * Causal attention forward: {@code out = softmax(scale * q kᵀ + mask) v} per (batch, head), and the per-row
     * log-sum-exp of the scaled, masked scores.
     *
     * @param q       queries (batch, qLen, heads*headDim) from {@code qOff}
     * @param qOff    offset of q
     * @param k       keys (batch, kStride, kvHeads*headDim) from {@code kOff}
     * @param kOff    offset of k
     * @param v       values, same layout as k, from {@code vOff}
     * @param vOff    offset of v
     * @param out     output, same layout as q, from {@code outOff} (overwritten)
     * @param outOff  offset of out
     * @param lse     log-sum-exp (batch, heads, qLen) from {@code lseOff} (overwritten; +inf on rows with no key)
     * @param lseOff  offset of lse
     * @param keyMask key mask (batch, kStride) from {@code maskOff}, 1 = attend, 0 = padding; null = all keys
     * @param maskOff offset of keyMask
     * @param batch   batch size B
     * @param qLen    query rows per batch entry
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in the buffers (at least kLen)
     * @param qOffset key position of query 0
     * @param heads   query heads H
     * @param kvHeads key/value heads (divides H)
     * @param headDim head dimension D
     * @param scale   score scale, usually 1/sqrt(D)
     */
    public static void forward(float[] q, int qOff, float[] k, int kOff, float[] v, int vOff, float[] out, int outOff,
            float[] lse, int lseOff, int[] keyMask, int maskOff, int batch, int qLen, int kLen, int kStride,
            int qOffset, int heads, int kvHeads, int headDim, float scale) {
        checkGeometry(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale, false);
        long qn = (long) batch * qLen * heads * headDim, kn = (long) batch * kStride * kvHeads * headDim;
        checkExtent("q", q.length, qOff, qn);
        checkExtent("k", k.length, kOff, kn);
        checkExtent("v", v.length, vOff, kn);
        checkExtent("out", out.length, outOff, qn);
        checkExtent("lse", lse.length, lseOff, (long) batch * heads * qLen);
        checkMask(keyMask, maskOff, batch, kStride);
        int B = batch, H = heads, D = headDim, Tq = qLen, ks = kStride;
        int qw = H * D, kw = kvHeads * D, rep = H / kvHeads;
        int blocks = (Tq + QB - 1) / QB;
        // one task per (batch, head, query block): causal blocks differ in cost, the shared counter balances them
        CpuParallel.forEach(B * H * blocks, task -> {
            int bh = task / blocks, blk = task % blocks;
            int b = bh / H, h = bh % H, kh = h / rep;
            int i0 = blk * QB, nq = Math.min(Tq, i0 + QB) - i0;
            int kEnd = Math.min(kLen, qOffset + i0 + nq);
            float[] p = scratch(nq * kEnd);
            int qo = (b * Tq + i0) * qw + h * D, ko = b * ks * kw + kh * D;
            blockScores(q, qOff + qo, qw, k, kOff + ko, kw, nq, kEnd, D, scale, p, qOffset + i0, keyMask,
                    maskOff + b * ks);
            for (int r = 0; r < nq; r++) {
                int ro = r * kEnd;
                float mx = CpuVec.max(p, ro, kEnd);
                int li = lseOff + (b * H + h) * Tq + i0 + r;
                if (mx == Float.NEGATIVE_INFINITY) {
                    // a padding query with no visible key: zero output, no gradient (lse = +inf)
                    Arrays.fill(p, ro, ro + kEnd, 0f);
                    lse[li] = Float.POSITIVE_INFINITY;
                    continue;
                }
                double sum = CpuVec.sumExp(p, ro, kEnd, mx);
                CpuVec.expScaled(p, ro, p, ro, kEnd, mx, (float) (1.0 / sum));
                lse[li] = mx + (float) Math.log(sum);
            }
            Sgemm.sgemm(false, false, nq, D, kEnd, 1f, p, 0, kEnd, v, vOff + ko, kw, 0f, out, outOff + qo, qw);
        });
    }

    /**
     * One decode step at cache length {@code cacheLen} (the CPU twin of {@link Attention#decodeAt}, whose length is
     * device data): {@link #forward} with {@code qLen = 1}, {@code kLen = cacheLen}, {@code qOffset = cacheLen - 1}.
     *
     * @param q        queries of the new token (batch, 1, heads*headDim) from {@code qOff}
     * @param qOff     offset of q
     * @param k        key cache (batch, kStride, kvHeads*headDim) from {@code kOff}, rows [0, cacheLen) valid
     * @param kOff     offset of k
     * @param v        value cache, layout of k, from {@code vOff}
     * @param vOff     offset of v
     * @param out      output, layout of q (overwritten)
     * @param outOff   offset of out
     * @param lse      log-sum-exp (batch, heads) (overwritten)
     * @param lseOff   offset of lse
     * @param keyMask  key mask (batch, kStride) or null
     * @param maskOff  offset of keyMask
     * @param batch    batch size B
     * @param kStride  cache rows per batch entry
     * @param heads    query heads H
     * @param kvHeads  key/value heads
     * @param headDim  head dimension D
     * @param scale    score scale
     * @param cacheLen valid cache rows, the new token's key included
     * @throws IllegalArgumentException for a cacheLen outside [1, kStride] (the kernel clamps it instead)
     */
    public static void decodeAt(float[] q, int qOff, float[] k, int kOff, float[] v, int vOff, float[] out,
            int outOff, float[] lse, int lseOff, int[] keyMask, int maskOff, int batch, int kStride, int heads,
            int kvHeads, int headDim, float scale, int cacheLen) {
        checkCacheLen(cacheLen, kStride);
        forward(q, qOff, k, kOff, v, vOff, out, outOff, lse, lseOff, keyMask, maskOff, batch, 1, cacheLen, kStride,
                cacheLen - 1, heads, kvHeads, headDim, scale);
    }

    /**
     * {@link #decodeAt} on bf16 activations (raw bits); out is rounded to bf16, lse is fp32.
     *
     * @param q        queries of the new token, from {@code qOff}
     * @param qOff     offset of q
     * @param k        key cache, from {@code kOff}
     * @param kOff     offset of k
     * @param v        value cache, from {@code vOff}
     * @param vOff     offset of v
     * @param out      output (overwritten)
     * @param outOff   offset of out
     * @param lse      log-sum-exp (batch, heads), fp32 (overwritten)
     * @param lseOff   offset of lse
     * @param keyMask  key mask or null
     * @param maskOff  offset of keyMask
     * @param batch    batch size B
     * @param kStride  cache rows per batch entry
     * @param heads    query heads H
     * @param kvHeads  key/value heads
     * @param headDim  head dimension D
     * @param scale    score scale
     * @param cacheLen valid cache rows, the new token's key included
     * @throws IllegalArgumentException for a cacheLen outside [1, kStride]
     */
    public static void decodeAt(short[] q, int qOff, short[] k, int kOff, short[] v, int vOff, short[] out,
            int outOff, float[] lse, int lseOff, int[] keyMask, int maskOff, int batch, int kStride, int heads,
            int kvHeads, int headDim, float scale, int cacheLen) {
        checkCacheLen(cacheLen, kStride);
        forward(q, qOff, k, kOff, v, vOff, out, outOff, lse, lseOff, keyMask, maskOff, batch, 1, cacheLen, kStride,
                cacheLen - 1, heads, kvHeads, headDim, scale);
    }

    private static void checkCacheLen(int cacheLen, int kStride) {
        if (cacheLen < 1 || cacheLen > kStride) {
            throw new IllegalArgumentException("decode cache length " + cacheLen + " outside [1, " + kStride
                    + "] (kStride, the cache's rows per batch entry)");
        }
    }

    /**
     * Gradients of {@link #forward}: overwrites dq (layout of q) and dk, dv (layout of k, all kStride rows: rows no
     * query sees get zeros), recomputing the probabilities from the saved lse.
     *
     * @param q       queries, from {@code qOff}
     * @param qOff    offset of q
     * @param k       keys, from {@code kOff}
     * @param kOff    offset of k
     * @param v       values, from {@code vOff}
     * @param vOff    offset of v
     * @param out     the forward's output, from {@code outOff}
     * @param outOff  offset of out
     * @param lse     the forward's log-sum-exp, from {@code lseOff}
     * @param lseOff  offset of lse
     * @param dOut    gradient of the output (layout of q), from {@code dOutOff}
     * @param dOutOff offset of dOut
     * @param dq      gradient of q (overwritten), from {@code dqOff}
     * @param dqOff   offset of dq
     * @param dk      gradient of k (overwritten), from {@code dkOff}
     * @param dkOff   offset of dk
     * @param dv      gradient of v (overwritten), from {@code dvOff}
     * @param dvOff   offset of dv
     * @param keyMask key mask (batch, kStride) or null
     * @param maskOff offset of keyMask
     * @param batch   batch size B
     * @param qLen    query rows per batch entry
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in the buffers
     * @param qOffset key position of query 0
     * @param heads   query heads H
     * @param kvHeads key/value heads
     * @param headDim head dimension D
     * @param scale   score scale
     */
    public static void backward(float[] q, int qOff, float[] k, int kOff, float[] v, int vOff, float[] out, int outOff,
            float[] lse, int lseOff, float[] dOut, int dOutOff, float[] dq, int dqOff, float[] dk, int dkOff,
            float[] dv, int dvOff, int[] keyMask, int maskOff, int batch, int qLen, int kLen, int kStride,
            int qOffset, int heads, int kvHeads, int headDim, float scale) {
        checkGeometry(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale, false);
        long qn = (long) batch * qLen * heads * headDim, kn = (long) batch * kStride * kvHeads * headDim;
        checkExtent("q", q.length, qOff, qn);
        checkExtent("k", k.length, kOff, kn);
        checkExtent("v", v.length, vOff, kn);
        checkExtent("out", out.length, outOff, qn);
        checkExtent("lse", lse.length, lseOff, (long) batch * heads * qLen);
        checkExtent("dOut", dOut.length, dOutOff, qn);
        checkExtent("dq", dq.length, dqOff, qn);
        checkExtent("dk", dk.length, dkOff, kn);
        checkExtent("dv", dv.length, dvOff, kn);
        checkMask(keyMask, maskOff, batch, kStride);
        int B = batch, H = heads, KH = kvHeads, D = headDim, Tq = qLen, ks = kStride;
        int qw = H * D, kw = KH * D, rep = H / KH;
        // one task per (batch, kv head): the query heads sharing it accumulate into its dk/dv without races
        CpuParallel.forEach(B * KH, bk -> {
            int b = bk / KH, kh = bk % KH;
            int ko = b * ks * kw + kh * D;
            for (int j = 0; j < ks; j++) {
                Arrays.fill(dk, dkOff + ko + j * kw, dkOff + ko + j * kw + D, 0f);
                Arrays.fill(dv, dvOff + ko + j * kw, dvOff + ko + j * kw + D, 0f);
            }
            for (int h = kh * rep; h < (kh + 1) * rep; h++) {
                for (int i0 = 0; i0 < Tq; i0 += QB) {
                    int nq = Math.min(Tq, i0 + QB) - i0;
                    int kEnd = Math.min(kLen, qOffset + i0 + nq);
                    float[] buf = scratch(2 * nq * kEnd);
                    int dpo = nq * kEnd;
                    int qo = (b * Tq + i0) * qw + h * D;
                    // recompute P = exp(S - lse) instead of having stored it
                    blockScores(q, qOff + qo, qw, k, kOff + ko, kw, nq, kEnd, D, scale, buf, qOffset + i0, keyMask,
                            maskOff + b * ks);
                    // dP = dO · Vᵀ
                    Sgemm.sgemm(false, true, nq, kEnd, D, 1f, dOut, dOutOff + qo, qw, v, vOff + ko, kw, 0f, buf, dpo,
                            kEnd);
                    for (int r = 0; r < nq; r++) {
                        int ro = r * kEnd, row = qo + r * qw;
                        float lsei = lse[lseOff + (b * H + h) * Tq + i0 + r];
                        if (lsei == Float.POSITIVE_INFINITY) {
                            Arrays.fill(buf, ro, ro + kEnd, 0f);
                            Arrays.fill(buf, dpo + ro, dpo + ro + kEnd, 0f);
                            continue;
                        }
                        CpuVec.expScaled(buf, ro, buf, ro, kEnd, lsei, 1f);
                        float di = CpuVec.dot(dOut, dOutOff + row, out, outOff + row, D);
                        // dS = P * (dP - rowsum(dO*O)) * scale, written over dP
                        softmaxGrad(buf, ro, buf, dpo + ro, kEnd, di, scale);
                    }
                    // dQ = dS · K ; dK += dSᵀ · Q ; dV += Pᵀ · dO
                    Sgemm.sgemm(false, false, nq, D, kEnd, 1f, buf, dpo, kEnd, k, kOff + ko, kw, 0f, dq, dqOff + qo,
                            qw);
                    Sgemm.sgemm(true, false, kEnd, D, nq, 1f, buf, dpo, kEnd, q, qOff + qo, qw, 1f, dk, dkOff + ko,
                            kw);
                    Sgemm.sgemm(true, false, kEnd, D, nq, 1f, buf, 0, kEnd, dOut, dOutOff + qo, qw, 1f, dv,
                            dvOff + ko, kw);
                }
            }
        });
    }

    /**
     * Bidirectional (non-causal) attention as in BERT, forward only: every query sees every key {@code j < kLen}
     * whose mask is 1; {@code qOffset} must be 0 and {@code qLen == kLen}. Queries at padding positions are computed
     * like any other (HF does the same); a row with no visible key outputs zeros. No lse is saved.
     *
     * @param q       queries, from {@code qOff}
     * @param qOff    offset of q
     * @param k       keys, from {@code kOff}
     * @param kOff    offset of k
     * @param v       values, from {@code vOff}
     * @param vOff    offset of v
     * @param out     output (overwritten), from {@code outOff}
     * @param outOff  offset of out
     * @param keyMask key mask (batch, kStride) or null
     * @param maskOff offset of keyMask
     * @param batch   batch size B
     * @param qLen    query rows per batch entry (= kLen)
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in the buffers
     * @param qOffset must be 0
     * @param heads   query heads H
     * @param kvHeads key/value heads
     * @param headDim head dimension D
     * @param scale   score scale
     */
    public static void bidirectional(float[] q, int qOff, float[] k, int kOff, float[] v, int vOff, float[] out,
            int outOff, int[] keyMask, int maskOff, int batch, int qLen, int kLen, int kStride, int qOffset, int heads,
            int kvHeads, int headDim, float scale) {
        checkGeometry(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale, true);
        long qn = (long) batch * qLen * heads * headDim, kn = (long) batch * kStride * kvHeads * headDim;
        checkExtent("q", q.length, qOff, qn);
        checkExtent("k", k.length, kOff, kn);
        checkExtent("v", v.length, vOff, kn);
        checkExtent("out", out.length, outOff, qn);
        checkMask(keyMask, maskOff, batch, kStride);
        int B = batch, H = heads, D = headDim, T = qLen, ks = kStride;
        int qw = H * D, kw = kvHeads * D, rep = H / kvHeads;
        // keys past a row's last real token are padding: scoring them would only add exact zeros, so skip them
        int[] kValid = new int[B];
        for (int b = 0; b < B; b++) {
            int e = kLen;
            if (keyMask != null) {
                while (e > 0 && keyMask[maskOff + b * ks + e - 1] == 0) {
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
            int qo = (b * T + i0) * qw + h * D, ko = b * ks * kw + kh * D;
            if (kEnd == 0) {
                for (int r = 0; r < nq; r++) {
                    Arrays.fill(out, outOff + qo + r * qw, outOff + qo + r * qw + D, 0f);
                }
                return;
            }
            float[] p = scratch(nq * kEnd);
            Sgemm.sgemm(false, true, nq, kEnd, D, scale, q, qOff + qo, qw, k, kOff + ko, kw, 0f, p, 0, kEnd);
            for (int r = 0; r < nq; r++) {
                int ro = r * kEnd;
                if (keyMask != null) {
                    for (int j = 0; j < kEnd; j++) {
                        if (keyMask[maskOff + b * ks + j] == 0) {
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
            Sgemm.sgemm(false, false, nq, D, kEnd, 1f, p, 0, kEnd, v, vOff + ko, kw, 0f, out, outOff + qo, qw);
        });
    }

    // ---- bf16 activations (raw bits): widened, computed in fp32 as above, outputs rounded to bf16

    /**
     * {@link #forward} on bf16 q, k, v (raw bits); out is rounded to bf16, lse stays fp32.
     *
     * @param q       queries (bf16 bits), from {@code qOff}
     * @param qOff    offset of q
     * @param k       keys (bf16 bits), from {@code kOff}
     * @param kOff    offset of k
     * @param v       values (bf16 bits), from {@code vOff}
     * @param vOff    offset of v
     * @param out     output (bf16 bits, overwritten), from {@code outOff}
     * @param outOff  offset of out
     * @param lse     log-sum-exp (fp32, overwritten), from {@code lseOff}
     * @param lseOff  offset of lse
     * @param keyMask key mask or null
     * @param maskOff offset of keyMask
     * @param batch   batch size B
     * @param qLen    query rows per batch entry
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in the buffers
     * @param qOffset key position of query 0
     * @param heads   query heads H
     * @param kvHeads key/value heads
     * @param headDim head dimension D
     * @param scale   score scale
     */
    public static void forward(short[] q, int qOff, short[] k, int kOff, short[] v, int vOff, short[] out, int outOff,
            float[] lse, int lseOff, int[] keyMask, int maskOff, int batch, int qLen, int kLen, int kStride,
            int qOffset, int heads, int kvHeads, int headDim, float scale) {
        checkGeometry(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale, false);
        int qn = qElements(batch, qLen, heads, headDim);
        checkExtent("out", out.length, outOff, qn);
        float[] o = new float[qn];
        forward(BF16.toFloat(q), qOff, BF16.toFloat(k), kOff, BF16.toFloat(v), vOff, o, 0, lse, lseOff, keyMask,
                maskOff, batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale);
        round(o, out, outOff);
    }

    /**
     * {@link #backward} on bf16 activations (raw bits); dq, dk, dv are rounded to bf16, lse is fp32.
     *
     * @param q       queries, from {@code qOff}
     * @param qOff    offset of q
     * @param k       keys, from {@code kOff}
     * @param kOff    offset of k
     * @param v       values, from {@code vOff}
     * @param vOff    offset of v
     * @param out     the forward's output, from {@code outOff}
     * @param outOff  offset of out
     * @param lse     the forward's log-sum-exp (fp32), from {@code lseOff}
     * @param lseOff  offset of lse
     * @param dOut    gradient of the output, from {@code dOutOff}
     * @param dOutOff offset of dOut
     * @param dq      gradient of q (overwritten), from {@code dqOff}
     * @param dqOff   offset of dq
     * @param dk      gradient of k (overwritten), from {@code dkOff}
     * @param dkOff   offset of dk
     * @param dv      gradient of v (overwritten), from {@code dvOff}
     * @param dvOff   offset of dv
     * @param keyMask key mask or null
     * @param maskOff offset of keyMask
     * @param batch   batch size B
     * @param qLen    query rows per batch entry
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in the buffers
     * @param qOffset key position of query 0
     * @param heads   query heads H
     * @param kvHeads key/value heads
     * @param headDim head dimension D
     * @param scale   score scale
     */
    public static void backward(short[] q, int qOff, short[] k, int kOff, short[] v, int vOff, short[] out, int outOff,
            float[] lse, int lseOff, short[] dOut, int dOutOff, short[] dq, int dqOff, short[] dk, int dkOff,
            short[] dv, int dvOff, int[] keyMask, int maskOff, int batch, int qLen, int kLen, int kStride,
            int qOffset, int heads, int kvHeads, int headDim, float scale) {
        checkGeometry(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale, false);
        int qn = qElements(batch, qLen, heads, headDim), kn = qElements(batch, kStride, kvHeads, headDim);
        checkExtent("dq", dq.length, dqOff, qn);
        checkExtent("dk", dk.length, dkOff, kn);
        checkExtent("dv", dv.length, dvOff, kn);
        float[] gq = new float[qn], gk = new float[kn], gv = new float[kn];
        backward(BF16.toFloat(q), qOff, BF16.toFloat(k), kOff, BF16.toFloat(v), vOff, BF16.toFloat(out), outOff, lse,
                lseOff, BF16.toFloat(dOut), dOutOff, gq, 0, gk, 0, gv, 0, keyMask, maskOff, batch, qLen, kLen, kStride,
                qOffset, heads, kvHeads, headDim, scale);
        round(gq, dq, dqOff);
        round(gk, dk, dkOff);
        round(gv, dv, dvOff);
    }

    /**
     * {@link #bidirectional} on bf16 activations (raw bits); out is rounded to bf16.
     *
     * @param q       queries, from {@code qOff}
     * @param qOff    offset of q
     * @param k       keys, from {@code kOff}
     * @param kOff    offset of k
     * @param v       values, from {@code vOff}
     * @param vOff    offset of v
     * @param out     output (overwritten), from {@code outOff}
     * @param outOff  offset of out
     * @param keyMask key mask or null
     * @param maskOff offset of keyMask
     * @param batch   batch size B
     * @param qLen    query rows per batch entry (= kLen)
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in the buffers
     * @param qOffset must be 0
     * @param heads   query heads H
     * @param kvHeads key/value heads
     * @param headDim head dimension D
     * @param scale   score scale
     */
    public static void bidirectional(short[] q, int qOff, short[] k, int kOff, short[] v, int vOff, short[] out,
            int outOff, int[] keyMask, int maskOff, int batch, int qLen, int kLen, int kStride, int qOffset, int heads,
            int kvHeads, int headDim, float scale) {
        checkGeometry(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale, true);
        int qn = qElements(batch, qLen, heads, headDim);
        checkExtent("out", out.length, outOff, qn);
        float[] o = new float[qn];
        bidirectional(BF16.toFloat(q), qOff, BF16.toFloat(k), kOff, BF16.toFloat(v), vOff, o, 0, keyMask, maskOff,
                batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale);
        round(o, out, outOff);
    }

    // ---- shared pieces

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

    private static void round(float[] src, short[] dst, int dstOff) {
        for (int i = 0; i < src.length; i++) {
            dst[dstOff + i] = BF16.fromFloat(src[i]);
        }
    }

    private static int qElements(int batch, int rows, int heads, int headDim) {
        long n = (long) batch * rows * heads * headDim;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("attention tensor of " + n + " elements does not fit a Java array");
        }
        return (int) n;
    }

    /** The geometry rules of the engine's AttentionShape, plus the bidirectional restriction. */
    static void checkGeometry(int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads,
            int headDim, float scale, boolean bidirectional) {
        if (batch < 1 || qLen < 1 || kLen < 1 || heads < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("attention sizes must be positive: batch=" + batch + " qLen=" + qLen
                    + " kLen=" + kLen + " heads=" + heads + " kvHeads=" + kvHeads + " headDim=" + headDim);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("query heads (" + heads + ") must be a multiple of key/value heads ("
                    + kvHeads + ")");
        }
        if (kLen > kStride) {
            throw new IllegalArgumentException("kLen " + kLen + " exceeds the key buffer's " + kStride
                    + " rows (kStride)");
        }
        if (qOffset < 0 || (long) qOffset + qLen > kLen) {
            throw new IllegalArgumentException("queries at key positions [" + qOffset + ", " + ((long) qOffset + qLen)
                    + ") do not fit the " + kLen + " valid keys");
        }
        if (!Float.isFinite(scale)) {
            throw new IllegalArgumentException("attention scale must be finite, got " + scale);
        }
        if (bidirectional && (qOffset != 0 || qLen != kLen)) {
            throw new IllegalArgumentException("bidirectional attention is self-attention over one sequence: qOffset "
                    + qOffset + " must be 0 and qLen " + qLen + " must equal kLen " + kLen);
        }
    }

    private static void checkExtent(String name, int length, int off, long needed) {
        if (off < 0 || off + needed > length) {
            throw new IllegalArgumentException("attention " + name + ": " + needed + " elements from offset " + off
                    + " do not fit its array of " + length);
        }
    }

    private static void checkMask(int[] keyMask, int maskOff, int batch, int kStride) {
        if (keyMask != null) {
            checkExtent("key mask (batch, kStride)", keyMask.length, maskOff, (long) batch * kStride);
        }
    }
}
