package dev.rlsr.trainer.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.trainer.TestDevices;
import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.trainer.cli.RlsrCli;
import dev.rlsr.trainer.config.ConfigException;
import dev.rlsr.trainer.config.RunConfig;
import dev.rlsr.trainer.config.TrainerConfigs;
import dev.rlsr.trainer.run.RunDir;
import dev.rlsr.trainer.run.StageRunner;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The demo's two presets: which one a run gets, that the GPU one is valid and sized as documented, and its run. */
class DemoPresetTest {

    @TempDir
    Path tmp;

    private static ModelConfig model(RunConfig c) {
        return StageRunner.demoModelConfig(c, ByteLevelTokenizer.VOCAB_SIZE);
    }

    @Test
    void thePresetFollowsDemoPresetAndTheDevice() {
        assertFalse(DemoPipeline.gpuPreset("auto", CpuBackend.INSTANCE), "auto on the CPU");
        assertFalse(DemoPipeline.gpuPreset("cpu", CpuBackend.INSTANCE));
        assertTrue(DemoPipeline.gpuPreset("gpu", CpuBackend.INSTANCE), "an explicit gpu preset is honoured anywhere");
        ConfigException e = assertThrows(ConfigException.class, () -> DemoPipeline.gpuPreset("huge",
                CpuBackend.INSTANCE));
        assertTrue(e.getMessage().contains("demo.preset") && e.getMessage().contains("huge"), e.getMessage());
        assertEquals("auto", DemoPipeline.defaults().getString("demo.preset"), "the default");
    }

    @Test
    void theGpuPresetIsValidSizedAsDocumentedAndUnderTheUsersOverrides() {
        RunConfig cpu = DemoPipeline.defaults(false), gpu = DemoPipeline.defaults(true);
        TrainerConfigs.sft(gpu);
        TrainerConfigs.rl(gpu);
        TrainerConfigs.sampling(gpu, "eval.sampling");
        long params = model(gpu).numParameters();
        // "about 25M parameters" (help text, demo-gpu.yaml, README); the CPU preset is well under a million
        assertTrue(params > 20_000_000 && params < 30_000_000, "GPU preset: " + params + " parameters");
        assertTrue(model(cpu).numParameters() < 2_000_000, "CPU preset: " + model(cpu).numParameters());
        assertEquals("runs/demo-gpu", gpu.getString("run.dir"));
        assertEquals("runs/demo", cpu.getString("run.dir"));
        // keys the GPU preset does not set keep demo.yaml's values
        assertEquals(cpu.getString("rl.reward"), gpu.getString("rl.reward"));
        assertEquals(cpu.getDouble("rl.beta"), gpu.getDouble("rl.beta"));
        // the CPU preset's gentler sft+rlsr rate and longer SFT were chosen for the CPU model: the GPU preset undoes them
        assertTrue(cpu.getDouble("demo.sft_rlsr_lr") > 0, "CPU preset: sft+rlsr has its own rate");
        assertEquals(0.0, gpu.getDouble("demo.sft_rlsr_lr"), "GPU preset: both RL stages at rl.lr");
        assertTrue(gpu.getInt("sft.epochs") < cpu.getInt("sft.epochs"), "GPU preset: SFT epochs as sized");
        // the user's overrides go on top of the preset
        RunConfig over = gpu.withOverrides(List.of("rl.steps=3", "demo.model.layers=2"));
        assertEquals(3, over.getInt("rl.steps"));
        assertEquals(2, over.getInt("demo.model.layers"));
        assertEquals(512, over.getInt("demo.model.hidden_size"));
    }

    /** {@code rlsr demo --device cuda} with the GPU preset, shrunk by overrides, on a GPU or the CUDA emulator. */
    @Test
    @Tag("gpu")
    void theDemoRunsOnTheCudaBackendWithTheGpuPreset() throws Exception {
        TestDevices.requireCuda("the GPU demo");
        try (CudaBackend be = CudaBackend.open(0, Precision.BF16)) {
            assertEquals(!CudaBackend.isEmulator(), DemoPipeline.gpuPreset("auto", be),
                    "auto picks the GPU preset on a real GPU only");
        }
        Path run = tmp.resolve("demo-gpu");
        StringWriter err = new StringWriter();
        CommandLine cl = RlsrCli.commandLine();
        cl.setErr(new PrintWriter(err));
        int code = cl.execute("demo", "-o", run.toString(), "--quiet", "--device", "cuda",
                "--set", "demo.preset=gpu", "--set", "demo.train_examples=32", "--set", "demo.eval_examples=8",
                "--set", "demo.model.hidden_size=64", "--set", "demo.model.layers=1", "--set", "demo.model.heads=2",
                "--set", "demo.model.kv_heads=1", "--set", "demo.model.intermediate_size=128",
                "--set", "demo.pretrain.epochs=1", "--set", "demo.pretrain.seq_len=64",
                "--set", "demo.pretrain.batch_size=8", "--set", "sft.epochs=1", "--set", "sft.batch_size=8",
                "--set", "rl.steps=2", "--set", "rl.prompts_per_step=2", "--set", "rl.group_size=2",
                "--set", "rl.sampling.max_new_tokens=8", "--set", "eval.sampling.max_new_tokens=8",
                "--set", "eval.bootstrap_samples=200");
        assertEquals(0, code, err.toString());
        String log = Files.readString(run.resolve(RunDir.LOG));
        assertTrue(log.contains("demo preset: gpu"), log);
        assertTrue(log.contains("device: cuda"), log);
        // a value only the GPU preset sets reached the run
        String saved = Files.readString(run.resolve(RunDir.CONFIG));
        assertEquals(5e-5, RunConfig.defaults().withText(saved, "config.yaml", false).getDouble("rl.lr"), 0.0, saved);
        JsonNode s = new ObjectMapper().readTree(run.resolve(RunDir.SUMMARY).toFile());
        for (String stage : DemoPipeline.STAGES) {
            JsonNode st = s.path("stages").path(stage);
            assertEquals(8, st.path("n").asInt(), stage + ": " + st);
            double r = st.path("reward_mean").asDouble(Double.NaN);
            assertTrue(r >= -1 && r <= 1, stage + ": reward " + r);
        }
    }
}
