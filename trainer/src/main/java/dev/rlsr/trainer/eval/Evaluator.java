package dev.rlsr.trainer.eval;

import dev.rlsr.engine.generate.RolloutEngine;
import dev.rlsr.engine.generate.Rollouts;
import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.reward.BleuReward;
import dev.rlsr.trainer.reward.Reward;
import dev.rlsr.trainer.reward.RewardInput;
import dev.rlsr.trainer.reward.RougeLReward;
import dev.rlsr.trainer.sft.SftData;
import dev.rlsr.trainer.train.Batcher;
import dev.rlsr.trainer.train.TrainListener;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Evaluates a model on held-out examples: one response per prompt (greedy when the sampling temperature is 0, else
 * sampled with a seed derived from the config's seed and the batch's position, so reruns give the same responses),
 * judged ({@link AnswerJudge}: does it state the example's checkable answer, where the example has one), scored by
 * the run's reward, ROUGE-L F1 and sentence BLEU against the reference, plus the SFT loss of the reference
 * responses (prompt tokens masked) and the response length in tokens. The judge's accuracy and the mean reward get
 * percentile-bootstrap intervals over prompts ({@link Bootstrap}).
 *
 * <p>The reward sees the prompt as {@link #promptText} (the last user turn), like the RL trainer.
 */
public final class Evaluator {

    /**
     * @param batchSize         prompts generated together
     * @param bootstrapSamples  resamples of the bootstrap interval
     * @param confidence        interval level (0.95)
     * @param bootstrapSeed     seed of the resampling
     * @param maxSeqLen         longest sequence of the eval loss (longer ones are truncated)
     */
    public record Options(SamplingConfig sampling, int batchSize, int bootstrapSamples, double confidence,
                          long bootstrapSeed, int maxSeqLen) {
        public Options {
            if (batchSize < 1) {
                throw new IllegalArgumentException("eval batch size must be >= 1, got " + batchSize);
            }
        }
    }

    /**
     * One evaluated example.
     *
     * @param correct the judge's verdict ({@link AnswerJudge}), null when the example has no checkable answer
     * @param task    the example's task label ("" when it has none)
     */
    public record Row(String id, String prompt, String reference, String response, double reward, double rougeL,
                      double bleu, int responseTokens, Boolean correct, String task) {}

    /**
     * A stage's evaluation.
     *
     * @param judge    the fraction of correct responses (the judge, {@link AnswerJudge}) over the examples with a
     *                 checkable answer, with its bootstrap interval; null when no example has one
     * @param evalLoss mean token cross-entropy of the reference responses given the prompts (NaN when not measured)
     */
    public record Result(String stage, Bootstrap.Interval judge, Bootstrap.Interval reward, double rougeL, double bleu,
                         double evalLoss, double meanResponseTokens, List<Row> rows, double seconds) {
        public double[] rewards() {
            return rows.stream().mapToDouble(Row::reward).toArray();
        }

        /** Whether the judge has verdicts (the examples carry checkable answers). */
        public boolean judged() {
            return judge != null;
        }

        /**
         * The judge's verdicts as 1 (correct) and 0, in row order, over the rows with a checkable answer.
         *
         * @return the verdicts
         */
        public double[] verdicts() {
            return rows.stream().filter(r -> r.correct() != null).mapToDouble(r -> r.correct() ? 1 : 0).toArray();
        }

        public double[] rougeLs() {
            return rows.stream().mapToDouble(Row::rougeL).toArray();
        }

        /** Distinct responses / prompts: near 0 when the model gives one answer to everything. */
        public double distinctFraction() {
            return rows.isEmpty() ? Double.NaN
                    : rows.stream().map(r -> r.response().strip()).distinct().count() / (double) rows.size();
        }
    }

    private Evaluator() {
    }

    /** The prompt text rewards see: the last user turn. */
    public static String promptText(Example e) {
        return e.lastUserContent();
    }

    public static Result evaluate(String stage, DecoderModel model, Tokenizer tokenizer, List<Example> examples,
                                  Reward reward, Options opt, TrainListener listener) {
        long t0 = System.nanoTime();
        int n = examples.size();
        listener.phaseStarted("eval " + stage, n, "prompts");
        try (RolloutEngine engine = RolloutEngine.of(model, tokenizer)) {
            List<String> responses = new ArrayList<>(n);
            int[] lengths = new int[n];
            for (int start = 0; start < n; start += opt.batchSize()) {
                int end = Math.min(n, start + opt.batchSize());
                List<int[]> prompts = new ArrayList<>();
                for (int i = start; i < end; i++) {
                    prompts.add(tokenizer.encodeChat(examples.get(i).prompt(), true));
                }
                SamplingConfig s = opt.sampling().isGreedy() ? opt.sampling()
                        : opt.sampling().withSeed(opt.sampling().seed() * 1_000_003L + start);
                Rollouts r = engine.generate(prompts, 1, s);
                for (int i = 0; i < r.rows(); i++) {
                    responses.add(r.texts() != null ? r.texts().get(i) : tokenizer.decode(r.completion(i), true));
                    lengths[start + i] = r.completionLengths()[i];
                }
                listener.progress(end, Map.of());
            }
            List<RewardInput> inputs = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Example e = examples.get(i);
                inputs.add(new RewardInput(e.id(), promptText(e), responses.get(i), e.response()));
            }
            double[] rewards = n == 0 ? new double[0] : reward.score(inputs);
            double[] rouge = n == 0 ? new double[0] : new RougeLReward().score(inputs);
            double[] bleu = n == 0 ? new double[0] : new BleuReward().score(inputs);
            double loss = evalLoss(model, tokenizer, examples, opt.batchSize(), opt.maxSeqLen());
            List<Row> rows = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Example e = examples.get(i);
                Boolean correct = e.hasAnswer() ? AnswerJudge.correct(responses.get(i), e.answers()) : null;
                rows.add(new Row(e.id(), promptText(e), e.response(), responses.get(i), rewards[i], rouge[i], bleu[i],
                        lengths[i], correct, e.task()));
            }
            Bootstrap.Interval ci = Bootstrap.mean(rewards, opt.bootstrapSamples(), opt.confidence(),
                    opt.bootstrapSeed());
            double[] verdicts = rows.stream().filter(r -> r.correct() != null).mapToDouble(r -> r.correct() ? 1 : 0)
                    .toArray();
            Bootstrap.Interval judge = verdicts.length == 0 ? null
                    : Bootstrap.mean(verdicts, opt.bootstrapSamples(), opt.confidence(), opt.bootstrapSeed());
            listener.phaseFinished("eval " + stage);
            return new Result(stage, judge, ci, mean(rouge), mean(bleu), loss,
                    Arrays.stream(lengths).average().orElse(0), rows, (System.nanoTime() - t0) / 1e9);
        }
    }

    /**
     * Token-weighted mean cross-entropy of the reference responses given the prompts, tokenized exactly as SFT trains
     * them ({@link SftData#fromExamples} with prompt masking), in padded batches.
     */
    public static double evalLoss(DecoderModel model, Tokenizer tokenizer, List<Example> examples, int batchSize,
                                  int maxSeqLen) {
        int pad = tokenizer.specialTokens().hasPad() ? tokenizer.specialTokens().padId()
                : Math.max(0, tokenizer.specialTokens().eosId());
        double sum = 0;
        long count = 0;
        for (Batcher.Batch b : Batcher.padded(SftData.fromExamples(tokenizer, examples, true, maxSeqLen), batchSize,
                pad)) {
            int c = DecoderModel.countTargets(b.rows(), b.labels());
            if (c > 0) {
                sum += model.sftLossSum(b.rows(), b.ids(), b.labels(), null, b.mask(), 0f);
                count += c;
            }
        }
        return count == 0 ? Double.NaN : sum / count;
    }

    private static double mean(double[] x) {
        return x.length == 0 ? Double.NaN : Arrays.stream(x).sum() / x.length;
    }
}
