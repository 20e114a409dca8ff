package dev.rlsr.trainer.run;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.kernels.DType;
import dev.rlsr.trainer.TestDevices;
import dev.rlsr.trainer.config.RunConfig;
import dev.rlsr.trainer.encoder.BertEncoder;
import dev.rlsr.trainer.encoder.Encoder;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.reward.CosineReward;
import dev.rlsr.trainer.reward.Reward;
import dev.rlsr.trainer.reward.RewardInput;
import dev.rlsr.trainer.reward.RewardSpec;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code reward.device} and {@code reward.precision}: where the run's reward encoder is created. */
class RewardDeviceTest {

    @TempDir
    Path tmp;

    private final ByteArrayOutputStream console = new ByteArrayOutputStream();

    /** A runner over {@code policy} with the overrides; the caller closes it (and its run directory with it). */
    private record Runner(StageRunner runner, RunDir run, RunListener listener, Tokenizer tok) implements AutoCloseable {
        @Override
        public void close() {
            try (run; listener; tok) {
                runner.close();
            }
        }
    }

    private Runner runner(Backend policy, String... overrides) {
        Path modelDir = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        RunConfig cfg = RunConfig.defaults().withOverrides(List.of(overrides));
        RunDir run = RunDir.open(tmp.resolve("run"));
        RunListener l = new RunListener(new MetricsLog(run.resolve(RunDir.METRICS)),
                new PrintStream(console, true, StandardCharsets.UTF_8), true, false, null);
        Tokenizer tok = Tokenizer.load(modelDir);
        return new Runner(new StageRunner(cfg, run, l, policy, tok, modelDir, new RunReport("t")), run, l, tok);
    }

    private String log() {
        return console.toString(StandardCharsets.UTF_8);
    }

    @Test
    void autoFollowsThePolicyAndCpuIsOnnxRuntime() {
        assertEquals("cpu", StageRunner.rewardDevice("auto", CpuBackend.INSTANCE));
        assertEquals("cpu", StageRunner.rewardDevice("cpu", CpuBackend.INSTANCE));
        assertEquals("cuda", StageRunner.rewardDevice("CUDA", CpuBackend.INSTANCE));
        assertEquals(RunFailure.USAGE, assertThrows(RunFailure.class,
                () -> StageRunner.rewardDevice("tpu", CpuBackend.INSTANCE)).exitCode());
        try (Runner r = runner(CpuBackend.INSTANCE)) {
            Encoder e = r.runner().encoder();
            assertInstanceOf(MiniLmOnnxEncoder.class, e, "the CPU default stays ONNX Runtime");
            try (Reward reward = r.runner().reward(RewardSpec.parse("cosine"))) {
                assertFalse(((CosineReward) reward).onDevice());
            }
            assertTrue(log().contains("ONNX Runtime, CPU"), log());
        }
    }

    @Test
    void theKeysAreChecked() {
        assertThrows(RuntimeException.class, () -> RunConfig.defaults().withOverrides(List.of("reward.device=gpu")));
        assertThrows(RuntimeException.class, () -> RunConfig.defaults().withOverrides(List.of("reward.precision=fp16")));
        // a run whose rewards do not use the encoder needs no device, whatever reward.device says
        StageRunner.preflightRewardDevice(RunConfig.defaults().withOverrides(List.of("reward.device=cuda",
                "rl.reward=rougeL", "eval.reward=bleu")));
    }

    @Test
    @Tag("gpu")
    void autoOnACudaPolicySharesItsBackend() {
        try (CudaBackend policy = TestDevices.cuda("RewardDeviceTest", Precision.BF16);
             Runner r = runner(policy)) {
            BertEncoder e = assertInstanceOf(BertEncoder.class, r.runner().encoder());
            assertSame(policy, e.backend(), "one stream and one allocator for the policy and the reward");
            assertEquals(DType.F32, e.dtype(), "reward.precision fp32 (the default) on a bf16 policy backend");
            try (Reward reward = r.runner().reward(RewardSpec.parse("cosine"))) {
                assertTrue(((CosineReward) reward).onDevice());
                double[] s = reward.score(List.of(new RewardInput("a", "Say hi.", "Hi!", "Hello!"),
                        new RewardInput("a", "Say hi.", "Hello!", "Hello!")));
                assertTrue(s[0] > 0.3 && s[0] < s[1], "rewards " + s[0] + ", " + s[1]);
                assertEquals(1.0, s[1], 1e-5);
            }
            assertTrue(log().contains("engine BERT on CUDA") && log().contains("the policy's backend"), log());
        }
    }

    @Test
    @Tag("gpu")
    void cudaWithACpuPolicyOpensItsOwnDevice() {
        CudaBackend own;
        try (Runner r = runner(CpuBackend.INSTANCE, "reward.device=cuda", "reward.precision=bf16")) {
            TestDevices.cuda("RewardDeviceTest", Precision.FP32).close();   // skips (or fails) without a device
            StageRunner.preflightRewardDevice(RunConfig.defaults().withOverrides(List.of("reward.device=cuda")));
            BertEncoder e = assertInstanceOf(BertEncoder.class, r.runner().encoder());
            own = assertInstanceOf(CudaBackend.class, e.backend());
            assertEquals(DType.BF16, e.dtype());
            assertNotSame(CpuBackend.INSTANCE, e.backend());
        }
        assertThrows(IllegalStateException.class, () -> own.alloc(DType.F32, 4), "closed with the runner");
    }
}
