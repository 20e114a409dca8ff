package dev.rlsr.trainer.cuda;

import dev.rlsr.trainer.TestDevices;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.model.GrpoLoss;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.reward.RewardInput;
import dev.rlsr.trainer.rl.AdvantageNorm;
import dev.rlsr.trainer.rl.GrpoTrainer;
import dev.rlsr.trainer.rl.RlConfig;
import dev.rlsr.trainer.rl.RlResult;
import dev.rlsr.trainer.sft.SftConfig;
import dev.rlsr.trainer.sft.SftData;
import dev.rlsr.trainer.sft.SftResult;
import dev.rlsr.trainer.sft.SftTrainer;
import dev.rlsr.trainer.train.Batcher.Sequence;
import dev.rlsr.trainer.train.Tiny;
import dev.rlsr.trainer.train.TrainListener;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The trainers end to end on the CUDA backend (a GPU, or the CUDA emulator in CI): SFT in fp32 follows the CPU's loss
 * curve step for step, SFT and GRPO in bf16 learn what the CPU tests show they learn, and a steady training loop makes
 * no device allocation after its first step.
 */
@Tag("gpu")
class CudaTrainersTest {
    @TempDir
    static Path dir;
    static Tokenizer tok;

    @BeforeAll
    static void setUp() {
        TestDevices.requireCuda("CudaTrainersTest");
        tok = Tiny.tokenizer(dir);
    }

    @AfterAll
    static void tearDown() {
        if (tok != null) {
            tok.close();
        }
    }

    private static List<Example> examples() {
        return List.of(Example.of("a", "Say hi", "hi there"), Example.of("b", "Count to three", "one two three"),
                Example.of("c", "Colour of the sky?", "blue"), Example.of("d", "Opposite of up", "down"),
                Example.of("e", "Two plus two", "four"), Example.of("f", "Capital of France", "Paris"));
    }

    private static SftConfig sft(int epochs) {
        return sft(epochs, false);
    }

    /** With packing every micro-batch has the same (B, max_seq_len) shape. */
    private static SftConfig sft(int epochs, boolean packing) {
        return new SftConfig(epochs, 2, 1, 3e-3, 2, 0.1, 0.01, 1.0, packing, 64, 0, 0, 42, true);
    }

    /** The same model, data and settings: per-step losses on cuda-fp32 equal the CPU's up to summation order. */
    @Test
    void sftInFp32FollowsTheCpuStepForStep() {
        List<Sequence> train = SftData.fromExamples(tok, examples(), true, 64);
        double[] cpu = sftLosses(CpuBackend.INSTANCE, train, 4);
        try (CudaBackend be = CudaBackend.open(0, Precision.FP32)) {
            double[] gpu = sftLosses(be, train, 4);
            System.out.printf("SFT losses cpu %s%n           cuda-fp32 %s%n", Arrays.toString(cpu),
                    Arrays.toString(gpu));
            for (int i = 0; i < cpu.length; i++) {
                // fp32 with another summation order (cuBLASLt, tiled attention), compounded over i AdamW steps
                assertEquals(cpu[i], gpu[i], 1e-4 * Math.abs(cpu[i]) * (i + 1), "step " + (i + 1));
            }
        }
    }

    private static double[] sftLosses(Backend be, List<Sequence> train, int epochs) {
        try (DecoderModel m = DecoderModel.init(Tiny.config(), 1, be);
             SftTrainer t = new SftTrainer(sft(epochs), m, tok.specialTokens().padId(), null, null, "sft")) {
            SftResult r = t.train(train, List.of(), null, null);
            return r.history().stream().mapToDouble(h -> h.loss()).toArray();
        }
    }

    @Test
    void sftInBf16LearnsAndStopsAllocating() {
        List<Sequence> train = SftData.fromExamples(tok, examples(), true, 64);
        try (CudaBackend be = CudaBackend.open(0, Precision.BF16);
             DecoderModel m = DecoderModel.init(Tiny.config(), 1, be)) {
            // cuMemAlloc calls seen by the end of each step: packed batches all have one shape, so after the first
            // step every activation and scratch buffer has been seen once and the caching allocator serves the rest
            List<Long> allocations = new ArrayList<>();
            TrainListener count = new TrainListener() {
                @Override
                public void step(String stage, long step, java.util.Map<String, Object> metrics) {
                    allocations.add(be.driverAllocations());
                }
            };
            try (SftTrainer t = new SftTrainer(sft(18, true), m, tok.specialTokens().padId(), count, null, "sft")) {
                double before = t.evalLoss(train);
                SftResult r = t.train(train, List.of(), null, null);
                double first = r.history().getFirst().loss(), last = r.lastLoss();
                System.out.printf("SFT cuda-bf16: eval %.4f -> %.4f, train %.4f -> %.4f, cuMemAlloc calls by step %s%n",
                        before, t.evalLoss(train), first, last, allocations);
                assertTrue(last < 0.6 * first, "train loss " + first + " -> " + last);
                assertTrue(t.evalLoss(train) < 0.6 * before, "eval loss " + before + " -> " + t.evalLoss(train));
                assertTrue(allocations.size() > 5, "steps: " + allocations);
                assertEquals(allocations.getFirst(), allocations.getLast(),
                        "cuMemAlloc calls after the first step (steps 1.." + allocations.size() + ")");
            }
        }
    }

    private static final List<Example> PROMPTS = List.of(Example.of("p1", "Say a", "aaaa"),
            Example.of("p2", "Write", "aaa"), Example.of("p3", "Hello", "a"));

    private static double[] preferA(List<RewardInput> batch) {
        double[] r = new double[batch.size()];
        for (int i = 0; i < r.length; i++) {
            String s = batch.get(i).response();
            long n = s.chars().filter(c -> c == 'a').count();
            r[i] = s.isEmpty() ? 0 : (double) n / s.length();
        }
        return r;
    }

    /** GRPO with a reward for the letter 'a' raises its probability on cuda-bf16, as on the CPU (GrpoTrainerTest). */
    @Test
    void grpoInBf16RaisesTheRewardedTokensProbability() {
        SamplingConfig s = new SamplingConfig(1.0, 1.0, 0, 6, List.of(), 17);
        RlConfig cfg = new RlConfig(3, 16, 12, 1, 1e-2, 0, 1.0, 0.0, 0.0, 0.2, 0.28, 0.04, GrpoLoss.Level.TOKEN,
                AdvantageNorm.GROUP, 1e-4, 0, s, 0, 5);
        try (CudaBackend be = CudaBackend.open(0, Precision.BF16);
             DecoderModel m = DecoderModel.init(Tiny.config(), 7, be);
             GrpoTrainer t = new GrpoTrainer(cfg, m, tok, CudaTrainersTest::preferA, null, null)) {
            double before = logProbOfA(m);
            RlResult r = t.train(PROMPTS, null, null, null);
            double after = logProbOfA(m);
            List<String> rewards = new ArrayList<>();
            r.history().forEach(h -> rewards.add(String.format("%.3f", h.rewardMean())));
            System.out.printf("GRPO cuda-bf16: log p('a') %.3f -> %.3f; reward per step %s%n", before, after, rewards);
            assertTrue(after > before + 1.0, "log p('a') should rise by > 1 nat: " + before + " -> " + after);
            assertTrue(r.history().getLast().rewardMean() > r.history().getFirst().rewardMean());
            assertTrue(r.history().getFirst().kl() >= 0 && Double.isFinite(r.history().getLast().kl()));
        }
    }

    private static double logProbOfA(DecoderModel m) {
        int a = tok.encode("a", false)[0];
        double sum = 0;
        for (Example e : PROMPTS) {
            int[] p = tok.encodeChat(e.prompt(), true);
            int[] ids = Arrays.copyOf(p, p.length + 1);
            ids[p.length] = a;
            sum += m.logProbs(1, ids, null, null)[p.length - 1];
        }
        return sum / PROMPTS.size();
    }
}
