package dev.rlsr.examples.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.rl.RlStepMetrics;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the example end to end on a tiny randomly initialised Qwen3-style model with the byte-level tokenizer (a
 * real Hugging Face directory, written by the engine), so it needs no download and no GPU.
 */
class EngineApiExampleTest {
    private static final int STEPS = 2;
    private static final List<Example> DATA = List.of(
            Example.of("q1", "How much is four times seven?", "Four times seven is twenty-eight."),
            Example.of("q2", "What is the plural of mouse?", "The plural of mouse is mice."));

    @Test
    void generatesScoresTrainsAndSaves(@TempDir Path tmp) {
        Path modelDir = tmp.resolve("tiny"), outDir = tmp.resolve("trained");
        ModelConfig config = ModelConfig.of("qwen3", ByteLevelTokenizer.VOCAB_SIZE, 64, 128, 2, 4, 2, 16, true);
        Map<String, float[]> initial;
        try (DecoderModel m = DecoderModel.init(config, 1, CpuBackend.INSTANCE)) {
            m.save(modelDir);
            initial = download(m);
        }
        ByteLevelTokenizer.writeByteLevel(modelDir);

        EngineApiExample.Result r = EngineApiExample.run(modelDir, outDir, DATA, STEPS);

        // the rewards are cos(E(x + "\n" + y), E(x + "\n" + y*)), recomputed here from the encoder's embeddings in
        // double; a blank response is not embedded and scores 0 (CosineReward's documented default)
        assertEquals(DATA.size(), r.responses().size());
        assertEquals(DATA.size(), r.rewards().length);
        try (MiniLmOnnxEncoder encoder = MiniLmOnnxEncoder.create()) {
            for (int i = 0; i < DATA.size(); i++) {
                String x = DATA.get(i).lastUserContent(), y = r.responses().get(i), ref = DATA.get(i).response();
                double expected = y.isBlank() ? 0 : cosine(encoder.embed(List.of(x + "\n" + y, x + "\n" + ref)));
                // the reward is an fp32 cosine (rounding ~6e-8 near 1) of embeddings from one padded batch, this
                // check's from batches of two: ONNX Runtime's fp32 sums differ in the last bits (3e-8 seen)
                assertEquals(expected, r.rewards()[i], 1e-6, "reward of response " + i + " '" + y + "'");
            }
        }

        assertEquals(STEPS, r.training().history().size(), "one metrics record per GRPO step");
        for (RlStepMetrics m : r.training().history()) {
            assertTrue(m.rewardMean() >= -1 && m.rewardMean() <= 1, "step " + m.step() + " mean reward "
                    + m.rewardMean() + " is not a cosine");
            assertTrue(Double.isFinite(m.loss()), "step " + m.step() + " loss " + m.loss());
        }

        // the saved directory is a complete Hugging Face directory again, holding the trained (changed) weights
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            assertTrue(Files.isRegularFile(outDir.resolve(f)), "missing " + f + " in the saved directory");
        }
        try (DecoderModel saved = DecoderModel.load(outDir, CpuBackend.INSTANCE);
             Tokenizer tok = Tokenizer.load(outDir)) {
            assertEquals(config.vocabSize(), saved.config().vocabSize());
            assertEquals(config.numLayers(), saved.config().numLayers());
            assertEquals(ByteLevelTokenizer.VOCAB_SIZE, tok.vocabSize());
            Map<String, float[]> trained = download(saved);
            assertEquals(initial.keySet(), trained.keySet());
            long changed = initial.keySet().stream().filter(k -> !Arrays.equals(initial.get(k), trained.get(k)))
                    .count();
            assertTrue(changed > 0, "GRPO with lr 1e-3 changed no parameter of the saved model");
        }
    }

    private static Map<String, float[]> download(DecoderModel m) {
        Map<String, float[]> out = new java.util.HashMap<>();
        for (Map.Entry<String, Tensor> e : m.parameters().entrySet()) {
            out.put(e.getKey(), m.backend().download(e.getValue()));
        }
        return out;
    }

    private static double cosine(float[][] rows) {
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < rows[0].length; k++) {
            ab += (double) rows[0][k] * rows[1][k];
            aa += (double) rows[0][k] * rows[0][k];
            bb += (double) rows[1][k] * rows[1][k];
        }
        return ab / Math.max(Math.sqrt(aa) * Math.sqrt(bb), 1e-8);
    }
}
