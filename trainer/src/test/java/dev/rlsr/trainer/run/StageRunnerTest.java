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
    void cudaIsRefusedAndAutoIsTheCpu() {
        assertEquals(CpuBackend.INSTANCE, StageRunner.selectBackend("auto", TrainListener.NONE));
        assertEquals(CpuBackend.INSTANCE, StageRunner.selectBackend("cpu", TrainListener.NONE));
        RunFailure f = assertThrows(RunFailure.class, () -> StageRunner.selectBackend("cuda", TrainListener.NONE));
        assertEquals(RunFailure.DEVICE, f.exitCode());
    }
}
