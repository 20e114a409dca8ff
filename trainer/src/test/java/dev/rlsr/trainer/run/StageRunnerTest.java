package dev.rlsr.trainer.run;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.config.RunConfig;
import dev.rlsr.trainer.data.DemoDataset;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.train.TrainListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StageRunnerTest {

    @TempDir
    Path tmp;

    private RunFailure failing(String stage, Supplier<DecoderModel> init) {
        Path modelDir = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        List<Example> train = DemoDataset.load(DemoDataset.TRAIN_RESOURCE).subList(0, 8);
        RunConfig cfg = RunConfig.defaults().withOverrides(List.of("rl.reward=rougeL"));
        try (RunDir run = RunDir.open(tmp.resolve("run" + stage));
             RunListener l = new RunListener(new MetricsLog(run.resolve(RunDir.METRICS)),
                new PrintStream(OutputStream.nullOutputStream()), true, false, null);
             Tokenizer tok = Tokenizer.load(modelDir);
             StageRunner r = new StageRunner(cfg, run, l, CpuBackend.INSTANCE, tok, modelDir, new RunReport("t"))) {
            RunFailure f = assertThrows(RunFailure.class, () -> {
                if (stage.equals("sft")) {
                    r.sft("sft", init, train, List.of());
                } else {
                    r.rl("rlsr", init, modelDir, train);
                }
            });
            assertTrue(run.latestCheckpoint().isEmpty(), "no checkpoint marked as latest");
            assertFalse(run.stageDone(stage), "no final model");
            assertTrue(r.report().phases().containsKey(stage), "the phase time is still recorded");
            return f;
        }
    }

    @Test
    void outOfMemoryNamesTheBatchSettingToLower() {
        RunFailure sft = failing("sft", () -> {
            throw new OutOfMemoryError("Java heap space");
        });
        assertEquals(RunFailure.RESOURCES, sft.exitCode());
        assertTrue(sft.getMessage().contains("out of memory during sft"), sft.getMessage());
        assertTrue(sft.getMessage().contains("--set sft.batch_size="), sft.getMessage());
        RunFailure rl = failing("rlsr", () -> {
            // what a CUDA allocation failure looks like once it is wrapped by the bindings
            throw new IllegalStateException("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)");
        });
        assertEquals(RunFailure.RESOURCES, rl.exitCode());
        assertTrue(rl.getMessage().contains("rl.micro_batch"), rl.getMessage());
    }

    @Test
    void otherErrorsPassThrough() {
        assertFalse(StageRunner.looksLikeDeviceOom(new IllegalArgumentException("learning rate must be >= 0")));
        assertTrue(StageRunner.looksLikeDeviceOom(new RuntimeException("wrapped",
                new IllegalStateException("CUBLAS_STATUS_ALLOC_FAILED"))));
    }

    @Test
    void theCpuComputesInFp32Only() {
        List<String> log = new ArrayList<>();
        assertEquals(CpuBackend.INSTANCE, StageRunner.selectBackend("cpu", "auto", log::add));
        assertEquals(CpuBackend.INSTANCE, StageRunner.selectBackend("cpu", "fp32", log::add));
        assertTrue(log.getFirst().startsWith("device: cpu"), log.getFirst());
        RunFailure bf16 = assertThrows(RunFailure.class, () -> StageRunner.selectBackend("cpu", "bf16", log::add));
        assertEquals(RunFailure.USAGE, bf16.exitCode());
        assertTrue(bf16.getMessage().contains("fp32"), bf16.getMessage());
        assertEquals(RunFailure.USAGE, assertThrows(RunFailure.class,
                () -> StageRunner.selectBackend("cpu", "fp16", log::add)).exitCode());
        assertEquals(RunFailure.USAGE, assertThrows(RunFailure.class,
                () -> StageRunner.selectBackend("tpu", "auto", log::add)).exitCode());
    }

    /** Under the CUDA emulator (how the test JVM runs): cuda opens it and says so; auto never picks it. */
    @Test
    void autoNeverPicksTheEmulatorAndCudaNamesIt() {
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.rlsr.bindings.CudaDriver.isAvailable()
                && dev.rlsr.bindings.CudaDriver.isEmulator(), "runs where the test JVM uses the CUDA emulator");
        List<String> log = new ArrayList<>();
        assertEquals(CpuBackend.INSTANCE, StageRunner.selectBackend("auto", "auto", log::add));
        assertTrue(log.getLast().contains("emulator"), log.getLast());
        try (var be = StageRunner.selectBackend("cuda", "fp32", log::add)) {
            assertEquals("cuda", be.name());
            assertEquals(dev.rlsr.engine.tensor.Precision.FP32, be.defaultPrecision());
            assertTrue(log.getLast().contains("emulator"), log.getLast());
        }
        try (var be = StageRunner.selectBackend("cuda", "auto", log::add)) {
            assertEquals(dev.rlsr.engine.tensor.Precision.BF16, be.defaultPrecision(), "auto is bf16 on cuda");
        }
    }

    /** Without a GPU or CUDA library, --device cuda exits 6 naming what is missing, before any run directory exists. */
    @Test
    void cudaWithoutAGpuExitsSixNamingWhatIsMissing(@TempDir Path dir)
            throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path runDir = dir.resolve("run");
        Process p = new ProcessBuilder(javaBin, "--enable-native-access=ALL-UNNAMED", "--add-modules",
                "jdk.incubator.vector", "-Drlsr.cuda.emulator=", "-Drlsr.lib.cuda=" + dir.resolve("no-libcuda.so"),
                "-cp", System.getProperty("java.class.path"), "dev.rlsr.trainer.cli.RlsrCli", "demo", "--device",
                "cuda", "-o", runDir.toString(), "--quiet").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "rlsr demo did not stop: " + out);
        assertEquals(RunFailure.DEVICE, p.exitValue(), out);
        assertTrue(out.contains("--device cuda") && out.contains("no-libcuda.so") && out.contains("rlsr doctor"), out);
        assertFalse(java.nio.file.Files.exists(runDir), "no run directory may be created: " + out);
    }
}
