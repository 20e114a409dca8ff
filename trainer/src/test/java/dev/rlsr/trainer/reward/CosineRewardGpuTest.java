package dev.rlsr.trainer.reward;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.trainer.RewardPairs;
import dev.rlsr.trainer.TestDevices;
import dev.rlsr.trainer.encoder.BertEncoder;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.encoder.QwenEmbeddingEncoder;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The cosine reward end to end on {@code CudaBackend} in fp32 (a GPU, or the CUDA emulator in CI): embeddings of the
 * batch and cached references in device memory, one cosine launch, only the rewards copied back; against the CPU
 * reward of the same encoder (the host path) within the 1e-5, over three steps: a fresh GRPO batch (P = 4
 * groups of G = 4, the grouped cosine launch), three of its groups again (every reference from the device cache) and
 * those rows shuffled with one blank response (cached references, the row-by-row launch). MiniLM is also compared
 * with the CPU default, ONNX Runtime (its own graph and kernels, so the bound holds against the reward a CPU run
 * actually uses).
 */
@Tag("gpu")
class CosineRewardGpuTest {
    /** The bar: the GPU reward equals the CPU reward to 1e-5 (fp32). */
    static final double MAX_DIFF = 1e-5;

    /**
     * The three steps of the test: the whole batch; its three short groups again (the long group, the costly one on
     * the emulator, runs once); the short rows shuffled, one response blank.
     */
    static List<List<RewardInput>> steps() {
        List<RewardInput> batch = RewardPairs.batch();
        List<RewardInput> shortGroups = batch.subList(0, 3 * RewardPairs.G);
        List<RewardInput> shuffled = new ArrayList<>(shortGroups);
        Collections.shuffle(shuffled, new Random(5));
        RewardInput r = shuffled.get(4);
        shuffled.set(4, new RewardInput(r.exampleId(), r.prompt(), " ", r.reference()));
        return List.of(batch, shortGroups, shuffled);
    }

    /** Scores the steps on the device and with each CPU reward, compares; prints the largest difference. */
    static void compare(String what, CosineReward device, Reward... cpus) {
        assertTrue(device.onDevice(), what + ": an encoder on CudaBackend takes the device path");
        double[] worst = new double[cpus.length];
        int step = 0;
        for (List<RewardInput> batch : steps()) {
            double[] got = device.score(batch);
            for (int c = 0; c < cpus.length; c++) {
                double[] want = cpus[c].score(batch);
                assertEquals(want.length, got.length);
                for (int i = 0; i < got.length; i++) {
                    double e = Math.abs(got[i] - want[i]);
                    if (!(e <= MAX_DIFF)) {
                        fail(what + " vs " + name(cpus[c]) + ", step " + step + ", row " + i + " ("
                                + batch.get(i).exampleId() + "): reward " + got[i] + " on the device, " + want[i]
                                + " on the CPU, |diff| " + e + " > " + MAX_DIFF);
                    }
                    worst[c] = Math.max(worst[c], e);
                }
            }
            step++;
        }
        assertEquals(4, device.cacheSize(), "one cached reference per example id");
        assertEquals(6, device.cacheHits(), "steps 2 and 3 take every reference from the device cache");
        for (int c = 0; c < cpus.length; c++) {
            System.out.printf("%s vs %s: max |reward diff| %.3e over 3 steps (bound %.0e)%n", what, name(cpus[c]),
                    worst[c], MAX_DIFF);
        }
    }

    private static String name(Reward cpu) {
        return cpu instanceof CosineReward c ? c.encoder().getClass().getSimpleName() + " on the CPU" : cpu.name();
    }

    @Test
    void miniLmOnTheDeviceEqualsTheCpuRewards() {
        BertEncoder.Config config = new BertEncoder.Config(8, 0);
        try (CudaBackend be = TestDevices.cuda("CosineRewardGpuTest", Precision.FP32);
             CosineReward device = CosineReward.owning(BertEncoder.bundledMiniLm(config, be, Precision.FP32),
                     CosineReward.Options.defaults());
             CosineReward engineCpu = CosineReward.owning(BertEncoder.bundledMiniLm(config, CpuBackend.INSTANCE),
                     CosineReward.Options.defaults());
             CosineReward onnx = CosineReward.owning(MiniLmOnnxEncoder.create(), CosineReward.Options.defaults())) {
            // the engine BERT on the CPU (same model, host path) and ONNX Runtime (the CPU default)
            compare("all-MiniLM-L6-v2 reward on cuda-fp32", device, engineCpu, onnx);
        }
    }

    @Test
    void qwenEmbeddingOnTheDeviceEqualsTheCpuRewards() throws IOException, URISyntaxException {
        Path fixture = Path.of(getClass().getClassLoader().getResource("fixtures/qwen3_tiny").toURI());
        Path dir = Files.createTempDirectory("qwen-em-reward-gpu-test");
        try {
            Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
            Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
            ByteLevelTokenizer.writeByteLevel(dir);
            QwenEmbeddingEncoder.Config config = new QwenEmbeddingEncoder.Config(6, 0, null);
            try (CudaBackend be = TestDevices.cuda("CosineRewardGpuTest", Precision.FP32);
                 CosineReward device = CosineReward.owning(QwenEmbeddingEncoder.load(dir, config, be, Precision.FP32),
                         CosineReward.Options.defaults());
                 CosineReward cpu = CosineReward.owning(QwenEmbeddingEncoder.load(dir, config, CpuBackend.INSTANCE),
                         CosineReward.Options.defaults())) {
                compare("qwen3_tiny embedding reward on cuda-fp32", device, cpu);
            }
        } finally {
            try (var s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }
}
