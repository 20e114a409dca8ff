package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.trainer.RewardPairs;
import dev.rlsr.trainer.TestDevices;
import dev.rlsr.trainer.reward.RewardInput;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;


/**
 * The Qwen-EM encoder (last-token pooling over a Qwen3 decoder) on {@code CudaBackend} against the CPU backend, on the
 * bundled qwen3_tiny fixture with the byte-level tokenizer (as {@link QwenEmbeddingEncoderTest}), in fp32 and bf16, on
 * the texts of {@link RewardPairs} (the long ones truncated at the fixture's 256 positions; left padding).
 */
@Tag("gpu")
class QwenEmbeddingEncoderGpuTest {
    static final QwenEmbeddingEncoder.Config CONFIG = new QwenEmbeddingEncoder.Config(6, 0, null);

    static Path dir;
    static List<RewardInput> batch;
    static List<String> texts;
    static float[][] cpu;

    @BeforeAll
    static void cpuEmbeddings() throws IOException, URISyntaxException {
        dir = fixtureDir();
        batch = RewardPairs.batch();
        texts = EncoderParity.texts(batch);
        try (QwenEmbeddingEncoder enc = QwenEmbeddingEncoder.load(dir, CONFIG, CpuBackend.INSTANCE)) {
            cpu = enc.embed(texts);
        }
    }

    /** qwen3_tiny with a byte-level tokenizer.json, in a temporary directory (removed after the class). */
    static Path fixtureDir() throws IOException, URISyntaxException {
        Path fixture = Path.of(QwenEmbeddingEncoderGpuTest.class.getClassLoader().getResource("fixtures/qwen3_tiny")
                .toURI());
        Path d = Files.createTempDirectory("qwen-em-gpu-test");
        Files.copy(fixture.resolve("config.json"), d.resolve("config.json"));
        Files.copy(fixture.resolve("model.safetensors"), d.resolve("model.safetensors"));
        ByteLevelTokenizer.writeByteLevel(d);
        return d;
    }

    static void delete(Path d) throws IOException {
        try (var s = Files.walk(d)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @AfterAll
    static void tearDown() throws IOException {
        delete(dir);
    }

    void run(Precision precision) {
        try (CudaBackend be = TestDevices.cuda("QwenEmbeddingEncoderGpuTest", precision);
             QwenEmbeddingEncoder enc = QwenEmbeddingEncoder.load(dir, CONFIG, be, precision)) {
            EncoderParity.checkOnDevice("qwen3_tiny embedding", enc, precision, batch, texts, cpu);
        }
    }

    @Test
    void fp32MatchesTheCpu() {
        run(Precision.FP32);
    }

    @Test
    void bf16MatchesTheCpu() {
        run(Precision.BF16);
    }
}
