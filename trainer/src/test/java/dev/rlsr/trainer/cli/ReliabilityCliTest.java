package dev.rlsr.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.io.SafeTensorsWriter;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.trainer.run.MetricsLog;
import dev.rlsr.trainer.run.RunDir;
import dev.rlsr.trainer.run.RunFailure;
import dev.rlsr.trainer.run.TinyModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeMap;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The probes, through the command line: each must end with a clear error or a correct result. */
class ReliabilityCliTest {

    @TempDir
    Path tmp;

    /** Exit code, the error paragraph (picocli's err) and everything the run printed on System.err / System.out. */
    record Result(int code, String err, String console, String out) {}

    static synchronized Result run(String... args) {
        StringWriter err = new StringWriter();
        ByteArrayOutputStream console = new ByteArrayOutputStream(), out = new ByteArrayOutputStream();
        PrintStream oldErr = System.err, oldOut = System.out;
        int code;
        try {
            System.setErr(new PrintStream(console, true, StandardCharsets.UTF_8));
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            CommandLine cl = RlsrCli.commandLine();
            cl.setOut(new PrintWriter(new StringWriter()));
            cl.setErr(new PrintWriter(err));
            code = cl.execute(args);
        } finally {
            System.setErr(oldErr);
            System.setOut(oldOut);
        }
        return new Result(code, err.toString(), console.toString(StandardCharsets.UTF_8),
                out.toString(StandardCharsets.UTF_8));
    }

    private static final String[] SMALL = {"--quiet", "--skip-eval", "--set", "data.max_train_examples=16",
            "--set", "sft.batch_size=8", "--set", "sft.max_seq_len=96"};

    private static String[] with(String[] tail, String... head) {
        List<String> a = new ArrayList<>(Arrays.asList(head));
        a.addAll(Arrays.asList(tail));
        return a.toArray(String[]::new);
    }

    private static void assertExit(Result r, int code, String... fragments) {
        assertEquals(code, r.code(), "exit code; error:\n" + r.err() + "\nconsole:\n" + r.console());
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' missing from:\n" + r.err() + "\nconsole:\n" + r.console());
        }
    }

    // ------------------------------------------------------------------ 1: non-finite values

    /** A diverging run stops at the step whose loss is NaN, saves nothing non-finite, and keeps the latest. */
    @Test
    void divergingSftStopsWithItsOwnExitCode() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path runDir = tmp.resolve("run");
        Result r = run(with(SMALL, "sft", "-m", model.toString(), "-d", "demo", "-o", runDir.toString(),
                "--set", "sft.lr=1e30", "--set", "sft.max_grad_norm=0", "--set", "sft.epochs=2",
                "--set", "sft.checkpoint_every=1"));
        assertExit(r, RunFailure.DIVERGED, "sft step 2", "is not a finite number", "sft-step-000001");
        assertFalse(Files.exists(runDir.resolve("models/sft")), "no final model of a diverged stage");
        RunDir.Checkpoint latest = RunDir.inspect(runDir).latestCheckpoint().orElseThrow();
        assertEquals(1, latest.step());
        // a finite checkpoint: the loader refuses non-finite weights, so loading it proves it
        DecoderModel.load(latest.dir(), CpuBackend.INSTANCE).close();
        assertEquals(1, MetricsLog.read(runDir.resolve(RunDir.METRICS)).size(), "the diverged step is not logged");
        // --quiet draws no progress bar, not even when the run fails
        assertFalse(Pattern.compile("\\[[#> ]{24}\\]").matcher(r.console()).find(), r.console());
    }

    /** A learning rate beyond fp32 is a config error, reported before the run directory exists. */
    @Test
    void aLearningRateBeyondFp32IsAConfigError() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path runDir = tmp.resolve("run");
        Result r = run(with(SMALL, "sft", "-m", model.toString(), "-d", "demo", "-o", runDir.toString(),
                "--set", "sft.lr=1e39"));
        assertExit(r, RunFailure.USAGE, "sft", "3.4e38");
        assertFalse(Files.exists(runDir));
    }

    /** One NaN weight in an input model: named at load (file and tensor), exit 4. */
    @Test
    void aNanWeightInTheInputModelIsNamedAtLoad() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path file = model.resolve("model.safetensors");
        TreeMap<String, float[]> values = new TreeMap<>();
        SafeTensorsWriter w = new SafeTensorsWriter();
        try (SafeTensors st = SafeTensors.open(file)) {
            for (String n : st.names()) {
                float[] v = st.floats(n);
                if (n.equals("model.norm.weight")) {
                    v[0] = Float.NaN;
                }
                values.put(n, v);
                w.putF32(n, st.info(n).shape(), v);
            }
        }
        w.write(file);
        Result r = run("generate", "-m", model.toString(), "--quiet", "--max-new-tokens", "3", "hello");
        assertExit(r, RunFailure.MODEL, "model.safetensors", "'model.norm.weight' holds NaN");
        assertFalse(r.err().contains("no finite maximum"), r.err());
    }

    // ------------------------------------------------------------------ 3: existing folders

    @Test
    void aFolderWithTheUsersConfigIsNotWrittenInto() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path project = Files.createDirectories(tmp.resolve("project"));
        String mine = "# my commented config\nsft:\n  epochs: 1   # one is enough\n";
        Files.writeString(project.resolve("config.yaml"), mine);
        Result r = run(with(SMALL, "sft", "-c", project.resolve("config.yaml").toString(), "-m", model.toString(),
                "-d", "demo", "-o", project.toString()));
        assertExit(r, RunFailure.USAGE, "not an rlsr run directory");
        assertEquals(mine, Files.readString(project.resolve("config.yaml")));
        try (var s = Files.list(project)) {
            assertEquals(1, s.count(), "nothing was added");
        }
    }

    // ------------------------------------------------------------------ 4: eval with several models

    /** Each model is evaluated with its own chat template: paired numbers equal the model's numbers alone. */
    @Test
    void evalUsesEachModelsOwnTokenizerAndTemplate() throws Exception {
        Path a = TinyModels.writeModelDir(tmp.resolve("a"), 1);
        Path b = TinyModels.writeModelDir(tmp.resolve("b"), 2);
        // b: a base model without a chat template (plain format), same vocabulary
        ObjectMapper json = new ObjectMapper();
        ObjectNode tc = (ObjectNode) json.readTree(b.resolve("tokenizer_config.json").toFile());
        tc.remove("chat_template");
        json.writeValue(b.resolve("tokenizer_config.json").toFile(), tc);
        assertPairedEvalScoresAsAlone(a, b, "b");
    }

    /**
     * {@code eval -m a -m b}, then {@code eval} of each of {@code alone} by itself: eval loss, reward, ROUGE-L and
     * response length of each are the same to the last bit paired and alone.
     */
    private void assertPairedEvalScoresAsAlone(Path a, Path b, String... alone) throws Exception {
        String[] eval = {"--quiet", "-d", "demo", "--set", "eval.max_examples=4", "--set", "eval.reward=rougeL",
                "--set", "eval.sampling.max_new_tokens=8", "--set", "eval.bootstrap_samples=100"};
        Result both = run(with(eval, "eval", "-m", a.toString(), "-m", b.toString(), "-o",
                tmp.resolve("both").toString()));
        assertEquals(0, both.code(), both.err() + both.console());
        ObjectMapper json = new ObjectMapper();
        for (String model : alone) {
            Path dir = tmp.resolve("alone-" + model);
            Result r = run(with(eval, "eval", "-m", tmp.resolve(model).toString(), "-o", dir.toString()));
            assertEquals(0, r.code(), r.err() + r.console());
            JsonNode paired = json.readTree(tmp.resolve("both/summary.json").toFile()).path("stages").path(model);
            JsonNode single = json.readTree(dir.resolve("summary.json").toFile()).path("stages").path(model);
            for (String k : new String[]{"eval_loss", "reward_mean", "rougeL", "response_tokens"}) {
                assertTrue(single.path(k).isNumber(), model + " " + k + ": " + single);
                assertEquals(single.path(k).asDouble(), paired.path(k).asDouble(), 0.0,
                        model + " " + k + ": paired " + paired + " alone " + single);
            }
        }
    }

    /**
     * Two models whose vocabularies differ: B's special tokens sit at other ids (300-302 of 303 rows, A's at 256-258 of
     * 259). Evaluated together, each is scored exactly as when evaluated alone, so neither was tokenized, templated or
     * stopped with the other's tokenizer.
     */
    @Test
    void evalOfModelsWithDifferentVocabulariesScoresEachAsAlone() throws Exception {
        Path a = TinyModels.writeModelDir(tmp.resolve("a"), 1);
        Path b = tmp.resolve("b");
        int shift = 44;
        try (DecoderModel m = DecoderModel.init(ModelConfig.of("qwen3", ByteLevelTokenizer.VOCAB_SIZE + shift, 32, 64,
                1, 2, 1, 16, true), 2, CpuBackend.INSTANCE)) {
            m.save(b);
        }
        ByteLevelTokenizer.writeByteLevel(b);
        ObjectMapper json = new ObjectMapper();
        ObjectNode tj = (ObjectNode) json.readTree(b.resolve("tokenizer.json").toFile());
        for (JsonNode t : tj.path("added_tokens")) {
            ((ObjectNode) t).put("id", t.path("id").asInt() + shift);
        }
        json.writeValue(b.resolve("tokenizer.json").toFile(), tj);
        ObjectNode tc = (ObjectNode) json.readTree(b.resolve("tokenizer_config.json").toFile());
        ObjectNode decoder = json.createObjectNode();
        tc.path("added_tokens_decoder").properties().forEach(e ->
                decoder.set(Integer.toString(Integer.parseInt(e.getKey()) + shift), e.getValue()));
        tc.set("added_tokens_decoder", decoder);
        json.writeValue(b.resolve("tokenizer_config.json").toFile(), tc);
        assertPairedEvalScoresAsAlone(a, b, "a", "b");
    }

    // ------------------------------------------------------------------ 6 and 7: checks before anything is created

    @Test
    void anAbsurdLayerCountFailsBeforeTheRunDirectoryExists() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(model.resolve("config.json").toFile());
        cfg.put("num_hidden_layers", 1_000_000_000);
        json.writeValue(model.resolve("config.json").toFile(), cfg);
        Path runDir = tmp.resolve("run");
        Result r = run(with(SMALL, "sft", "-m", model.toString(), "-d", "demo", "-o", runDir.toString()));
        assertExit(r, RunFailure.MODEL, "num_hidden_layers is 1000000000", "config.json");
        assertFalse(Files.exists(runDir), "no run directory for a model that cannot load");
        Result g = run("generate", "-m", model.toString(), "--quiet", "hello");
        assertExit(g, RunFailure.MODEL, "num_hidden_layers is 1000000000");
    }

    @Test
    void aTokenizerLargerThanTheModelFailsEarlyNamingBothFiles() throws Exception {
        Path model = tmp.resolve("small-vocab");
        try (DecoderModel m = DecoderModel.init(ModelConfig.of("qwen3", 200, 32, 64, 1, 2, 1, 16, true), 1,
                CpuBackend.INSTANCE)) {
            m.save(model);
        }
        ByteLevelTokenizer.writeByteLevel(model); // 259 ids, the embedding has 200 rows
        Path runDir = tmp.resolve("run");
        Result r = run(with(SMALL, "sft", "-m", model.toString(), "-d", "demo", "-o", runDir.toString()));
        assertExit(r, RunFailure.MODEL, "tokenizer.json", "config.json", "vocab_size = 200", "up to 258");
        assertFalse(Files.exists(runDir));
    }

    // ------------------------------------------------------------------ 8: greedy RL

    @Test
    void greedyRolloutsAreRefusedBeforeTheRunDirectoryExists() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path runDir = tmp.resolve("run");
        Result r = run(with(SMALL, "rl", "-m", model.toString(), "-d", "demo", "-o", runDir.toString(),
                "--set", "rl.sampling.temperature=0"));
        assertExit(r, RunFailure.USAGE, "rl.sampling.temperature", "> 0");
        assertFalse(Files.exists(runDir));
        Result p = run(with(SMALL, "rl", "-m", model.toString(), "-d", "demo", "-o", runDir.toString(),
                "--set", "rl.sampling.top_p=0"));
        assertExit(p, RunFailure.USAGE, "rl.sampling.top_p");
        assertFalse(Files.exists(runDir));
    }

    // ------------------------------------------------------------------ 9: skipped lines are reported

    @Test
    void skippedLinesAreLoggedAndCounted() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        List<String> lines = new ArrayList<>();
        for (int i = 1; i <= 12; i++) {
            lines.add(i == 3 || i == 7 ? "{\"prompt\": \"broken" : "{\"prompt\": \"q" + i + "\", \"response\": \"a" + i + "\"}");
        }
        Path data = tmp.resolve("train.jsonl");
        Files.write(data, lines);
        Path runDir = tmp.resolve("run");
        Result r = run(with(SMALL, "sft", "-m", model.toString(), "-d", data.toString(), "-o", runDir.toString(),
                "--set", "data.on_bad_line=skip", "--set", "data.eval_fraction=0"));
        assertEquals(0, r.code(), r.err() + r.console());
        assertTrue(r.console().contains("skipped 2 malformed lines") && r.console().contains("lines 3, 7"),
                r.console());
        assertTrue(Files.readString(runDir.resolve(RunDir.LOG)).contains("lines 3, 7"));
        JsonNode s = new ObjectMapper().readTree(runDir.resolve(RunDir.SUMMARY).toFile());
        assertEquals(2, s.path("data").path("skipped_lines").asInt(), s.toString());
        assertEquals("[3,7]", s.path("data").path("skipped_by_file").path(data.toString()).path("first_lines")
                .toString(), s.toString());
    }

    // ------------------------------------------------------------------ 6: out-of-memory advice fits the command

    @Test
    void outOfMemoryAdviceFitsTheCommand() {
        String gen = RlsrCli.outOfMemoryAdvice(new String[]{"generate", "-m", "x", "hi"});
        assertFalse(gen.contains("checkpoint"), gen);
        assertTrue(gen.contains("--max-new-tokens"), gen);
        String ev = RlsrCli.outOfMemoryAdvice(new String[]{"--quiet", "eval", "-m", "x"});
        assertFalse(ev.contains("checkpoint"), ev);
        assertTrue(ev.contains("eval.batch_size"), ev);
        String sft = RlsrCli.outOfMemoryAdvice(new String[]{"sft"});
        assertTrue(sft.contains("checkpoint is kept"), sft);
    }
}
