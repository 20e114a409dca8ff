package dev.rlsr.engine.model;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.optim.GradClip;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The training-step API end to end on a from-scratch model: init, SFT steps with clipping and AdamW, save/load. */
class TrainingStepTest {
    private final Backend be = CpuBackend.INSTANCE;

    @Test
    void sftStepsMemoriseASequenceAndCheckpointRoundTrips() throws Exception {
        // T = 80 spans two attention query blocks; untied llama with GQA
        ModelConfig cfg = ModelConfig.of("llama", 97, 32, 64, 2, 4, 2, 8, false);
        int b = 2, t = 80;
        SplittableRandom r = new SplittableRandom(5);
        int[] ids = new int[b * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(cfg.vocabSize());
        }
        int[] labels = ids.clone();
        Arrays.fill(labels, 0, 10, -100);
        try (DecoderModel m = DecoderModel.init(cfg, 11, be);
             AdamW opt = new AdamW(new AdamW.Config(1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f))) {
            // init: N(0, 0.02) weights, unit norms, so the first loss is close to log(V)
            m.zeroGrad();
            float first = m.sftLoss(b, ids, labels);
            assertEquals(Math.log(cfg.vocabSize()), first, 0.05, "initial loss of a fresh model");
            float loss = first;
            for (int step = 0; step < 60; step++) {
                m.zeroGrad();
                loss = m.sftLoss(b, ids, labels);
                float norm = GradClip.clipGlobalNorm(m, 1.0f);
                assertTrue(Float.isFinite(norm) && norm > 0, "gradient norm at step " + step + ": " + norm);
                opt.step(m);
            }
            assertTrue(loss < 0.5 * first, "60 AdamW steps on one batch should at least halve the loss: "
                    + first + " -> " + loss);

            // the memorised continuation comes back through prefill + KV-cache decoding
            int prefix = 20;
            int[] out = Generator.greedy(m, 1, Arrays.copyOf(ids, prefix), null, 5, List.of(), 0);
            assertArrayEquals(Arrays.copyOfRange(ids, prefix, prefix + 5), Arrays.copyOfRange(out, prefix, prefix + 5),
                    "greedy continuation of a memorised sequence");
            float trained = m.sftLoss(b, ids, labels, null, null, false);

            Path dir = Files.createTempDirectory("rlsr-train-").resolve("ckpt");
            m.save(dir);
            try (DecoderModel again = DecoderModel.load(dir, be)) {
                for (Map.Entry<String, Tensor> e : m.parameters().entrySet()) {
                    assertArrayEquals(be.download(e.getValue()), be.download(again.parameters().get(e.getKey())),
                            e.getKey());
                }
                assertEquals(trained, again.sftLoss(b, ids, labels, null, null, false), 1e-5);
            }
        }
    }

    @Test
    void microBatchAccumulationEqualsTheFullBatch() {
        ModelConfig cfg = ModelConfig.of("qwen2", 61, 32, 48, 2, 4, 2, 8, true);
        int t = 12;
        SplittableRandom r = new SplittableRandom(9);
        int[] ids = new int[2 * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(cfg.vocabSize());
        }
        int[] labels = ids.clone();
        Arrays.fill(labels, 0, 4, -100);     // row 0: 4 prompt tokens
        Arrays.fill(labels, t, t + 7, -100); // row 1: 7 prompt tokens, so the rows count differently
        try (DecoderModel m = DecoderModel.init(cfg, 3, be)) {
            m.zeroGrad();
            float full = m.sftLoss(2, ids, labels);
            Map<String, float[]> want = new java.util.LinkedHashMap<>();
            m.grads().forEach((k, v) -> want.put(k, be.download(v)));

            int total = DecoderModel.countTargets(2, labels);
            m.zeroGrad();
            double sum = 0;
            for (int row = 0; row < 2; row++) {
                sum += m.sftLossSum(1, Arrays.copyOfRange(ids, row * t, row * t + t),
                        Arrays.copyOfRange(labels, row * t, row * t + t), null, null, 1f / total);
            }
            assertEquals(full, sum / total, 1e-5);
            for (Map.Entry<String, float[]> e : want.entrySet()) {
                float[] got = be.download(m.grads().get(e.getKey()));
                for (int i = 0; i < got.length; i++) {
                    assertEquals(e.getValue()[i], got[i], 1e-6 + 1e-4 * Math.abs(e.getValue()[i]),
                            e.getKey() + "[" + i + "]");
                }
            }
        }
    }
}
