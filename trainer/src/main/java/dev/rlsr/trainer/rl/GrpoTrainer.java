package dev.rlsr.trainer.rl;

import dev.rlsr.engine.generate.NonFiniteLogitsException;
import dev.rlsr.engine.generate.RolloutEngine;
import dev.rlsr.engine.generate.Rollouts;
import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.model.GrpoLoss;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.optim.GradClip;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.reward.RewardInput;
import dev.rlsr.trainer.train.Checkpointer;
import dev.rlsr.trainer.train.LrSchedule;
import dev.rlsr.trainer.train.NonFiniteException;
import dev.rlsr.trainer.train.TrainListener;
import dev.rlsr.trainer.train.TrainState;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;

/**
 * GRPO / RLSR: per step, rollout → reward → advantages → update → log, in that order (DESIGN style 7).
 *
 * <ol>
 *   <li>rollout: P prompts (chat template with the generation prompt), G samples each, prompt prefilled once per
 *       group ({@link RolloutEngine}); the step's sampling seed is derived from (sampling seed, step)</li>
 *   <li>reward: ONE call of the reward function on all P*G (prompt, response, reference) rows</li>
 *   <li>advantages: {@link Advantages} with the configured normalisation</li>
 *   <li>update: old log-probs (only when mu &gt; 1; with mu = 1 the ratio is 1 by construction, as in TRL) and
 *       reference log-probs (only when beta &gt; 0) are computed once, then mu AdamW steps, each over all rows in
 *       micro-batches with gradients accumulated so that the step's gradient is the full-batch gradient of the
 *       configured loss level, clipped to the global norm, lr from warmup + cosine</li>
 *   <li>log: one {@link RlStepMetrics} to the listener, checkpoint at the configured interval</li>
 * </ol>
 * Only {@link DecoderModel} and backend APIs are used, so the loop runs unchanged on any device. The reference model
 * is a frozen copy of the initial policy and exists only when beta &gt; 0.
 */
public final class GrpoTrainer implements AutoCloseable {
    public static final String STAGE = "rl";

    private final RlConfig cfg;
    private final DecoderModel policy;
    private final Tokenizer tokenizer;
    private final RewardFunction reward;
    private final TrainListener listener;
    private final Checkpointer checkpointer;
    private final RolloutEngine engine;
    private final AdamW optimizer;
    private final LrSchedule schedule;
    private DecoderModel reference;
    private boolean ownsReference;

    public GrpoTrainer(RlConfig cfg, DecoderModel policy, Tokenizer tokenizer, RewardFunction reward,
                       TrainListener listener, Checkpointer checkpointer) {
        this.cfg = cfg;
        this.policy = policy;
        this.tokenizer = tokenizer;
        this.reward = reward;
        this.listener = listener == null ? TrainListener.NONE : listener;
        this.checkpointer = checkpointer == null ? Checkpointer.NONE : checkpointer;
        this.engine = RolloutEngine.of(policy, tokenizer);
        this.optimizer = new AdamW(new AdamW.Config((float) cfg.lr(), 0.9f, 0.999f, 1e-8f, (float) cfg.weightDecay()));
        this.schedule = new LrSchedule(cfg.lr(), cfg.warmupSteps(), cfg.optimizerSteps(), cfg.minLrRatio());
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /** Whether a reference model is held (never when beta = 0). */
    public boolean holdsReferenceModel() {
        return reference != null;
    }

    /**
     * Runs the stage (or its remainder after a resume).
     *
     * @param examples        prompts and reference responses (cycled in a seeded order, reshuffled per pass)
     * @param resumeFrom      state saved by a checkpoint of this stage, or null to start
     * @param optimizerState  the AdamW state saved with it, or null
     * @param referenceModel  beta &gt; 0 only: the frozen reference (the stage's initial policy). Null makes a copy of
     *                        the policy now, which is right only when not resuming. Not closed by the trainer.
     */
    public RlResult train(List<Example> examples, TrainState resumeFrom, AdamW.State optimizerState,
                          DecoderModel referenceModel) {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("RL needs at least one prompt");
        }
        long startStep = 0;
        if (resumeFrom != null) {
            if (!STAGE.equals(resumeFrom.stage())) {
                throw new IllegalArgumentException("cannot resume an RL stage from a '" + resumeFrom.stage()
                        + "' checkpoint");
            }
            startStep = resumeFrom.step();
        }
        if (optimizerState != null) {
            optimizer.loadState(optimizerState, policy);
        }
        if (cfg.beta() > 0) {
            if (referenceModel != null) {
                reference = referenceModel;
            } else {
                if (resumeFrom != null && resumeFrom.step() > 0) {
                    listener.log("warning: resuming with beta > 0 but no reference model given; using the current "
                            + "policy as the reference");
                }
                // frozen: the reference holds its compute weights only (no gradients, no optimizer state)
                reference = policy.frozenCopy();
                ownsReference = true;
            }
        }
        List<int[]> encoded = new ArrayList<>(examples.size());
        for (Example e : examples) {
            encoded.add(tokenizer.encodeChat(e.prompt(), true));
        }
        GrpoLoss loss = cfg.loss();
        List<RlStepMetrics> history = new ArrayList<>();
        listener.phaseStarted(STAGE, cfg.steps(), "step");
        for (long step = startStep; step < cfg.steps(); step++) {
            listener.stepStarting(STAGE, step + 1);
            long tStep = System.nanoTime();
            int[] order = promptIndices(step, examples.size());

            // ---- rollout
            List<int[]> prompts = new ArrayList<>(order.length);
            for (int i : order) {
                prompts.add(encoded.get(i));
            }
            SamplingConfig sampling = cfg.sampling().withSeed(stepSeed(cfg.sampling().seed(), step));
            Rollouts ro;
            try {
                ro = engine.generate(prompts, cfg.groupSize(), sampling);
            } catch (NonFiniteLogitsException e) {
                // weights that overflow in the forward (after a diverged update) give NaN logits: stop here, before
                // anything is saved
                throw new NonFiniteException(STAGE, step + 1, "rl step " + (step + 1) + ": the policy's logits are"
                        + " not finite numbers during the rollout (the weights have diverged);"
                        + " training stopped and nothing of this step was saved. Lower the learning rate or enable"
                        + " gradient clipping (rl.lr, rl.max_grad_norm > 0).");
            }
            long tRollout = System.nanoTime();

            // ---- reward (one call for the whole batch)
            List<RewardInput> inputs = new ArrayList<>(ro.rows());
            for (int r = 0; r < ro.rows(); r++) {
                Example e = examples.get(order[r / cfg.groupSize()]);
                inputs.add(new RewardInput(e.id(), e.lastUserContent(), ro.texts().get(r), e.response()));
            }
            double[] rewards = reward.score(inputs);
            if (rewards.length != ro.rows()) {
                throw new IllegalStateException("the reward returned " + rewards.length + " scores for " + ro.rows()
                        + " completions");
            }
            long tReward = System.nanoTime();

            // ---- advantages, on the policy's backend (the group-advantages kernel on a GPU)
            Update u;
            try (Tensor adv = Advantages.compute(policy.backend(), rewards, cfg.promptsPerStep(), cfg.groupSize(),
                    cfg.advantageNorm(), cfg.eps())) {
                // ---- update
                u = update(step, RlBatch.of(ro, engine.padId()), adv, loss);
            }
            long tUpdate = System.nanoTime();

            // ---- log
            double rolloutS = (tRollout - tStep) / 1e9;
            RlStepMetrics m = new RlStepMetrics(step + 1, u.loss, Advantages.mean(rewards),
                    Advantages.sampleStd(rewards), u.kl, u.clipFraction, ro.meanEntropy(), u.gradNorm, u.lr,
                    ro.sampledTokens() / Math.max(1e-9, rolloutS), ro.meanLength(), ro.truncatedFraction(), rolloutS,
                    (tReward - tRollout) / 1e9, (tUpdate - tReward) / 1e9, (System.nanoTime() - tStep) / 1e9);
            history.add(m);
            listener.step(STAGE, step + 1, m.toMap());
            listener.progress(step + 1 - startStep, Map.of("reward", m.rewardMean(), "loss", m.loss(),
                    "tok/s", m.tokensPerSecond()));
            boolean last = step + 1 == cfg.steps();
            if (last || (cfg.checkpointEvery() > 0 && (step + 1) % cfg.checkpointEvery() == 0)) {
                long seen = (step + 1) * cfg.promptsPerStep();
                checkpointer.save(STAGE, new TrainState(STAGE, step + 1, (int) (seen / examples.size()), seen,
                        cfg.seed(), Map.of()), policy, optimizer);
            }
        }
        listener.phaseFinished(STAGE);
        return new RlResult(cfg.steps(), optimizer.stepCount(), history);
    }

    private record Update(double loss, double kl, double clipFraction, double gradNorm, double lr) {}

    /** mu optimizer steps on one rollout batch ({@code step}: the 0-based RL step, for messages). */
    private Update update(long step, RlBatch b, Tensor adv, GrpoLoss loss) {
        int R = b.rows(), mb = cfg.microBatch() == 0 ? R : Math.min(cfg.microBatch(), R);
        int chunks = (R + mb - 1) / mb, T = b.len();
        Backend be = policy.backend();
        // log-probs, advantages and masks live on the backend for the whole update; every log-prob is taken at the
        // sampling temperature (TRL divides the logits by T for the policy, old and reference log-probs alike)
        float temperature = (float) cfg.sampling().temperature();
        double totalTokens = Math.max(1, b.completionTokens());
        List<Tensor> owned = new ArrayList<>();
        Tensor[] old = new Tensor[chunks], ref = new Tensor[chunks], mask = new Tensor[chunks], advT = new Tensor[chunks];
        RlBatch.Chunk[] ch = new RlBatch.Chunk[chunks];
        double[] tokenShare = new double[chunks];
        try {
            for (int c = 0; c < chunks; c++) {
                int from = c * mb, to = Math.min(R, (c + 1) * mb);
                ch[c] = b.chunk(from, to);
                int rows = ch[c].rows();
                if (cfg.mu() > 1) {
                    // the sampling policy's log-probs come from the rollout pass itself: no second forward
                    old[c] = track(owned, be.upload(ch[c].oldLogp(), rows, T));
                }
                if (reference != null) {
                    ref[c] = track(owned, be.zeros(DType.F32, rows, T));
                    reference.logProbs(rows, ch[c].ids(), ch[c].positions(), ch[c].mask(), temperature, ref[c]);
                }
                // the chunk's loss is normalised within the chunk; scaling advantages and beta (the loss is linear
                // in both) by the chunk's share makes the accumulated gradient that of the whole batch
                double share = switch (cfg.lossLevel()) {
                    case TOKEN -> ch[c].completionTokens() / totalTokens;
                    case SEQUENCE, DR_GRPO -> (double) rows / R;
                };
                advT[c] = adv.view(from, rows);
                be.scale(advT[c], (float) share);
                mask[c] = track(owned, be.upload(toInts(padLast(ch[c].completionMask(), rows, T)), rows, T));
                tokenShare[c] = ch[c].completionTokens() / totalTokens;
            }
            // per chunk [loss, meanRatio, clipFraction, meanKl], then [squared grad norm, clip factor]
            Tensor stats = track(owned, be.zeros(DType.F32, 4L * chunks + 2));
            Tensor gradNorm = stats.view(4L * chunks, 1), clipScale = stats.view(4L * chunks + 1, 1);
            double lossSum = 0, klSum = 0, clipSum = 0, normSum = 0, lr = 0;
            for (int it = 0; it < cfg.mu(); it++) {
                lr = schedule.lr(optimizer.stepCount());
                optimizer.setLr((float) lr);
                policy.zeroGrad();
                for (int c = 0; c < chunks; c++) {
                    double share = switch (cfg.lossLevel()) {
                        case TOKEN -> tokenShare[c];
                        case SEQUENCE, DR_GRPO -> (double) ch[c].rows() / R;
                    };
                    GrpoLoss scaled = new GrpoLoss(loss.clipLow(), loss.clipHigh(), loss.beta() * share, loss.level(),
                            loss.maxCompletionLength());
                    policy.grpoLoss(ch[c].rows(), ch[c].ids(), ch[c].positions(), ch[c].mask(), mask[c], old[c],
                            ref[c], advT[c], scaled, temperature, stats.view(4L * c, 4));
                }
                GradClip.clipScale(policy, (float) cfg.maxGradNorm(), gradNorm, clipScale);
                // host-device sync: the one read of this optimizer step (loss, KL, clip fraction, grad norm), taken
                // before the update so that a NaN loss or gradient is never written into the weights
                float[] st = be.download(stats);
                double stepLoss = 0;
                for (int c = 0; c < chunks; c++) {
                    stepLoss += st[4 * c];
                    klSum += st[4 * c + 3] * tokenShare[c];
                    clipSum += st[4 * c + 2] * tokenShare[c];
                }
                double norm = Math.sqrt(st[4 * chunks]);
                NonFiniteException.checkStep(STAGE, step + 1, stepLoss, norm, "rl.lr, rl.max_grad_norm > 0");
                optimizer.step(policy, cfg.maxGradNorm() > 0 ? clipScale : null);
                lossSum += stepLoss;
                normSum += norm;
            }
            int mu = cfg.mu();
            return new Update(lossSum / mu, klSum / mu, clipSum / mu, normSum / mu, lr);
        } finally {
            owned.forEach(Tensor::close);
        }
    }

    private static Tensor track(List<Tensor> owned, Tensor t) {
        owned.add(t);
        return t;
    }

    private static int[] toInts(float[] mask) {
        int[] out = new int[mask.length];
        for (int i = 0; i < mask.length; i++) {
            out[i] = mask[i] != 0f ? 1 : 0;
        }
        return out;
    }

    /** (rows, T-1) -> (rows, T) with a zero last column: the device log-probs are per position (B,T). */
    private static float[] padLast(float[] perRow, int rows, int T) {
        float[] out = new float[rows * T];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(perRow, r * (T - 1), out, r * T, T - 1);
        }
        return out;
    }

    /** The prompts of a step: positions step*P .. step*P+P-1 of an endless stream of seeded shuffles. */
    int[] promptIndices(long step, int n) {
        int P = cfg.promptsPerStep();
        int[] out = new int[P];
        long first = step * P;
        long cachedEpoch = -1;
        List<Integer> perm = null;
        for (int i = 0; i < P; i++) {
            long pos = first + i;
            long epoch = pos / n;
            if (epoch != cachedEpoch) {
                perm = new ArrayList<>(n);
                for (int j = 0; j < n; j++) {
                    perm.add(j);
                }
                Collections.shuffle(perm, new Random(new SplittableRandom(cfg.seed() ^ 0x5DEECE66DL).split()
                        .nextLong() + epoch));
                cachedEpoch = epoch;
            }
            out[i] = perm.get((int) (pos % n));
        }
        return out;
    }

    /** A distinct, reproducible sampling seed per step. */
    static long stepSeed(long seed, long step) {
        long z = seed + 0x9E3779B97F4A7C15L * (step + 1);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public void close() {
        engine.close();
        optimizer.close();
        if (ownsReference && reference != null) {
            reference.close();
        }
        reference = null;
    }
}
