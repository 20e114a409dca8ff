package dev.rlsr.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.trainer.TestDevices;
import dev.rlsr.trainer.run.RunDir;
import dev.rlsr.trainer.run.RunFailure;
import dev.rlsr.trainer.run.TinyModels;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code run.profile_step}: on the CUDA backend (a GPU, or the CUDA emulator in CI) the chosen optimizer step of each
 * training stage is profiled into {@code profile/<stage>_step<N>.txt} and summarised in the log, without losing the
 * step's metrics; on the CPU the key is ignored with a log line; a negative step is a usage error.
 */
class ProfileStepCliTest {
    @TempDir
    Path tmp;

    private static RlsrCliTest.Result pipeline(Path model, Path runDir, String device) {
        return RlsrCliTest.run(RlsrCliTest.args("pipeline", "-m", model.toString(), "-d", "demo", "-o",
                runDir.toString(), "--device", device, "--set", "run.profile_step=2"));
    }

    @Test
    @Tag("gpu")
    void theChosenStepOfEachStageIsProfiledOnTheGpu() throws Exception {
        TestDevices.requireCuda("ProfileStepCliTest");
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path runDir = tmp.resolve("run");
        RlsrCliTest.Result r = pipeline(model, runDir, "cuda");
        assertEquals(0, r.code(), r.err());
        String log = Files.readString(runDir.resolve(RunDir.LOG));
        for (String stage : List.of("sft", "sft+rl")) {
            Path table = runDir.resolve("profile").resolve(stage + "_step2.txt");
            assertTrue(Files.isRegularFile(table), stage + ": no " + table + "; log:\n" + log);
            String t = Files.readString(table);
            assertTrue(t.contains("stage " + stage + ", optimizer step 2"), t);
            // one optimizer step: one AdamW launch over the flat parameter buffer
            assertTrue(t.lines().anyMatch(l -> l.matches("\\s+1 .* adamw_kernel")), stage + ":\n" + t);
            assertTrue(t.contains("gemm "), t);
            assertTrue(log.contains("profile of " + stage + " step 2: "), log);
        }
        // the rollout's decode steps: replays of the recorded step, one graph launch per new token after the first
        String rl = Files.readString(runDir.resolve("profile").resolve("sft+rl_step2.txt"));
        assertTrue(rl.contains("graph launch") || rl.contains("sampling_"), rl);
        // only step 2 of each stage, and the profiled step kept its metrics line
        try (var files = Files.list(runDir.resolve("profile"))) {
            assertEquals(2, files.count());
        }
        ObjectMapper json = new ObjectMapper();
        long sftStep2 = Files.readAllLines(runDir.resolve(RunDir.METRICS)).stream().map(l -> {
            try {
                return json.readTree(l);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }).filter(n -> "sft".equals(n.path("stage").asText()) && n.path("step").asInt() == 2).count();
        assertEquals(1, sftStep2, "sft step 2 in metrics.jsonl");
    }

    @Test
    void onTheCpuTheKeyIsIgnoredWithALogLine() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path runDir = tmp.resolve("run");
        RlsrCliTest.Result r = pipeline(model, runDir, "cpu");
        assertEquals(0, r.code(), r.err());
        String log = Files.readString(runDir.resolve(RunDir.LOG));
        assertTrue(log.contains("run.profile_step = 2 is ignored"), log);
        assertFalse(Files.exists(runDir.resolve("profile")));
    }

    @Test
    void aNegativeStepIsAUsageError() {
        RlsrCliTest.Result r = RlsrCliTest.run("sft", "-d", "demo", "-o", tmp.resolve("run").toString(), "--set",
                "run.profile_step=-1");
        assertEquals(RunFailure.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("run.profile_step"), r.err());
        assertFalse(Files.exists(tmp.resolve("run")));
    }
}
