package dev.rlsr.trainer.run;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.trainer.train.TrainState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunDirTest {

    @TempDir
    Path tmp;

    private Path tokenizerDir() {
        Path t = tmp.resolve("tok");
        ByteLevelTokenizer.writeByteLevel(t);
        return t;
    }

    private static TrainState state(String stage, long step) {
        return new TrainState(stage, step, 0, step * 4, 7, Map.of("k", "v"));
    }

    /** A model with one optimizer step taken, so that AdamW has moments to save. */
    private static AdamW steppedOptimizer(DecoderModel m) {
        AdamW opt = new AdamW(AdamW.Config.defaults());
        for (Tensor g : m.grads().values()) {
            float[] ones = new float[Math.toIntExact(g.numel())];
            java.util.Arrays.fill(ones, 0.5f);
            CpuBackend.INSTANCE.upload(ones, g);
        }
        opt.step(m);
        return opt;
    }

    @Test
    void checkpointIsCompleteAndLatestPointsAtIt() throws Exception {
        RunDir run = RunDir.open(tmp.resolve("run"));
        assertTrue(run.latestCheckpoint().isEmpty());
        try (DecoderModel m = TinyModels.model(1); AdamW opt = steppedOptimizer(m)) {
            RunCheckpointer ck = new RunCheckpointer(run, tokenizerDir(), 2);
            ck.save("sft", state("sft", 3), m, opt);
            RunDir.Checkpoint c = run.latestCheckpoint().orElseThrow();
            assertEquals("sft", c.stage());
            assertEquals(3, c.step());
            assertEquals(state("sft", 3), c.state(), "the train state round-trips");
            assertEquals("sft-step-000003", Files.readString(run.checkpoints().resolve(RunDir.LATEST)).trim());
            for (String f : new String[]{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                    RunDir.OPTIMIZER, RunDir.TRAINER_STATE}) {
                assertTrue(Files.isRegularFile(c.dir().resolve(f)), f);
            }
            // the checkpoint is an HF model directory with the same tensors
            try (DecoderModel back = DecoderModel.load(c.dir(), CpuBackend.INSTANCE)) {
                for (var e : m.parameters().entrySet()) {
                    assertArrayEquals(CpuBackend.INSTANCE.download(e.getValue()),
                            CpuBackend.INSTANCE.download(back.parameters().get(e.getKey())), e.getKey());
                }
            }
            AdamW.State saved = RunCheckpointer.readOptimizer(c.dir().resolve(RunDir.OPTIMIZER));
            AdamW.State now = opt.state();
            assertEquals(now.step(), saved.step());
            assertEquals(now.m().keySet(), saved.m().keySet());
            for (String k : now.m().keySet()) {
                assertArrayEquals(now.m().get(k), saved.m().get(k), k);
                assertArrayEquals(now.v().get(k), saved.v().get(k), k);
            }
        }
    }

    @Test
    void failedSaveLeavesLatestUntouchedAndNoTemporaries() throws Exception {
        RunDir run = RunDir.open(tmp.resolve("run"));
        Path tok = tokenizerDir();
        try (DecoderModel m = TinyModels.model(1)) {
            new RunCheckpointer(run, tok, 3).save("rl", state("rl", 1), m, null);
            // a tokenizer directory without tokenizer.json makes the save fail after the weights were written
            Path broken = Files.createDirectories(tmp.resolve("broken-tok"));
            RunCheckpointer bad = new RunCheckpointer(run, broken, 3);
            assertThrows(RuntimeException.class, () -> bad.save("rl", state("rl", 2), m, null));
        }
        assertEquals(1, run.latestCheckpoint().orElseThrow().step(), "latest still names the complete checkpoint");
        assertFalse(Files.exists(run.checkpoints().resolve("rl-step-000002")));
        try (var s = Files.list(run.checkpoints())) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "no temporary left behind");
        }
    }

    @Test
    void crashLeftoversAreIgnoredAndRemoved() throws Exception {
        RunDir run = RunDir.open(tmp.resolve("run"));
        try (DecoderModel m = TinyModels.model(1)) {
            new RunCheckpointer(run, tokenizerDir(), 3).save("sft", state("sft", 5), m, null);
            // a crash in the middle of the next save: weights written into the temporary directory, no rename
            Path partial = run.checkpoints().resolve(".sft-step-000010.rlsr-tmp-123");
            m.save(partial);
            // a checkpoint directory that somehow lacks its trainer state is not complete either
            Path noState = run.checkpoints().resolve("sft-step-000011");
            m.save(noState);
        }
        Optional<RunDir.Checkpoint> c = run.latestCheckpoint();
        assertEquals(5, c.orElseThrow().step());
        assertEquals(1, run.listCheckpoints().size());
        run.close();
        RunDir reopened = RunDir.open(run.root());
        assertFalse(Files.exists(run.checkpoints().resolve(".sft-step-000010.rlsr-tmp-123")),
                "reopen removes temporaries");
        reopened.close();
        assertEquals(5, reopened.latestCheckpoint().orElseThrow().step());
    }

    @Test
    void danglingPointerFallsBackToNewestComplete() throws Exception {
        RunDir run = RunDir.open(tmp.resolve("run"));
        try (DecoderModel m = TinyModels.model(1)) {
            RunCheckpointer ck = new RunCheckpointer(run, tokenizerDir(), 5);
            ck.save("sft", state("sft", 1), m, null);
            ck.save("sft", state("sft", 2), m, null);
        }
        RunDir.writeAtomically(run.checkpoints().resolve(RunDir.LATEST), "sft-step-000099\n");
        assertEquals(2, run.latestCheckpoint().orElseThrow().step());
    }

    @Test
    void keepsTheNewestPerStage() {
        RunDir run = RunDir.open(tmp.resolve("run"));
        try (DecoderModel m = TinyModels.model(1)) {
            RunCheckpointer ck = new RunCheckpointer(run, tokenizerDir(), 2);
            for (int s = 1; s <= 4; s++) {
                ck.save("sft", state("sft", s), m, null);
            }
            ck.save("rl", state("rl", 1), m, null);
        }
        assertEquals(java.util.List.of(3L, 4L), run.listCheckpoints().stream().filter(c -> c.stage().equals("sft"))
                .map(RunDir.Checkpoint::step).toList());
        assertEquals("rl", run.latestCheckpoint().orElseThrow().stage());
        assertEquals(4, run.latestCheckpoint("sft").orElseThrow().step());
    }

    /** A model holding a NaN or an infinity is never written, and latest keeps naming the last good checkpoint. */
    @Test
    void nonFiniteWeightsAreNeverSaved() throws Exception {
        try (RunDir run = RunDir.open(tmp.resolve("nan-run")); DecoderModel m = TinyModels.model(1)) {
            RunCheckpointer ck = new RunCheckpointer(run, tokenizerDir(), 3);
            ck.save("sft", state("sft", 1), m, null);
            Tensor w = m.parameters().get("model.layers.0.mlp.down_proj.weight");
            float[] v = CpuBackend.INSTANCE.download(w);
            v[3] = Float.POSITIVE_INFINITY;
            CpuBackend.INSTANCE.upload(v, w);
            var e = assertThrows(dev.rlsr.trainer.train.NonFiniteException.class,
                    () -> ck.save("sft", state("sft", 2), m, null));
            assertTrue(e.getMessage().contains("'model.layers.0.mlp.down_proj.weight'"), e.getMessage());
            assertThrows(dev.rlsr.trainer.train.NonFiniteException.class,
                    () -> RunCheckpointer.saveStageModel(run, "sft", m, tokenizerDir()));
            assertEquals(1, run.latestCheckpoint().orElseThrow().step());
            assertFalse(Files.exists(run.checkpoints().resolve("sft-step-000002")));
            assertFalse(run.stageDone("sft"));
            try (var s = Files.list(run.checkpoints())) {
                assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "no temporary left");
            }
        }
    }

    @Test
    void stageModelIsPublishedWhole() {
        RunDir run = RunDir.open(tmp.resolve("run"));
        assertFalse(run.stageDone("sft"));
        try (DecoderModel m = TinyModels.model(1)) {
            RunCheckpointer.saveStageModel(run, "sft+rlsr", m, tokenizerDir());
        }
        assertTrue(run.stageDone("sft+rlsr"));
        assertTrue(Files.isRegularFile(run.stageModel("sft+rlsr").resolve("tokenizer.json")));
    }
}
