package dev.rlsr.bench.gpu;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.optim.GradClip;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

/**
 * One SFT optimizer step exactly as {@code dev.rlsr.trainer.sft.SftTrainer} runs it (one micro-batch): zero the
 * gradients, fused forward + cross entropy + backward ({@link DecoderModel#sftLossSum}) with the gradient of the mean
 * token loss, global-norm clip scale on the device, ONE host read (loss sum and squared gradient norm), AdamW with
 * the clip scale read on the device.
 */
final class SftStep implements AutoCloseable {
    /** The host values of one step. */
    record Result(double loss, double gradNorm) {
    }

    private final DecoderModel model;
    private final AdamW optimizer;
    private final Tensor stats;
    private final Tensor lossSum;
    private final Tensor gradNormSq;
    private final Tensor clipScale;
    private final float maxGradNorm;

    SftStep(DecoderModel model, float lr, float maxGradNorm) {
        this.model = model;
        this.maxGradNorm = maxGradNorm;
        // SftTrainer's optimizer: AdamW(lr, 0.9, 0.999, 1e-8, weight decay)
        this.optimizer = new AdamW(new AdamW.Config(lr, 0.9f, 0.999f, 1e-8f, 0.0f));
        // F32 (3): [loss sum, squared gradient norm, clip factor], as SftTrainer
        this.stats = model.backend().zeros(DType.F32, 3);
        this.lossSum = stats.view(0, 1);
        this.gradNormSq = stats.view(1, 1);
        this.clipScale = stats.view(2, 1);
    }

    /**
     * Runs the step on (B,T) ids with labels = ids (every shifted position counts, as HF with labels=input_ids).
     *
     * @param batch B
     * @param ids   (B,T)
     * @return the mean loss and the gradient norm (before clipping)
     */
    Result run(int batch, int[] ids) {
        int labelTokens = DecoderModel.countTargets(batch, ids);
        Backend be = model.backend();
        model.zeroGrad();
        be.fill(stats, 0f);
        model.sftLossSum(batch, ids, ids, null, null, 1f / labelTokens, lossSum);
        GradClip.clipScale(model, maxGradNorm, gradNormSq, clipScale);
        // host-device sync: the step's one read, before the update (as SftTrainer)
        float[] st = be.download(stats);
        optimizer.step(model, maxGradNorm > 0 ? clipScale : null);
        return new Result(st[0] / (double) labelTokens, Math.sqrt(st[1]));
    }

    @Override
    public void close() {
        optimizer.close();
        stats.close();
    }
}
