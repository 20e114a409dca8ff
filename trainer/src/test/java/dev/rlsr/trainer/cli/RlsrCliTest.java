package dev.rlsr.trainer.cli;

import dev.rlsr.trainer.run.RunDir;
import dev.rlsr.trainer.run.RunFailure;
import dev.rlsr.trainer.run.TinyModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RlsrCliTest {

    @TempDir
    Path tmp;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = RlsrCli.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void topLevelHelpListsEveryCommand() {
        Result r = run("--help");
        assertEquals(0, r.code());
        for (String c : new String[]{"demo", "sft", "rl", "pipeline", "eval", "generate", "config"}) {
            assertTrue(r.out().contains("\n  " + c + " "), c + " missing from:\n" + r.out());
        }
        assertTrue(r.out().contains("Exit codes"), r.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {"demo", "sft", "rl", "pipeline", "eval", "generate", "config"})
    void everyCommandHasHelp(String command) {
        Result r = run(command, "--help");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("Usage: rlsr " + command), r.out());
        assertTrue(r.err().isEmpty(), "help prints no warning: " + r.err());
        if (!command.equals("config")) {
            for (String o : new String[]{"--config", "--set", "--device", "--quiet"}) {
                assertTrue(r.out().contains(o), command + " lacks " + o);
            }
        }
        Result viaHelp = run("help", command);
        assertEquals(0, viaHelp.code());
        assertEquals(r.out(), viaHelp.out());
    }

    private static void assertOneParagraph(Result r, int code, String... fragments) {
        assertEquals(code, r.code(), "exit code; stderr:\n" + r.err());
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' missing from:\n" + r.err());
        }
        assertFalse(r.err().contains("\tat "), "no stack trace without --verbose:\n" + r.err());
    }

    @Test
    void unknownConfigKeyIsNamed() {
        Result r = run("sft", "-o", tmp.resolve("run").toString(), "--set", "sft.epocs=2");
        assertOneParagraph(r, RunFailure.USAGE, "config error", "unknown key 'sft.epocs'", "did you mean 'sft.epochs'");
    }

    @Test
    void badConfigValueIsNamed() throws Exception {
        Path cfg = tmp.resolve("c.yaml");
        Files.writeString(cfg, "rl:\n  group_size: many\n");
        Result r = run("rl", "-c", cfg.toString(), "-o", tmp.resolve("run").toString());
        assertOneParagraph(r, RunFailure.USAGE, "rl.group_size: bad value 'many'", cfg.toString());
    }

    @Test
    void missingModelDirectory() {
        Path missing = tmp.resolve("no-such-model");
        Result r = run("sft", "-m", missing.toString(), "-d", "demo", "-o", tmp.resolve("run").toString(),
                "--skip-eval");
        assertOneParagraph(r, RunFailure.MODEL, missing.toString(), "does not exist");
    }

    @Test
    void incompleteModelDirectory() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("half"));
        Files.writeString(dir.resolve("config.json"), "{}");
        Result r = run("rl", "-m", dir.toString(), "-d", "demo", "-o", tmp.resolve("run").toString());
        assertOneParagraph(r, RunFailure.MODEL, "model.safetensors", "tokenizer.json", "missing");
    }

    @Test
    void unreadableModelConfig() throws Exception {
        Path dir = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"gpt2\"}");
        Result r = run("eval", "-m", dir.toString(), "-d", "demo", "-o", tmp.resolve("run").toString());
        assertOneParagraph(r, RunFailure.MODEL, "cannot load the model", dir.toString());
    }

    @Test
    void wrongDatasetFormat() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path data = tmp.resolve("bad.jsonl");
        Files.writeString(data, "{\"question\": \"hi\", \"answer\": \"there\"}\n");
        Path runDir = tmp.resolve("run");
        Result r = run("sft", "-m", model.toString(), "-d", data.toString(), "-o", runDir.toString(),
                "--skip-eval");
        assertOneParagraph(r, RunFailure.DATA, "data error", "bad.jsonl:1");
        assertTrue(RunDir.inspect(runDir).latestCheckpoint().isEmpty(), "nothing marked as latest");
        Result missing = run("sft", "-m", model.toString(), "-d", tmp.resolve("none.jsonl").toString(), "-o",
                runDir.toString());
        assertOneParagraph(missing, RunFailure.DATA, "none.jsonl does not exist");
    }

    @Test
    void noDataGiven() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Result r = run("sft", "-m", model.toString(), "-o", tmp.resolve("run").toString());
        assertOneParagraph(r, RunFailure.USAGE, "data.train");
    }

    /** Devices and precisions a run cannot have are refused before anything is created (no GPU: StageRunnerTest). */
    @Test
    void impossibleDevicesAndPrecisionsAreRefused() {
        Result bad = run("demo", "--device", "tpu", "-o", tmp.resolve("run").toString());
        assertOneParagraph(bad, RunFailure.USAGE, "run.device");
        Result bf16 = run("demo", "--device", "cpu", "--precision", "bf16", "-o", tmp.resolve("run").toString());
        assertOneParagraph(bf16, RunFailure.USAGE, "fp32", "--device cuda");
        assertFalse(java.nio.file.Files.exists(tmp.resolve("run")), "no run directory for a refused device");
    }

    @Test
    void verbosePrintsTheStackTrace() {
        Result r = run("sft", "-m", tmp.resolve("none").toString(), "-d", "demo", "-o", tmp.resolve("run").toString(),
                "--verbose");
        assertEquals(RunFailure.MODEL, r.code());
        assertTrue(r.err().contains("\tat "), r.err());
    }

    private static final String[] TINY = {"--quiet", "--set", "data.max_train_examples=16", "--set",
            "eval.max_examples=4", "--set", "eval.reward=rougeL", "--set", "eval.sampling.max_new_tokens=8",
            "--set", "eval.bootstrap_samples=100", "--set", "sft.batch_size=8", "--set", "sft.max_seq_len=96",
            "--set", "rl.reward=rougeL+length", "--set", "rl.steps=2", "--set", "rl.prompts_per_step=2", "--set",
            "rl.group_size=2", "--set", "rl.sampling.max_new_tokens=8"};

    /** {@code head} followed by the settings of a run that takes seconds on a CPU. */
    static String[] args(String... head) {
        String[] a = java.util.Arrays.copyOf(head, head.length + TINY.length);
        System.arraycopy(TINY, 0, a, head.length, TINY.length);
        return a;
    }

    @Test
    void pipelineRunsBothStagesAndResumesAsNoOp() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path runDir = tmp.resolve("run");
        Result r = run(args("pipeline", "-m", model.toString(), "-d", "demo", "-o", runDir.toString()));
        assertEquals(0, r.code(), r.err());
        RunDir rd = RunDir.inspect(runDir);
        assertTrue(rd.stageDone("sft") && rd.stageDone("sft+rl"), "both final models written");
        var summary = new com.fasterxml.jackson.databind.ObjectMapper().readTree(rd.resolve(RunDir.SUMMARY).toFile());
        for (String st : new String[]{"start", "sft", "sft+rl"}) {
            assertTrue(summary.path("stages").path(st).path("reward_mean").isNumber(), st + ": " + summary);
        }
        assertTrue(summary.path("deltas").has("sft+rl - sft"), summary.toString());
        long lines = Files.readAllLines(rd.resolve(RunDir.METRICS)).size();
        Result again = run(args("pipeline", "-m", model.toString(), "-d", "demo", "-o", runDir.toString()));
        assertEquals(0, again.code(), again.err());
        assertEquals(lines, Files.readAllLines(rd.resolve(RunDir.METRICS)).size(), "a finished run trains nothing");
    }

    @Test
    void evalComparesModels() throws Exception {
        Path a = TinyModels.writeModelDir(tmp.resolve("a"), 1), b = TinyModels.writeModelDir(tmp.resolve("b"), 2);
        Path runDir = tmp.resolve("run");
        Result r = run(args("eval", "-m", a.toString(), "-m", b.toString(), "-d", "demo", "-o", runDir.toString()));
        assertEquals(0, r.code(), r.err());
        var summary = new com.fasterxml.jackson.databind.ObjectMapper().readTree(runDir.resolve(RunDir.SUMMARY)
                .toFile());
        assertEquals(4, summary.path("stages").path("a").path("n").asInt(), summary.toString());
        assertTrue(summary.path("deltas").has("b - a"), summary.toString());
        Result none = run("eval", "-m", a.toString(), "-o", runDir.toString());
        assertOneParagraph(none, RunFailure.USAGE, "data.eval");
    }

    @Test
    void generatePrintsAResponsePerPrompt() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream old = System.out;
        try {
            System.setOut(new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8));
            Result r = run("generate", "-m", model.toString(), "--max-new-tokens", "5", "--quiet", "one", "two");
            assertEquals(0, r.code(), r.err());
        } finally {
            System.setOut(old);
        }
        String out = bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(out.contains("### one") && out.contains("### two"), out);
    }

    @Test
    void usageErrorsExitWithTwo() {
        Result r = run("sft", "--no-such-option");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--no-such-option"), r.err());
    }
}
