package dev.rlsr.trainer.sft;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.optim.GradClip;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;
import dev.rlsr.trainer.train.Batcher;
import dev.rlsr.trainer.train.Batcher.Batch;
import dev.rlsr.trainer.train.Batcher.Sequence;
import dev.rlsr.trainer.train.Checkpointer;
import dev.rlsr.trainer.train.LrSchedule;
import dev.rlsr.trainer.train.NonFiniteException;
import dev.rlsr.trainer.train.TrainListener;
import dev.rlsr.trainer.train.TrainState;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Supervised training: SFT with prompt-masked cross-entropy on chat examples, or plain language-model pretraining
 * on raw text (stage "pretrain", data from {@link SftData#fromTexts}, no masking) — the same loop.
 *
 * <p>Per optimizer step: gradAccum micro-batches, each contributing {@code sum(token CE) / (label tokens of the whole
 * step)}, so the accumulated gradient is that of the step's mean loss however it is split; global-norm clipping;
 * AdamW with warmup + cosine lr. The data order is a function of (seed, epoch), and a step's micro-batches are a
 * function of (epoch, step in epoch), so resuming at step s continues exactly where an uninterrupted run would be.
 * Device-independent: only {@link DecoderModel} and backend APIs.
 */
public final class SftTrainer implements AutoCloseable {
    private final SftConfig cfg;
    private final DecoderModel model;
    private final int padId;
    private final TrainListener listener;
    private final Checkpointer checkpointer;
    private final String stage;
    private final AdamW optimizer;
    /** F32 (3) on the model's backend: [loss sum, squared gradient norm, clip factor] of the current optimizer step. */
    private final Tensor stats;
    private final Tensor lossSum;
    private final Tensor gradNormT;
    private final Tensor clipScale;

    /**
     * @param padId id written into padding (never trained, never attended to)
     * @param stage "sft" or "pretrain" (names the phase, metrics and checkpoints)
     */
    public SftTrainer(SftConfig cfg, DecoderModel model, int padId, TrainListener listener, Checkpointer checkpointer,
                      String stage) {
        if (stage == null || stage.isBlank()) {
            throw new IllegalArgumentException("stage name is required (\"sft\" or \"pretrain\")");
        }
        this.cfg = cfg;
        this.model = model;
        this.padId = padId;
        this.listener = listener == null ? TrainListener.NONE : listener;
        this.checkpointer = checkpointer == null ? Checkpointer.NONE : checkpointer;
        this.stage = stage;
        this.optimizer = new AdamW(new AdamW.Config((float) cfg.lr(), 0.9f, 0.999f, 1e-8f, (float) cfg.weightDecay()));
        this.stats = model.backend().zeros(DType.F32, 3);
        this.lossSum = stats.view(0, 1);
        this.gradNormT = stats.view(1, 1);
        this.clipScale = stats.view(2, 1);
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /** Micro-batches per epoch (the same every epoch). */
    int microBatchesPerEpoch(List<Sequence> train) {
        return Batcher.epoch(train, cfg.batchSize(), cfg.packing(), cfg.groupByLength(), cfg.maxSeqLen(), cfg.seed(),
                0, padId).size();
    }

    /** Optimizer steps per epoch. */
    public long stepsPerEpoch(List<Sequence> train) {
        return (microBatchesPerEpoch(train) + cfg.gradAccum() - 1) / cfg.gradAccum();
    }

    /**
     * Trains (or continues after a resume) and returns the stage's result.
     *
     * @param eval           eval sequences, may be empty
     * @param resumeFrom     a state saved by this stage's checkpoints, or null
     * @param optimizerState the AdamW state saved with it, or null
     */
    public SftResult train(List<Sequence> train, List<Sequence> eval, TrainState resumeFrom,
                           AdamW.State optimizerState) {
        if (train.isEmpty()) {
            throw new IllegalArgumentException(stage + ": no training sequences");
        }
        long perEpoch = stepsPerEpoch(train);
        long total = perEpoch * cfg.epochs();
        LrSchedule schedule = new LrSchedule(cfg.lr(), cfg.warmupSteps(), total, cfg.minLrRatio());
        long step = 0;
        if (resumeFrom != null) {
            if (!stage.equals(resumeFrom.stage())) {
                throw new IllegalArgumentException("cannot resume stage '" + stage + "' from a '" + resumeFrom.stage()
                        + "' checkpoint");
            }
            step = resumeFrom.step();
        }
        if (optimizerState != null) {
            optimizer.loadState(optimizerState, model);
        }
        List<SftStepMetrics> history = new ArrayList<>();
        long examplesSeen = step * cfg.gradAccum() * (long) cfg.batchSize();
        double evalLoss = Double.NaN;
        while (step < total) {
            int epoch = (int) (step / perEpoch);
            List<Batch> batches = Batcher.epoch(train, cfg.batchSize(), cfg.packing(), cfg.groupByLength(),
                    cfg.maxSeqLen(), cfg.seed(), epoch, padId);
            String phase = stage + " epoch " + (epoch + 1);
            listener.phaseStarted(phase, perEpoch, "step");
            for (long inEpoch = step % perEpoch; inEpoch < perEpoch; inEpoch++) {
                listener.stepStarting(stage, step + 1);
                long t0 = System.nanoTime();
                int from = (int) (inEpoch * cfg.gradAccum()), to = Math.min(batches.size(), from + cfg.gradAccum());
                List<Batch> micro = batches.subList(from, to);
                long labelTokens = 0, tokens = 0;
                for (Batch b : micro) {
                    labelTokens += DecoderModel.countTargets(b.rows(), b.labels());
                    tokens += b.tokens();
                }
                double lr = schedule.lr(step);
                double loss = 0, gradNorm = 0;
                if (labelTokens > 0) {
                    model.zeroGrad();
                    Backend be = model.backend();
                    be.fill(stats, 0f);
                    for (Batch b : micro) {
                        model.sftLossSum(b.rows(), b.ids(), b.labels(), null, b.mask(), 1f / labelTokens, lossSum);
                    }
                    boolean clip = cfg.maxGradNorm() > 0;
                    GradClip.clipScale(model, (float) cfg.maxGradNorm(), gradNormT, clipScale);
                    // host-device sync: the one read of this optimizer step (loss sum and squared gradient norm), taken
                    // before the update so that a NaN loss or gradient is never written into the weights
                    float[] st = be.download(stats);
                    loss = st[0] / (double) labelTokens;
                    gradNorm = Math.sqrt(st[1]);
                    NonFiniteException.checkStep(stage, step + 1, loss, gradNorm, stage.equals("sft")
                            ? "sft.lr, sft.max_grad_norm > 0" : "the learning rate, max_grad_norm > 0");
                    optimizer.setLr((float) lr);
                    optimizer.step(model, clip ? clipScale : null);
                }
                step++;
                examplesSeen += micro.stream().mapToInt(Batch::rows).sum();
                double stepEval = Double.NaN;
                boolean last = step == total;
                if (!eval.isEmpty() && (last || (cfg.evalEvery() > 0 && step % cfg.evalEvery() == 0))) {
                    stepEval = evalLoss(eval);
                    evalLoss = stepEval;
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                SftStepMetrics m = new SftStepMetrics(step, epoch + 1, loss, gradNorm, lr, labelTokens,
                        tokens / Math.max(1e-9, seconds), stepEval, seconds);
                history.add(m);
                listener.step(stage, step, m.toMap());
                listener.progress(inEpoch + 1, Map.of("loss", loss, "tok/s", m.tokensPerSecond()));
                if (last || (cfg.checkpointEvery() > 0 && step % cfg.checkpointEvery() == 0)) {
                    checkpointer.save(stage, new TrainState(stage, step, (int) (step / perEpoch), examplesSeen,
                            cfg.seed(), Map.of()), model, optimizer);
                }
            }
            listener.phaseFinished(phase);
        }
        if (!eval.isEmpty() && Double.isNaN(evalLoss)) {
            evalLoss = evalLoss(eval);
        }
        return new SftResult(step, evalLoss, history);
    }

    /** Mean token cross-entropy over all label tokens of the eval sequences (no gradients; one host read). */
    public double evalLoss(List<Sequence> eval) {
        long count = 0;
        model.backend().fill(lossSum, 0f);
        for (Batch b : Batcher.padded(eval, cfg.batchSize(), padId)) {
            int n = DecoderModel.countTargets(b.rows(), b.labels());
            if (n > 0) {
                model.sftLossSum(b.rows(), b.ids(), b.labels(), null, b.mask(), 0f, lossSum);
                count += n;
            }
        }
        return count == 0 ? Double.NaN : model.backend().download(lossSum)[0] / (double) count;
    }

    @Override
    public void close() {
        optimizer.close();
        stats.close();
    }
}
