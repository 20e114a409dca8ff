package dev.rlsr.trainer.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.trainer.cli.RlsrCli;
import dev.rlsr.trainer.run.RunDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two runs of the same short demo (pre-training, SFT, RLSR with the ONNX reward, SFT+RLSR, evaluation) in fresh JVMs
 * with the same seed and thread count save byte-identical weights and report the same evaluation. The second JVM
 * stops the JIT at C1 (the Vector API then never runs as C2 intrinsics), so the check also covers "the same bits
 * before and after JIT compilation" on the whole training path, not just on the kernels.
 */
class ReproducibleDemoTest {

    @TempDir
    Path tmp;

    private static void demo(Path run, String... jvmFlags) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "--add-modules",
                "jdk.incubator.vector", "-Drlsr.threads=2"));
        cmd.addAll(List.of(jvmFlags));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), RlsrCli.class.getName(), "demo", "-o",
                run.toString(), "--quiet",
                "--set", "demo.train_examples=64", "--set", "demo.eval_examples=16",
                "--set", "demo.model.hidden_size=32", "--set", "demo.model.layers=2", "--set", "demo.model.heads=2",
                "--set", "demo.model.kv_heads=1", "--set", "demo.model.intermediate_size=64",
                "--set", "demo.pretrain.epochs=1", "--set", "demo.pretrain.seq_len=64", "--set", "sft.batch_size=16",
                "--set", "rl.steps=3", "--set", "rl.prompts_per_step=2", "--set", "rl.group_size=4",
                "--set", "rl.sampling.max_new_tokens=16", "--set", "eval.sampling.max_new_tokens=16",
                "--set", "eval.bootstrap_samples=200"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(15, TimeUnit.MINUTES), "the demo did not finish");
        assertEquals(0, p.exitValue(), "the demo failed:\n" + out);
    }

    @Test
    void twoRunsSaveTheSameBytes() throws Exception {
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        demo(a);
        demo(b, "-XX:TieredStopAtLevel=1");
        for (String stage : List.of("pretrain", "sft", "rlsr", "sft+rlsr")) {
            Path f = Path.of("models", stage, "model.safetensors");
            assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)),
                    "the weights of " + stage + " differ between the two runs");
        }
        ObjectMapper json = new ObjectMapper();
        JsonNode sa = json.readTree(a.resolve(RunDir.SUMMARY).toFile()), sb = json.readTree(b.resolve(RunDir.SUMMARY)
                .toFile());
        // everything but the timings
        assertEquals(sa.path("stages").toString().replaceAll("\"eval_s\":[^,}]*", ""),
                sb.path("stages").toString().replaceAll("\"eval_s\":[^,}]*", ""));
        assertEquals(sa.path("deltas"), sb.path("deltas"));
        for (String stage : DemoPipeline.STAGES) {
            Path f = Path.of(RunDir.EVAL, stage + ".jsonl");
            assertEquals(Files.readString(a.resolve(f)), Files.readString(b.resolve(f)), stage + " responses differ");
        }
    }
}
