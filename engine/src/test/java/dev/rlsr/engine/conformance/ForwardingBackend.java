package dev.rlsr.engine.conformance;

import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.GrpoSpec;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.SamplingState;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.lang.foreign.MemorySegment;

/**
 * A {@link Backend} that forwards every op to another one; test doubles override the ops they change (the bf16
 * storage emulation, the fault injections that check the conformance suite can fail).
 */
public class ForwardingBackend implements Backend {
    /** The backend every op goes to. */
    protected final Backend d;

    /**
     * A backend that behaves exactly like {@code delegate}.
     *
     * @param delegate the backend every op goes to
     */
    public ForwardingBackend(Backend delegate) {
        this.d = delegate;
    }

    @Override public String name() { return d.name(); }
    @Override public Precision defaultPrecision() { return d.defaultPrecision(); }
    @Override public boolean computes(DType act) { return d.computes(act); }
    @Override public Tensor alloc(DType dtype, long... shape) { return d.alloc(dtype, shape); }
    @Override public Tensor zeros(DType dtype, long... shape) { return d.zeros(dtype, shape); }
    @Override public Tensor upload(float[] data, DType dtype, long... shape) { return d.upload(data, dtype, shape); }
    @Override public Tensor upload(int[] data, long... shape) { return d.upload(data, shape); }
    @Override public void upload(float[] data, Tensor dst) { d.upload(data, dst); }
    @Override public void upload(int[] data, Tensor dst) { d.upload(data, dst); }

    @Override
    public void uploadRaw(MemorySegment src, DType srcType, long count, Tensor dst, long dstOffset) {
        d.uploadRaw(src, srcType, count, dst, dstOffset);
    }

    @Override public float[] download(Tensor t) { return d.download(t); }
    @Override public int[] downloadInts(Tensor t) { return d.downloadInts(t); }
    @Override public void copy(Tensor src, Tensor dst) { d.copy(src, dst); }
    @Override public void fill(Tensor t, float value) { d.fill(t, value); }

    @Override
    public void copyRows(Tensor src, int srcStride, int srcRow0, Tensor dst, int dstStride, int dstRow0, int batch,
                         int rows, int width) {
        d.copyRows(src, srcStride, srcRow0, dst, dstStride, dstRow0, batch, rows, width);
    }

    @Override public void gatherRows(Tensor src, Tensor rows, Tensor dst) { d.gatherRows(src, rows, dst); }
    @Override public void synchronize() { d.synchronize(); }
    @Override public void add(Tensor a, Tensor b, Tensor out) { d.add(a, b, out); }
    @Override public void scale(Tensor t, float s) { d.scale(t, s); }

    @Override
    public void clipScale(Tensor grad, float maxNorm, Tensor norm, Tensor scale) {
        d.clipScale(grad, maxNorm, norm, scale);
    }

    @Override public void argmaxRows(Tensor x, Tensor out) { d.argmaxRows(x, out); }

    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor residual, Tensor y) {
        d.linear(x, w, bias, residual, y);
    }

    @Override
    public void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate) {
        d.linearBackwardInput(dy, w, dx, accumulate);
    }

    @Override
    public void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias) {
        d.linearBackwardWeight(dy, x, dw, dBias);
    }

    @Override public void embedding(Tensor ids, Tensor table, Tensor out) { d.embedding(ids, table, out); }

    @Override
    public void embeddingBackward(Tensor ids, Tensor dOut, Tensor dTable) {
        d.embeddingBackward(ids, dOut, dTable);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd) {
        d.rmsNorm(x, w, eps, out, rstd);
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw,
                                boolean accumulateDx) {
        d.rmsNormBackward(dOut, x, w, rstd, dx, dw, accumulateDx);
    }

    @Override
    public void ropeTable(Tensor positions, Tensor invFreq, Tensor table) {
        d.ropeTable(positions, invFreq, table);
    }

    @Override public void rope(Tensor x, Tensor table, int heads, boolean inverse) { d.rope(x, table, heads, inverse); }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor keyMask) {
        d.attention(q, k, v, out, lse, s, keyMask);
    }

    @Override
    public void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                  Tensor dk, Tensor dv, AttentionShape s, Tensor keyMask) {
        d.attentionBackward(q, k, v, out, lse, dOut, dq, dk, dv, s, keyMask);
    }

    @Override public void swiglu(Tensor g, Tensor u, Tensor h) { d.swiglu(g, u, h); }

    @Override
    public void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du) {
        d.swigluBackward(g, u, dh, dg, du);
    }

    @Override
    public void crossEntropy(Tensor logits, Tensor targets, float gradScale, Tensor dLogits, Tensor lossSum) {
        d.crossEntropy(logits, targets, gradScale, dLogits, lossSum);
    }

    @Override
    public void logProbGather(Tensor logits, Tensor targets, float temperature, Tensor logp, Tensor lse) {
        d.logProbGather(logits, targets, temperature, logp, lse);
    }

    @Override
    public void logProbGatherBackward(Tensor logits, Tensor targets, Tensor lse, Tensor dLogp, float temperature,
                                      Tensor dLogits) {
        d.logProbGatherBackward(logits, targets, lse, dLogp, temperature, dLogits);
    }

    @Override
    public void grpoLoss(GrpoSpec spec, Tensor logp, Tensor oldLogp, Tensor refLogp, Tensor advantages, Tensor mask,
                         Tensor dLogp, Tensor stats) {
        d.grpoLoss(spec, logp, oldLogp, refLogp, advantages, mask, dLogp, stats);
    }

    @Override
    public void appendRowsAt(Tensor src, Tensor dst, int dstStride, Tensor row) {
        d.appendRowsAt(src, dst, dstStride, row);
    }

    @Override
    public void attentionDecode(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s,
                                Tensor cacheLen, Tensor keyMask) {
        d.attentionDecode(q, k, v, out, lse, s, cacheLen, keyMask);
    }

    @Override
    public void addInt(Tensor t, int delta) {
        d.addInt(t, delta);
    }

    @Override
    public void samplingReset(SamplingState state, long seed) {
        d.samplingReset(state, seed);
    }

    @Override
    public void sample(Tensor logits, int group, SamplingState state, Tensor tokens) {
        d.sample(logits, group, state, tokens);
    }

    @Override
    public StepGraph capture(Runnable step) {
        return d.capture(step);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor computeCopy, long decayEnd, AdamWParams p,
                      Tensor clipScale) {
        d.adamW(param, grad, m, v, computeCopy, decayEnd, p, clipScale);
    }

    @Override public void close() { d.close(); }

    @Override
    public void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
        d.layerNorm(x, w, b, eps, out);
    }

    @Override public void gelu(Tensor x, Tensor out) { d.gelu(x, out); }

    @Override
    public void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, Tensor keyMask) {
        d.bidirectionalAttention(q, k, v, out, s, keyMask);
    }

    @Override public void meanPool(Tensor x, Tensor mask, Tensor pooled) { d.meanPool(x, mask, pooled); }
    @Override public void l2NormalizeRows(Tensor x, float eps) { d.l2NormalizeRows(x, eps); }
    @Override public void cosineSimilarity(Tensor ref, Tensor x, Tensor out) { d.cosineSimilarity(ref, x, out); }
    @Override public void groupAdvantages(Tensor rewards, int groupSize, boolean scaleByStd, float eps, Tensor out) {
        d.groupAdvantages(rewards, groupSize, scaleByStd, eps, out);
    }
}
