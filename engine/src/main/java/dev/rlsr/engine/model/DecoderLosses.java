package dev.rlsr.engine.model;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

/**
 * The losses of a {@link DecoderModel}: SFT cross entropy, per-token log-probs and the GRPO objective, fused with
 * the backward where there is one. Every statistic is written into a tensor on the backend; the {@code ...Host}
 * variants read results back for tests and tools (a synchronisation point each).
 */
final class DecoderLosses implements AutoCloseable {
    private final DecoderModel m;
    private Tensor scalar;

    DecoderLosses(DecoderModel model) {
        this.m = model;
    }

    private Backend be() {
        return m.backend();
    }

    /** Targets of the causal shift: row (b,t) predicts tokens[b,t+1]; the last position of each row predicts nothing. */
    static int[] shiftedTargets(int B, int T, int[] tokens) {
        int[] t = new int[B * T];
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < T; i++) {
                t[b * T + i] = i < T - 1 ? tokens[b * T + i + 1] : -100;
            }
        }
        return t;
    }

    static int countTargets(int batch, int[] labels) {
        int T = labels.length / batch, count = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 1; t < T; t++) {
                if (labels[b * T + t] >= 0) {
                    count++;
                }
            }
        }
        return count;
    }

    private Tensor scalar() {
        if (scalar == null) {
            scalar = be().zeros(DType.F32, 1);
        }
        return scalar;
    }

    float sftLoss(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask, boolean backward) {
        int count = countTargets(batch, labels);
        if (count == 0) {
            return 0f;
        }
        double sum = sftLossSumHost(batch, inputIds, labels, positionIds, attentionMask, backward ? 1f / count : 0f);
        return (float) (sum / count);
    }

    double sftLossSumHost(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask,
                          float gradScale) {
        Tensor s = scalar();
        be().fill(s, 0f);
        sftLossSum(batch, inputIds, labels, positionIds, attentionMask, gradScale, s);
        return be().download(s)[0];
    }

    void sftLossSum(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask, float gradScale,
                    Tensor lossSum) {
        if (labels.length != inputIds.length) {
            throw new IllegalArgumentException("labels have " + labels.length + " values, input ids "
                    + inputIds.length);
        }
        boolean backward = gradScale != 0f;
        Tensor logits = m.forward(batch, inputIds, positionIds, attentionMask, backward);
        DecoderActivations a = m.last();
        be().upload(shiftedTargets(batch, a.T, labels), a.targets);
        be().crossEntropy(logits, a.targets, gradScale, logits, lossSum);
        if (backward) {
            m.backward(logits);
        }
    }

    void logProbs(int batch, int[] inputIds, int[] positionIds, int[] attentionMask, float temperature, Tensor out) {
        Tensor logits = m.forward(batch, inputIds, positionIds, attentionMask, false);
        DecoderActivations a = m.last();
        if (out.numel() != a.N || out.dtype() != DType.F32) {
            throw new IllegalArgumentException("log-prob output must be F32 (B,T) = " + a.N + " values, got " + out);
        }
        a.ensureLogp();
        be().upload(shiftedTargets(batch, a.T, inputIds), a.targets);
        be().logProbGather(logits, a.targets, temperature, out, a.lse2);
    }

    float[] logProbsHost(int batch, int[] inputIds, int[] positionIds, int[] attentionMask, float temperature) {
        m.checkInputs(batch, inputIds, positionIds, attentionMask);
        int T = inputIds.length / batch;
        DecoderActivations a = m.activations(batch, T, false);
        a.ensureLogp();
        logProbs(batch, inputIds, positionIds, attentionMask, temperature, a.logp);
        return dropLast(be().download(a.logp), batch, T);
    }

    static float[] dropLast(float[] perRow, int B, int T) {
        float[] out = new float[B * (T - 1)];
        for (int b = 0; b < B; b++) {
            System.arraycopy(perRow, b * T, out, b * (T - 1), T - 1);
        }
        return out;
    }

    /** (B, T-1) -> (B, T) with a zero last column. */
    static float[] padLast(float[] perRow, int B, int T) {
        float[] out = new float[B * T];
        for (int b = 0; b < B; b++) {
            System.arraycopy(perRow, b * (T - 1), out, b * T, T - 1);
        }
        return out;
    }

    void grpoLoss(int batch, int[] inputIds, int[] positionIds, int[] attentionMask, Tensor completionMask,
                  Tensor oldLogp, Tensor refLogp, Tensor advantages, GrpoLoss loss, float temperature, Tensor stats) {
        Tensor logits = m.forward(batch, inputIds, positionIds, attentionMask, true);
        DecoderActivations a = m.last();
        a.ensureLogp();
        be().upload(shiftedTargets(batch, a.T, inputIds), a.targets);
        be().logProbGather(logits, a.targets, temperature, a.logp, a.lse2);
        // per-token tensors are (B,T); the normaliser of DR_GRPO stays the completion length T-1
        be().grpoLoss(loss.spec(a.T - 1), a.logp, oldLogp, refLogp, advantages, completionMask, a.dlogp, stats);
        be().logProbGatherBackward(logits, a.targets, a.lse2, a.dlogp, temperature, logits);
        m.backward(logits);
    }

    DecoderModel.GrpoStep grpoLossHost(int batch, int[] inputIds, int[] positionIds, int[] attentionMask,
                                       float[] completionMask, float[] oldLogp, float[] refLogp, float[] advantages,
                                       GrpoLoss loss) {
        m.checkInputs(batch, inputIds, positionIds, attentionMask);
        int T = inputIds.length / batch;
        int n = batch * (T - 1);
        if (completionMask.length != n || advantages.length != batch || (oldLogp != null && oldLogp.length != n)
                || (refLogp != null && refLogp.length != n)) {
            throw new IllegalArgumentException("GRPO inputs must be (B, T-1) = (" + batch + ", " + (T - 1)
                    + ") and advantages (B)");
        }
        Backend be = be();
        float[] padded = padLast(completionMask, batch, T);
        int[] maskInts = new int[padded.length];
        for (int i = 0; i < padded.length; i++) {
            if (padded[i] != 0f && padded[i] != 1f) {
                throw new IllegalArgumentException("the completion mask holds " + padded[i] + "; it must be 0 or 1");
            }
            maskInts[i] = (int) padded[i];
        }
        Tensor mask = be.upload(maskInts, batch, T);
        Tensor old = oldLogp == null ? null : be.upload(padLast(oldLogp, batch, T), batch, T);
        Tensor ref = refLogp == null ? null : be.upload(padLast(refLogp, batch, T), batch, T);
        Tensor adv = be.upload(advantages, batch);
        Tensor stats = be.zeros(DType.F32, 4);
        try {
            grpoLoss(batch, inputIds, positionIds, attentionMask, mask, old, ref, adv, loss, 1f, stats);
            DecoderActivations a = m.last();
            float[] s = be.download(stats);
            float[] logp = dropLast(be.download(a.logp), batch, T);
            float[] dLogp = dropLast(be.download(a.dlogp), batch, T);
            return new DecoderModel.GrpoStep(new GrpoLoss.Result(s[0], dLogp, s[1], s[2], s[3]), logp);
        } finally {
            for (Tensor t : new Tensor[]{mask, old, ref, adv, stats}) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }

    @Override
    public void close() {
        if (scalar != null) {
            scalar.close();
            scalar = null;
        }
    }
}
