package dev.rlsr.bench.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.bindings.CudaDriver;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The end-to-end GPU benchmarks at small shapes on the CUDA device (the emulator in CI, a GPU in the GPU check): the
 * validation passes, the plumbing writes complete records, and the properties the GPU check reports hold where they
 * are properties of the code rather than of the hardware (no driver allocation after warm-up, the logits buffer in
 * the compute dtype, every row sampled to the limit, the RLSR step's split adding up). Timings are not asserted.
 */
@Tag("gpu")
class EndToEndBenchGpuTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;
    private Path out;

    @BeforeEach
    void device() {
        if (!CudaDriver.isAvailable()) {
            String why = "no CUDA device: " + CudaDriver.unavailableReason();
            if (Boolean.getBoolean("rlsr.gpu.required")) {
                fail(why + " (-Drlsr.gpu.required=true turns this skip into a failure)");
            }
            Assumptions.abort(why + ", skipping");
        }
        out = tmp.resolve("ours.jsonl");
        System.setProperty("rlsr.bench.out", out.toString());
    }

    private Map<String, JsonNode> records() throws IOException {
        Map<String, JsonNode> m = new LinkedHashMap<>();
        for (String line : Files.readAllLines(out)) {
            JsonNode n = JSON.readTree(line);
            m.put(n.get("key").asText(), n);
        }
        return m;
    }

    private static Path firstFile(Path... candidates) {
        for (Path p : candidates) {
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        return fail("none of " + List.of(candidates) + " exists (from " + Path.of("").toAbsolutePath() + ")");
    }

    @Test
    void trainStepValidatesAndAllocatesNothingAfterWarmup() throws IOException {
        for (String precision : List.of("bf16", "fp32")) {
            int rc = TrainStepGpuBench.run(new String[]{"--model=tiny", "--precision=" + precision, "--batch=2",
                    "--seq=32", "--warmup=1", "--steps=2"});
            assertEquals(0, rc, precision + ": exit code");
            JsonNode r = records().get("train_tiny_" + precision + "_B2_T32");
            assertNotNull(r, precision + ": no record in " + records().keySet());
            assertTrue(r.get("validated").asBoolean(), r.toString());
            assertEquals(0, r.get("driver_allocs_after_warmup").asLong(), "cuMemAlloc calls in the timed steps: " + r);
            assertEquals(precision.equals("bf16") ? "BF16" : "F32", r.get("logits_dtype").asText());
            assertEquals(2L * 32 * 1024 * (precision.equals("bf16") ? 2 : 4),
                    Math.round(r.get("logits_gib").asDouble() * (1L << 30)), "logits bytes");
            assertEquals(3, r.get("losses").size(), "one loss per step (1 warm-up + 2 timed)");
            for (JsonNode l : r.get("losses")) {
                assertTrue(Double.isFinite(l.asDouble()) && l.asDouble() > 0, "loss " + l);
            }
            assertTrue(r.get("peak_alloc_bytes").asLong() > 0, r.toString());
            // the profiled step: one AdamW launch over the flat buffers, one fused LM-head loss
            assertEquals(1, profileCalls(r, "adamw_kernel"), r.get("profile").toString());
            assertEquals(1, profileCalls(r, "cross_entropy_" + precision.replace("fp32", "f32") + "_kernel"),
                    r.get("profile").toString());
        }
    }

    /** Calls of {@code op} in a result line's profile, 0 when it has no row. */
    private static int profileCalls(JsonNode r, String op) {
        assertTrue(r.has("profile") && r.get("profile").size() > 0, "no profile in " + r);
        assertTrue(r.get("profile_gpu_ms").asDouble() > 0, r.toString());
        for (JsonNode row : r.get("profile")) {
            if (row.get("op").asText().equals(op)) {
                return row.get("calls").asInt();
            }
        }
        return 0;
    }

    @Test
    void rolloutsAndRlsrStepProduceCompleteRecords() throws IOException {
        // Maven runs this in bench/ with langchain4j's jar on the class path; the GPU check runs it from the
        // repository root with .gpu/minilm/ instead
        Path minilm = tmp.resolve("minilm-tokenizer.json");
        try (InputStream in = getClass().getClassLoader().getResourceAsStream("all-minilm-l6-v2-tokenizer.json")) {
            if (in != null) {
                Files.copy(in, minilm);
            } else {
                minilm = firstFile(Path.of(".gpu", "minilm", "tokenizer.json"),
                        Path.of("..", ".gpu", "minilm", "tokenizer.json"));
            }
        }
        Path qwen = firstFile(Path.of("engine", "src", "test", "resources", "tokenizer", "qwen3", "tokenizer.json"),
                Path.of("..", "engine", "src", "test", "resources", "tokenizer", "qwen3", "tokenizer.json"))
                .getParent();
        int rc = GenerationGpuBench.run(new String[]{"--parts=a,c", "--model=tiny-151936", "--encoder=tiny",
                "--prompt-len=16", "--new=6", "--group=2", "--prompts-a=3", "--prompts-c=2", "--micro-batch=2",
                "--budget=600", "--copy-mib=4", "--tokenizer=" + qwen, "--minilm-tokenizer=" + minilm});
        assertEquals(0, rc, "exit code");
        Map<String, JsonNode> recs = records();
        JsonNode a = recs.get("gen_R6_P3_G2_Tp16_N6");
        assertNotNull(a, "no (a) record in " + recs.keySet());
        assertEquals(6 * 6, a.get("new_tokens").asLong(), "every row samples all its tokens (no stop ids)");
        assertEquals(16, a.get("prompt_len").asInt());
        assertTrue(a.get("roofline_step_ms").asDouble() > 0 && a.get("decode_step_ms").asDouble() > 0, a.toString());
        // the profiled eager call: one sampling launch per new token (6 < the 16 it asks for)
        assertEquals(6, profileCalls(a, "sampling_bf16_kernel"), a.get("profile").toString());
        JsonNode c = recs.get("rlsr_step_R4_Tp16_N6");
        assertNotNull(c, "no (c) record in " + recs.keySet());
        assertFalse(c.has("error"), c.toString());
        assertEquals(2, c.get("steps_run").asInt(), "two steps fit a 600 s budget");
        double parts = c.get("rollout_s").asDouble() + c.get("reward_s").asDouble() + c.get("update_s").asDouble();
        assertTrue(parts > 0 && parts <= c.get("step_s").asDouble(), "rollout + reward + update within the step: " + c);
        for (JsonNode len : c.get("prompt_lens")) {
            assertTrue(len.asInt() >= 16 && len.asInt() <= 18, "rendered prompt length " + len);
        }
        double reward = c.get("reward_mean").asDouble();
        assertTrue(reward >= -1 && reward <= 1, "a cosine reward: " + reward);
    }
}
