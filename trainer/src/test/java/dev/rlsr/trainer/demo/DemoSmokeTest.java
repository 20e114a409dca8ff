package dev.rlsr.trainer.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.trainer.cli.RlsrCli;
import dev.rlsr.trainer.run.RunDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import javax.imageio.ImageIO;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code rlsr demo} end to end with a tiny budget (a few steps of each stage on a few examples): checks the run
 * directory and the structure of summary.json, not the numbers (those need the full budget).
 */
class DemoSmokeTest {

    @TempDir
    Path tmp;

    @Test
    void tinyDemoWritesTheWholeRunDirectory() throws Exception {
        Path run = tmp.resolve("demo");
        StringWriter err = new StringWriter();
        CommandLine cl = RlsrCli.commandLine();
        cl.setErr(new PrintWriter(err));
        int code = cl.execute("demo", "-o", run.toString(), "--quiet",
                "--set", "demo.train_examples=48", "--set", "demo.eval_examples=12",
                "--set", "demo.model.hidden_size=32", "--set", "demo.model.layers=1", "--set", "demo.model.heads=2",
                "--set", "demo.model.kv_heads=1", "--set", "demo.model.intermediate_size=64",
                "--set", "demo.pretrain.epochs=1", "--set", "demo.pretrain.seq_len=64",
                "--set", "sft.batch_size=16", "--set", "rl.steps=2", "--set", "rl.prompts_per_step=2",
                "--set", "rl.group_size=2", "--set", "rl.sampling.max_new_tokens=12",
                "--set", "eval.sampling.max_new_tokens=12", "--set", "eval.bootstrap_samples=200");
        assertEquals(0, code, err.toString());

        JsonNode s = new ObjectMapper().readTree(run.resolve(RunDir.SUMMARY).toFile());
        for (String stage : DemoPipeline.STAGES) {
            JsonNode st = s.path("stages").path(stage);
            assertTrue(st.path("reward_mean").isNumber(), stage + ": " + st);
            assertTrue(st.path("rougeL").isNumber(), stage + ": " + st);
            JsonNode ci = st.path("reward_ci95");
            assertTrue(ci.isArray() && ci.size() == 2 && ci.get(0).isNumber() && ci.get(1).isNumber(), stage + ": " + ci);
            assertTrue(ci.get(0).asDouble() <= st.path("reward_mean").asDouble()
                    && st.path("reward_mean").asDouble() <= ci.get(1).asDouble(), stage + ": " + st);
            assertEquals(12, st.path("n").asInt());
            // the judge: every bundled example has a checkable answer
            double acc = st.path("judge_accuracy").asDouble(-1);
            assertTrue(acc >= 0 && acc <= 1, stage + ": " + st);
            assertEquals(12, st.path("judge_n").asInt());
            assertTrue(st.path("judge_ci95").isArray() && st.path("judge_ci95").size() == 2, stage + ": " + st);
            assertTrue(Files.isRegularFile(run.resolve(RunDir.EVAL).resolve(stage + ".jsonl")), stage);
        }
        for (String d : new String[]{"sft+rlsr - sft", "rlsr - base", "rlsr - sft"}) {
            JsonNode dd = s.path("deltas").path(d);
            assertTrue(dd.path("mean").isNumber(), d + ": " + dd);
            assertTrue(dd.path("ci95").isArray() && dd.path("ci95").size() == 2, d + ": " + dd);
            assertTrue(dd.path("judge").path("mean").isNumber(), d + ": " + dd);
        }
        for (String p : new String[]{"pretrain", "sft", "rlsr", "sft+rlsr", "eval base"}) {
            assertTrue(s.path("phases_s").path(p).isNumber(), p + " time: " + s.path("phases_s"));
        }
        for (String m : new String[]{"pretrain", "sft", "rlsr", "sft+rlsr"}) {
            assertTrue(Files.isRegularFile(run.resolve("models").resolve(m).resolve("model.safetensors")), m);
            assertTrue(Files.isRegularFile(run.resolve("models").resolve(m).resolve("tokenizer.json")), m);
        }
        assertTrue(Files.readString(run.resolve(RunDir.REPORT)).contains("sft+rlsr - sft"));
        assertTrue(Files.size(run.resolve(RunDir.METRICS)) > 0);
        assertTrue(Files.isRegularFile(run.resolve(RunDir.CONFIG)));
        assertTrue(RunDir.inspect(run).latestCheckpoint().isPresent());
        for (String png : new String[]{"pretrain.png", "sft.png", "rlsr.png", "sft+rlsr.png", "eval_reward.png"}) {
            assertNotNull(ImageIO.read(run.resolve(RunDir.PLOTS).resolve(png).toFile()), png + " is a readable PNG");
        }
    }
}
