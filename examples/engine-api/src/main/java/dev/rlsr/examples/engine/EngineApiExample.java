package dev.rlsr.examples.engine;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.generate.RolloutEngine;
import dev.rlsr.engine.generate.Rollouts;
import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.reward.CosineReward;
import dev.rlsr.trainer.reward.Reward;
import dev.rlsr.trainer.reward.RewardInput;
import dev.rlsr.trainer.rl.GrpoTrainer;
import dev.rlsr.trainer.rl.RlConfig;
import dev.rlsr.trainer.rl.RlResult;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * RLSR from a JVM program: load a Hugging Face model directory, generate with its chat template, score the responses
 * with the RLSR reward {@code cos(E(x ⊕ y), E(x ⊕ y*))} (SentenceBERT all-MiniLM-L6-v2, bundled), run a few GRPO
 * steps with that reward and save the model as a Hugging Face directory again. Runs on the CPU backend.
 */
public final class EngineApiExample {

    /**
     * What {@link #run} did.
     *
     * @param responses the sampled response to each prompt before training
     * @param rewards   the RLSR reward of each response against its reference, in [-1, 1]
     * @param training  the GRPO run: one metrics record per step
     */
    public record Result(List<String> responses, double[] rewards, RlResult training) {
    }

    private EngineApiExample() {
    }

    /**
     * Generates, scores, trains and saves.
     *
     * @param modelDir a Hugging Face model directory: config.json, *.safetensors, tokenizer.json (+ chat template)
     * @param outDir   where the trained model goes (a Hugging Face directory, tokenizer files included)
     * @param data     prompts with their reference responses
     * @param steps    GRPO steps (2 prompts x 4 samples each)
     * @return the responses, their rewards and the training metrics
     */
    public static Result run(Path modelDir, Path outDir, List<Example> data, int steps) {
        try (DecoderModel policy = DecoderModel.load(modelDir, CpuBackend.INSTANCE);
             Tokenizer tokenizer = Tokenizer.load(modelDir);
             Reward reward = CosineReward.owning(MiniLmOnnxEncoder.create(), CosineReward.Options.defaults())) {
            // 1. generate: each prompt through the model's chat template, one sample (temperature 1, seed 7)
            List<int[]> prompts = data.stream().map(e -> tokenizer.encodeChat(e.prompt(), true)).toList();
            Rollouts out = RolloutEngine.of(policy, tokenizer).generate(prompts, 1, SamplingConfig.of(24, 7));

            // 2. score: cos(E(prompt + response), E(prompt + reference)), all rows in one call
            List<RewardInput> batch = new ArrayList<>();
            for (int i = 0; i < data.size(); i++) {
                Example e = data.get(i);
                batch.add(new RewardInput(e.id(), e.lastUserContent(), out.texts().get(i), e.response()));
            }
            double[] rewards = reward.score(batch);

            // 3. GRPO with that reward (= RLSR): 2 prompts x 4 sampled responses per step, lr 1e-3
            RlConfig config = RlConfig.defaults(2, 4, steps, SamplingConfig.of(16, 7)).withLr(1e-3);
            RlResult training;
            try (GrpoTrainer trainer = new GrpoTrainer(config, policy, tokenizer, reward::score, null, null)) {
                training = trainer.train(data, null, null, null);
            }

            // 4. save: config.json + model.safetensors, and the tokenizer files next to them
            policy.save(outDir);
            tokenizer.saveTo(outDir);
            return new Result(out.texts(), rewards, training);
        }
    }

    /**
     * {@code EngineApiExample MODEL_DIR [OUT_DIR]}: a few RLSR steps on two arithmetic questions.
     *
     * @param args the model directory, then where to save (default {@code rlsr-example-out})
     */
    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: EngineApiExample MODEL_DIR [OUT_DIR]   (a Hugging Face model directory, e.g. "
                    + "runs/demo/models/sft from bin/rlsr demo)");
            System.exit(2);
        }
        List<Example> data = List.of(
                Example.of("q1", "How much is four times seven?", "Four times seven is twenty-eight."),
                Example.of("q2", "What is the plural of mouse?", "The plural of mouse is mice."));
        Result r = run(Path.of(args[0]), Path.of(args.length > 1 ? args[1] : "rlsr-example-out"), data, 3);
        for (int i = 0; i < data.size(); i++) {
            System.out.printf("reward %.4f  %s -> %s%n", r.rewards()[i], data.get(i).lastUserContent(),
                    r.responses().get(i));
        }
        r.training().history().forEach(m -> System.out.printf("GRPO step %d: reward mean %.4f, loss %.5f%n", m.step(),
                m.rewardMean(), m.loss()));
    }
}
