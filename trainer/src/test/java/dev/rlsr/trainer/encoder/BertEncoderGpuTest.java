package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.trainer.RewardPairs;
import dev.rlsr.trainer.TestDevices;
import dev.rlsr.trainer.reward.RewardInput;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.List;


/**
 * The engine BERT with the bundled all-MiniLM-L6-v2 weights on {@code CudaBackend} (a GPU, or the CUDA emulator in
 * CI) against the same encoder on the CPU backend, on the texts of a reward batch of real prompt/response pairs
 * ({@link RewardPairs}), in fp32 and in bf16. Batch size 5, so the 20 texts run as 4 padded, length-sorted batches.
 */
@Tag("gpu")
class BertEncoderGpuTest {
    static final BertEncoder.Config CONFIG = new BertEncoder.Config(5, 0);

    static List<RewardInput> batch;
    static List<String> texts;
    static float[][] cpu;

    @BeforeAll
    static void cpuEmbeddings() {
        batch = RewardPairs.batch();
        texts = EncoderParity.texts(batch);
        try (BertEncoder enc = BertEncoder.bundledMiniLm(CONFIG, CpuBackend.INSTANCE)) {
            cpu = enc.embed(texts);
            System.out.println("BertEncoderGpuTest: " + texts.size() + " texts of " + texts.stream()
                    .mapToInt(enc::tokenCount).summaryStatistics() + " word pieces");
        }
    }

    @AfterAll
    static void release() {
        cpu = null;
    }

    void run(Precision precision) {
        try (CudaBackend be = TestDevices.cuda("BertEncoderGpuTest", precision);
             BertEncoder enc = BertEncoder.bundledMiniLm(CONFIG, be, precision)) {
            EncoderParity.checkOnDevice("all-MiniLM-L6-v2", enc, precision, batch, texts, cpu);
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
