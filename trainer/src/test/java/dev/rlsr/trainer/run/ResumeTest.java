package dev.rlsr.trainer.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.config.RunConfig;
import dev.rlsr.trainer.data.DemoDataset;
import dev.rlsr.trainer.data.Example;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A run killed in the middle of a stage and started again continues from its latest complete checkpoint and ends
 * with the same step count, the same metrics.jsonl (timing fields aside) and the same weights as a run that was never
 * interrupted.
 *
 * <p>"The same" is up to float rounding: the CPU backend's multithreaded reductions are not bitwise reproducible
 * from one run to the next (two uninterrupted runs already differ around 1e-8 relative), so numbers are compared to
 * 1e-5 relative; integers, step numbers, stages and keys exactly.
 */
class ResumeTest {

    @TempDir
    Path tmp;

    static final class Killed extends RuntimeException {
        Killed(long step) {
            super("simulated kill at step " + step);
        }
    }

    private static final PrintStream SILENT = new PrintStream(java.io.OutputStream.nullOutputStream());

    /** Runs one stage in {@code runDir}; with {@code killAt > 0} the run "dies" when that step is logged. */
    private void runStage(Path runDir, RunConfig cfg, Path modelDir, long killAt, String stage,
                          BiFunction<StageRunner, List<Example>, DecoderModel> body) {
        try (RunDir run = RunDir.open(runDir);
             RunListener listener = new RunListener(new MetricsLog(run.resolve(RunDir.METRICS)), SILENT, true, false,
                     null);
             Tokenizer tok = Tokenizer.load(modelDir);
             StageRunner runner = new StageRunner(cfg, run, listener, CpuBackend.INSTANCE, tok, modelDir,
                     new RunReport("t"))) {
            if (killAt > 0) {
                listener.addStepObserver((s, step, m) -> {
                    if (s.equals(stage) && step == killAt) {
                        throw new Killed(step);
                    }
                });
            }
            List<Example> train = DemoDataset.load(DemoDataset.TRAIN_RESOURCE).subList(0, 24);
            try (DecoderModel m = body.apply(runner, train)) {
                assertEquals(stage, run.latestCheckpoint().orElseThrow().stage());
            }
        }
    }

    private static List<JsonNode> withoutTiming(Path metrics) {
        List<JsonNode> lines = MetricsLog.read(metrics);
        for (JsonNode n : lines) {
            ((ObjectNode) n).remove(RunListener.TIMING_KEYS);
        }
        return lines;
    }

    private void assertSameRun(Path a, Path b, String stage, long steps) {
        List<JsonNode> ma = withoutTiming(a.resolve(RunDir.METRICS));
        List<JsonNode> mb = withoutTiming(b.resolve(RunDir.METRICS));
        assertEquals(steps, ma.size(), "uninterrupted run: one line per step");
        assertEquals(ma.size(), mb.size(), "resumed run has as many metrics lines: " + mb);
        for (int i = 0; i < ma.size(); i++) {
            JsonNode x = ma.get(i), y = mb.get(i);
            List<String> kx = new java.util.ArrayList<>(), ky = new java.util.ArrayList<>();
            x.fieldNames().forEachRemaining(kx::add);
            y.fieldNames().forEachRemaining(ky::add);
            assertEquals(kx, ky, "line " + i);
            for (String k : kx) {
                JsonNode vx = x.get(k), vy = y.get(k);
                if (vx.isFloatingPointNumber() || vy.isFloatingPointNumber()) {
                    double a1 = vx.asDouble(), b1 = vy.asDouble();
                    assertEquals(a1, b1, 1e-5 * Math.max(1, Math.abs(a1)), "line " + i + " " + k + ": " + x + " vs " + y);
                } else {
                    assertEquals(vx, vy, "line " + i + " " + k);
                }
            }
        }
        RunDir rb = RunDir.inspect(b);
        assertEquals(steps, rb.latestCheckpoint().orElseThrow().step(), "same step count");
        try (DecoderModel x = DecoderModel.load(RunDir.inspect(a).stageModel(stage), CpuBackend.INSTANCE);
             DecoderModel y = DecoderModel.load(rb.stageModel(stage), CpuBackend.INSTANCE)) {
            for (var e : x.parameters().entrySet()) {
                float[] wx = CpuBackend.INSTANCE.download(e.getValue());
                float[] wy = CpuBackend.INSTANCE.download(y.parameters().get(e.getKey()));
                assertArrayEquals(wx, wy, 1e-4f, e.getKey());
            }
        }
    }

    @Test
    void sftKilledMidEpochResumesIdentically() {
        Path modelDir = TinyModels.writeModelDir(tmp.resolve("model"), 3);
        RunConfig cfg = RunConfig.defaults().withOverrides(List.of("sft.epochs=2", "sft.batch_size=4",
                "sft.lr=3e-3", "sft.warmup_steps=2", "sft.checkpoint_every=3", "sft.max_seq_len=96",
                "run.keep_checkpoints=1"));
        BiFunction<StageRunner, List<Example>, DecoderModel> sft = (r, train) -> r.sft("sft",
                () -> StageRunner.loadModel(modelDir, CpuBackend.INSTANCE, "model"), train, List.of());
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        runStage(a, cfg, modelDir, 0, "sft", sft);
        // 24 examples / 4 = 6 steps per epoch, 12 in all; killed at step 8 (in epoch 2), after the checkpoint of 6
        assertThrows(Killed.class, () -> runStage(b, cfg, modelDir, 8, "sft", sft));
        assertEquals(6, RunDir.inspect(b).latestCheckpoint().orElseThrow().step());
        assertEquals(8, MetricsLog.read(b.resolve(RunDir.METRICS)).size(), "the killed run logged 8 steps");
        runStage(b, cfg, modelDir, 0, "sft", sft);
        assertSameRun(a, b, "sft", 12);
    }

    @Test
    void rlKilledResumesIdentically() {
        Path modelDir = TinyModels.writeModelDir(tmp.resolve("model"), 4);
        RunConfig cfg = RunConfig.defaults().withOverrides(List.of("rl.reward=rougeL+length", "eval.reward=rougeL",
                "rl.steps=5", "rl.prompts_per_step=2", "rl.group_size=3", "rl.lr=1e-3", "rl.checkpoint_every=2",
                "rl.sampling.max_new_tokens=16", "rl.micro_batch=4"));
        BiFunction<StageRunner, List<Example>, DecoderModel> rl = (r, train) -> r.rl("sft+rl",
                () -> StageRunner.loadModel(modelDir, CpuBackend.INSTANCE, "model"), modelDir, train);
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        runStage(a, cfg, modelDir, 0, "sft+rl", rl);
        assertThrows(Killed.class, () -> runStage(b, cfg, modelDir, 3, "sft+rl", rl));
        assertEquals(2, RunDir.inspect(b).latestCheckpoint().orElseThrow().step());
        runStage(b, cfg, modelDir, 0, "sft+rl", rl);
        assertSameRun(a, b, "sft+rl", 5);
        List<JsonNode> lines = MetricsLog.read(b.resolve(RunDir.METRICS));
        JsonNode first = lines.getFirst();
        assertEquals("sft+rl", first.path("stage").asText(), "the RL trainer's steps are logged under the run's stage");
        assertTrue(first.has("reward_mean") && first.has("kl") && first.has("clip_fraction"), first.toString());
        assertTrue(lines.stream().anyMatch(n -> n.path("grad_norm").asDouble() > 0),
                "the reward varies within groups, so the policy gets gradients: " + lines);
    }

    @Test
    void finishedStageIsLoadedNotRetrained() {
        Path modelDir = TinyModels.writeModelDir(tmp.resolve("model"), 5);
        RunConfig cfg = RunConfig.defaults().withOverrides(List.of("sft.epochs=1", "sft.batch_size=8",
                "sft.max_seq_len=96"));
        BiFunction<StageRunner, List<Example>, DecoderModel> sft = (r, train) -> r.sft("sft",
                () -> StageRunner.loadModel(modelDir, CpuBackend.INSTANCE, "model"), train, List.of());
        Path a = tmp.resolve("a");
        runStage(a, cfg, modelDir, 0, "sft", sft);
        int lines = MetricsLog.read(a.resolve(RunDir.METRICS)).size();
        // a second start of the finished run trains nothing: a kill at step 1 never fires
        runStage(a, cfg, modelDir, 1, "sft", sft);
        assertEquals(lines, MetricsLog.read(a.resolve(RunDir.METRICS)).size());
    }
}
