package dev.rlsr.engine.generate;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.conformance.TestBackends;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decoding on the device (a GPU, or the CUDA emulator in CI): the recorded decode step (a CUDA graph) replayed gives
 * exactly the tokens of eager steps, a prompt prefilled once and shared by its G samples gives the tokens of every
 * row prefilled on its own, and greedy decoding on cuda-fp32 gives the CPU's tokens.
 */
@Tag("gpu")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaRolloutTest {
    private static final int V = 97;
    private CudaBackend bf16;
    private CudaBackend fp32;

    @BeforeAll
    void open() {
        bf16 = TestBackends.device("cuda-bf16", DType.BF16, () -> CudaBackend.open(0, Precision.BF16));
        fp32 = CudaBackend.open(0, Precision.FP32);
    }

    @AfterAll
    void close() {
        if (bf16 != null) {
            bf16.close();
        }
        if (fp32 != null) {
            fp32.close();
        }
    }

    private static ModelConfig config() {
        return ModelConfig.of("qwen3", V, 48, 96, 2, 4, 2, 12, true);
    }

    /** Prompts of different lengths (left padding) and a stop id that some rows will sample. */
    private static List<int[]> prompts() {
        return List.of(new int[]{5, 17, 3, 44, 8}, new int[]{9, 2}, new int[]{60, 61, 62});
    }

    private static RolloutEngine engine(DecoderModel m) {
        return new RolloutEngine(m, new int[]{7}, 0, null);
    }

    @Test
    void replayingTheRecordedStepGivesTheTokensOfEagerSteps() {
        try (DecoderModel m = DecoderModel.init(config(), 3, bf16);
             RolloutEngine recorded = engine(m); RolloutEngine eager = engine(m).recordDecodeSteps(false)) {
            SamplingConfig cfg = new SamplingConfig(1.0, 0.9, 20, 12, List.of(), 11);
            Rollouts a = recorded.generate(prompts(), 4, cfg);
            Rollouts b = eager.generate(prompts(), 4, cfg);
            assertArrayEquals(b.completionIds(), a.completionIds(), "tokens");
            assertArrayEquals(b.completionLengths(), a.completionLengths(), "lengths");
            assertArrayEquals(b.completionLogprobs(), a.completionLogprobs(), 0f, "log-probs");
            // a second call of the same geometry replays the step recorded by the first
            Rollouts again = recorded.generate(prompts(), 4, cfg);
            assertArrayEquals(a.completionIds(), again.completionIds(), "the same seed again");
            long stops = Arrays.stream(a.finish()).filter(f -> f == Rollouts.FinishReason.STOP_TOKEN).count();
            System.out.printf("cuda-bf16 rollouts: %d rows, lengths %s, %d stopped on the stop id%n", a.rows(),
                    Arrays.toString(a.completionLengths()), stops);
        }
    }

    @Test
    void aSharedPrefillGivesTheTokensOfPrefillingEveryRow() {
        try (DecoderModel m = DecoderModel.init(config(), 5, bf16); RolloutEngine e = engine(m)) {
            SamplingConfig cfg = new SamplingConfig(1.0, 1.0, 0, 10, List.of(), 23);
            int G = 3;
            Rollouts shared = e.generate(prompts(), G, cfg);
            List<int[]> each = new ArrayList<>();
            for (int[] p : prompts()) {
                for (int g = 0; g < G; g++) {
                    each.add(p);
                }
            }
            Rollouts separate = e.generate(each, 1, cfg);
            assertArrayEquals(separate.completionIds(), shared.completionIds(), "tokens");
            assertArrayEquals(separate.completionLogprobs(), shared.completionLogprobs(), 0f, "log-probs");
        }
    }

    @Test
    void greedyDecodingOnCudaFp32GivesTheCpusTokens() {
        SamplingConfig greedy = new SamplingConfig(0.0, 1.0, 0, 16, List.of(), 1);
        Rollouts cpu, gpu;
        try (DecoderModel m = DecoderModel.init(config(), 9, CpuBackend.INSTANCE); RolloutEngine e = engine(m)) {
            cpu = e.generate(prompts(), 1, greedy);
        }
        try (DecoderModel m = DecoderModel.init(config(), 9, fp32); RolloutEngine e = engine(m)) {
            gpu = e.generate(prompts(), 1, greedy);
        }
        assertArrayEquals(cpu.completionIds(), gpu.completionIds(), "greedy tokens");
        for (int i = 0; i < cpu.completionLogprobs().length; i++) {
            assertEquals(cpu.completionLogprobs()[i], gpu.completionLogprobs()[i], 1e-5, "log-prob " + i);
        }
        assertTrue(Arrays.stream(cpu.completionLengths()).sum() > 0);
    }
}
