package dev.rlsr.engine.model;

import dev.rlsr.kernels.DType;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicContainer.dynamicContainer;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

/**
 * Parity with Hugging Face transformers on every fixture case folder (test resources {@code fixtures/}, or the
 * folder in {@code RLSR_FIXTURES}): logits, SFT loss and every gradient, both GRPO losses and their gradients,
 * left padding, greedy decoding through the KV cache, cache-vs-full logits, and a save/load round trip.
 * Golden values were produced by transformers (see the fixtures README); nothing here comes from this engine.
 */
class HfParityTest {
    static final double LOGITS_TOL = 1e-4;
    static final double LOSS_TOL = 1e-5;
    static final double GRAD_TOL = 1e-3;
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path fixturesRoot() {
        String env = System.getenv("RLSR_FIXTURES");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        URL url = HfParityTest.class.getClassLoader().getResource("fixtures");
        if (url == null) {
            throw new IllegalStateException("no fixtures folder in test resources and RLSR_FIXTURES is unset");
        }
        try {
            return Path.of(url.toURI());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static List<Path> cases() {
        try (Stream<Path> s = Files.list(fixturesRoot())) {
            return s.filter(p -> Files.isRegularFile(p.resolve("config.json"))
                    && Files.isRegularFile(p.resolve("expected.safetensors"))
                    && !dev.rlsr.engine.io.CheckpointFixtures.isEmbeddingCase(p)).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @TestFactory
    Stream<DynamicNode> hfParity() {
        // encoder cases are not routed here at all (no skipped tests); a folder without any decoder case fails
        List<Path> cases = cases().stream().filter(dir -> {
            try {
                return ModelConfig.SUPPORTED_TYPES.contains(JSON.readTree(dir.resolve("config.json").toFile())
                        .path("model_type").asText());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).toList();
        assertFalse(cases.isEmpty(), "no decoder fixture case (" + ModelConfig.SUPPORTED_TYPES + ") under "
                + fixturesRoot());
        return cases.stream().map(dir -> {
            String name = dir.getFileName().toString();
            Case c = new Case(dir);
            return dynamicContainer(name, Stream.of(
                    dynamicTest(name + ": parameter names and order", c::parameterNames),
                    dynamicTest(name + ": logits", c::logits),
                    dynamicTest(name + ": SFT loss and gradients", c::sft),
                    dynamicTest(name + ": GRPO token-level loss and gradients", () -> c.grpo(GrpoLoss.Level.TOKEN)),
                    dynamicTest(name + ": GRPO sequence-level loss and gradients",
                            () -> c.grpo(GrpoLoss.Level.SEQUENCE)),
                    dynamicTest(name + ": left-padded logits", c::leftPadded),
                    dynamicTest(name + ": greedy decoding (KV cache)", c::greedy),
                    dynamicTest(name + ": KV-cache logits equal full-forward logits", c::cacheVsFull),
                    dynamicTest(name + ": KV-cache with left padding", c::cacheLeftPadded),
                    dynamicTest(name + ": save/load round trip", c::roundTrip)));
        });
    }

    /** One fixture case; the model is loaded once and shared by its tests. */
    static final class Case {
        final Path dir;
        final String name;
        final Backend be = CpuBackend.INSTANCE;
        DecoderModel model;
        SafeTensors exp;
        JsonNode fixture;

        Case(Path dir) {
            this.dir = dir;
            this.name = dir.getFileName().toString();
        }

        DecoderModel model() {
            if (model == null) {
                model = DecoderModel.load(dir, be);
                exp = SafeTensors.open(dir.resolve("expected.safetensors"));
                try {
                    fixture = JSON.readTree(dir.resolve("fixture.json").toFile());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            return model;
        }

        int[] ints(String key) {
            return exp.ints(key);
        }

        float[] floats(String key) {
            DType t = exp.info(key).dtype();
            if (t.isFloating()) {
                return exp.floats(key);
            }
            long[] l = exp.longs(key);
            float[] f = new float[l.length];
            for (int i = 0; i < l.length; i++) {
                f[i] = l[i];
            }
            return f;
        }

        int batch(String key) {
            return (int) exp.info(key).shape()[0];
        }

        void parameterNames() {
            model();
            List<String> want = new ArrayList<>();
            fixture.path("param_names").forEach(n -> want.add(n.asText()));
            assertFalse(want.isEmpty(), name + ": fixture.json lists no param_names");
            assertEquals(want, new ArrayList<>(model.parameters().keySet()), name + ": parameter names/order vs HF");
            assertEquals(want, new ArrayList<>(model.grads().keySet()), name + ": gradient names vs HF");
        }

        void logits() {
            model();
            int[] ids = ints("input_ids");
            Tensor logits = model.forward(batch("input_ids"), ids, null, null);
            Check.maxAbs(name + " logits", be.download(logits), floats("logits"), null, LOGITS_TOL);
        }

        void checkGrads(String prefix) {
            int checked = 0;
            for (Map.Entry<String, Tensor> e : model.grads().entrySet()) {
                String key = prefix + "." + e.getKey();
                assertTrue(exp.contains(key), name + ": expected.safetensors has no " + key);
                Check.relNorm(name + " " + key, be.download(e.getValue()), exp.floats(key), GRAD_TOL);
                checked++;
            }
            long inFixture = exp.names().stream().filter(n -> n.startsWith(prefix + ".")).count();
            assertEquals(inFixture, checked, name + ": every " + prefix + ".* tensor must be checked");
        }

        void sft() {
            model();
            model.zeroGrad();
            float loss = model.sftLoss(batch("input_ids"), ints("input_ids"), ints("labels"));
            Check.relScalar(name + " loss_ce", loss, floats("loss_ce")[0], LOSS_TOL);
            checkGrads("grad_ce");
        }

        void grpo(GrpoLoss.Level level) {
            model();
            int[] ids = ints("input_ids");
            int b = batch("input_ids"), t = ids.length / b;
            float[] cm = floats("completion_mask");
            float[] mask = new float[b * (t - 1)];
            for (int r = 0; r < b; r++) {
                System.arraycopy(cm, r * t + 1, mask, r * (t - 1), t - 1);
            }
            double eps = fixture.path("clip_eps").asDouble(Double.NaN);
            double beta = fixture.path("beta").asDouble(Double.NaN);
            assertTrue(Double.isFinite(eps) && Double.isFinite(beta), name + ": fixture.json lacks clip_eps/beta");
            model.zeroGrad();
            DecoderModel.GrpoStep step = model.grpoLoss(b, ids, null, null, mask, floats("old_logp"),
                    floats("ref_logp"), floats("advantages"), GrpoLoss.of(eps, beta, level));
            Check.maxAbs(name + " logp", step.logp(), floats("logp"), null, LOGITS_TOL);
            String suffix = level == GrpoLoss.Level.TOKEN ? "token" : "seq";
            Check.relScalar(name + " loss_grpo_" + suffix, step.loss(), floats("loss_grpo_" + suffix)[0], LOSS_TOL);
            checkGrads("grad_grpo_" + suffix);
        }

        void leftPadded() {
            model();
            int[] ids = ints("lp_input_ids"), mask = ints("lp_attention_mask"), pos = ints("lp_position_ids");
            int b = batch("lp_input_ids");
            assertTrue(Arrays.stream(mask).anyMatch(m -> m == 0), name + ": the left-padded batch has no padding");
            float[] got = be.download(model.forward(b, ids, pos, mask));
            int v = model.config().vocabSize();
            boolean[] sel = new boolean[got.length];
            for (int i = 0; i < got.length; i++) {
                sel[i] = mask[i / v] != 0;
                assertFalse(Float.isNaN(got[i]), name + ": NaN logit at padded index " + i);
            }
            Check.maxAbs(name + " lp_logits (unmasked positions)", got, floats("lp_logits"), sel, LOGITS_TOL);
        }

        void greedy() {
            model();
            int[] prompt = ints("greedy_prompt"), want = ints("greedy_output");
            int b = batch("greedy_prompt");
            int newTokens = want.length / b - prompt.length / b;
            int[] got = Generator.greedy(model, b, prompt, null, newTokens, List.of(), 0);
            assertArrayEquals(want, got, name + ": greedy tokens differ from HF generate: got "
                    + Arrays.toString(got) + ", expected " + Arrays.toString(want));
        }

        /** Prefill the greedy prompt, then feed HF's output token by token; each step must match a full forward. */
        void cacheVsFull() {
            model();
            int[] prompt = ints("greedy_prompt"), seq = ints("greedy_output");
            int b = batch("greedy_prompt"), tp = prompt.length / b, total = seq.length / b;
            int v = model.config().vocabSize();
            float[] full = be.download(model.forward(b, seq, null, null));
            try (KvCache cache = model.newKvCache(b, total)) {
                float[] step = be.download(model.forwardCached(cache, prompt, null, null));
                compareRow(full, step, b, total, tp - 1, v, "prefill");
                for (int t = tp; t < total; t++) {
                    int[] tok = new int[b];
                    for (int r = 0; r < b; r++) {
                        tok[r] = seq[r * total + t];
                    }
                    step = be.download(model.forwardCached(cache, tok, null, null));
                    compareRow(full, step, b, total, t, v, "decode step at position " + t);
                }
                assertEquals(total, cache.length());
            }
        }

        /** Left-padded batch: prefill 10 positions, decode the rest one by one, compare with HF's lp_logits. */
        void cacheLeftPadded() {
            model();
            int[] ids = ints("lp_input_ids"), mask = ints("lp_attention_mask"), pos = ints("lp_position_ids");
            int b = batch("lp_input_ids"), t = ids.length / b, v = model.config().vocabSize();
            int pre = Math.min(10, t - 1);
            float[] want = floats("lp_logits");
            try (KvCache cache = model.newKvCache(b, t)) {
                float[] step = be.download(model.forwardCached(cache, slice(ids, b, t, 0, pre),
                        slice(pos, b, t, 0, pre), slice(mask, b, t, 0, pre)));
                compareRow(want, step, b, t, pre - 1, v, "left-padded prefill");
                for (int i = pre; i < t; i++) {
                    step = be.download(model.forwardCached(cache, slice(ids, b, t, i, i + 1),
                            slice(pos, b, t, i, i + 1), slice(mask, b, t, i, i + 1)));
                    compareRow(want, step, b, t, i, v, "left-padded decode at position " + i);
                }
            }
        }

        static int[] slice(int[] x, int b, int t, int from, int to) {
            int[] out = new int[b * (to - from)];
            for (int r = 0; r < b; r++) {
                System.arraycopy(x, r * t + from, out, r * (to - from), to - from);
            }
            return out;
        }

        void compareRow(float[] full, float[] rows, int b, int t, int pos, int v, String what) {
            float[] want = new float[b * v];
            for (int r = 0; r < b; r++) {
                System.arraycopy(full, (r * t + pos) * v, want, r * v, v);
            }
            Check.maxAbs(name + " " + what, rows, want, null, LOGITS_TOL);
        }

        void roundTrip() throws IOException {
            model();
            Path tmp = Files.createTempDirectory("rlsr-roundtrip-");
            Path out = tmp.resolve("saved");
            try {
                model.save(out);
                assertTrue(Files.isRegularFile(out.resolve("config.json")), "config.json written");
                try (SafeTensors st = SafeTensors.open(out)) {
                    assertEquals(model.parameters().keySet(), st.names(), name + ": saved tensor names");
                    for (String n : st.names()) {
                        assertEquals(DType.F32, st.info(n).dtype(), name + ": " + n + " saved as fp32");
                    }
                }
                int[] ids = ints("input_ids");
                int b = batch("input_ids");
                float[] before = be.download(model.forward(b, ids, null, null));
                try (DecoderModel again = DecoderModel.load(out, be)) {
                    assertEquals(model.config().modelType(), again.config().modelType());
                    assertEquals(model.config().tieWordEmbeddings(), again.config().tieWordEmbeddings());
                    for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                        assertArrayEquals(be.download(e.getValue()), be.download(again.parameters().get(e.getKey())),
                                name + ": parameter " + e.getKey() + " changed in the save/load round trip");
                    }
                    // not bit-exact: JIT-compiled and interpreted Vector API reductions may round differently
                    float[] after = be.download(again.forward(b, ids, null, null));
                    Check.maxAbs(name + " logits after save/load", after, before, null, 1e-5);
                    Check.maxAbs(name + " reloaded logits vs HF", after, floats("logits"), null, LOGITS_TOL);
                }
                // saving over an existing directory replaces the files in place
                model.save(out);
                try (DecoderModel again = DecoderModel.load(out, be)) {
                    Check.maxAbs(name + " logits after second save", be.download(again.forward(b, ids, null, null)),
                            before, null, 1e-5);
                }
            } finally {
                try (Stream<Path> s = Files.walk(tmp)) {
                    s.sorted((x, y) -> y.getNameCount() - x.getNameCount()).forEach(p -> p.toFile().delete());
                }
            }
        }
    }
}
