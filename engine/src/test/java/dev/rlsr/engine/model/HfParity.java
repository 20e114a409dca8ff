package dev.rlsr.engine.model;

import dev.rlsr.kernels.DType;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

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
 * Parity with Hugging Face transformers on one backend in one precision, on every fixture case folder (test
 * resources {@code fixtures/}, or the folder in {@code RLSR_FIXTURES}): logits, SFT loss and every gradient, both
 * GRPO losses and their gradients, left padding, greedy decoding through the KV cache, cache-vs-full logits, and a
 * save/load round trip. Golden values were produced by transformers in fp32 (see the fixtures README); nothing here
 * comes from this engine. Every test name starts with the backend name, and each backend has its own class
 * ({@code CpuHfParityTest}, {@code CudaFp32HfParityTest}, ...), so a report shows where each case ran.
 *
 * <p>A backend's class is a few lines:
 * <pre>
 * &#64;Tag("gpu")
 * class CudaBf16HfParityTest extends HfParity {
 *     CudaBf16HfParityTest() {
 *         super("cuda-bf16", Precision.BF16, ParityTolerances.BF16);
 *     }
 *
 *     &#64;Override
 *     protected Backend openBackend() {
 *         return TestBackends.device("cuda-bf16", DType.BF16, () -&gt; new CudaBackend(...));
 *     }
 * }
 * </pre>
 *
 * <p><b>The bf16 tolerances</b> ({@link ParityTolerances#BF16}) follow llm.c's test_gpt2.cu, which checks its bf16
 * model against PyTorch's fp32 with one threshold per tensor: the threshold comes from the reference's magnitude
 * and bf16's precision, here as an estimate that a measurement confirms, doubled.
 * <ol>
 * <li><b>Estimate.</b> A bf16 model differs from the fp32 reference by the roundings to bf16 of its compute weights
 *     and of every stored activation and activation gradient, each a relative error of at most u = 2^-8 and RMS
 *     about u/sqrt(3); fp32 accumulation adds 10^4 times less. Independent roundings of random sign on one path add
 *     like sqrt(n) u/sqrt(3). In these 2-3 layer models a logit sits at the end of n ~ 30 roundings (about ten
 *     stored tensors per layer on the residual path, the final norm, the lm_head weight, the logit itself): about
 *     3u relative to the logits' scale max|logit|. A layer-0 gradient adds the way back down, n ~ 60: about 4.5u.
 *     Log-probs {@code x_t - lse} carry two logits' errors. Losses average per-token errors of random sign over
 *     the batch: well below u for cross entropy; GRPO's small losses (0.15-0.3, advantage-weighted) about u/2.</li>
 * <li><b>Measurement.</b> {@code Bf16StorageHfParityTest} runs this suite on bf16 storage with fp32 arithmetic
 *     (every op's output rounded to bf16, nothing else): at most 3.0u x max|logit| for logits, 1.5u x max|logit|
 *     for log-probs, 4.9u for weight-matrix gradients, 5.6u for bias and norm-weight gradients (sums over every token that partly
 *     cancel), 0.03u for the CE loss and 0.5u for GRPO losses.</li>
 * <li><b>Tolerance.</b> Twice that, rounded up, for what a device adds inside its kernels (bf16 probabilities and
 *     dS in flash attention, other accumulation orders): logits <b>6u x max|logit|</b> (0.047 for the fixtures'
 *     logits of about 2), log-probs <b>2x</b> the logits tolerance, losses <b>2u</b>, weight-matrix gradients
 *     <b>10u</b>, bias and norm-weight gradients <b>12u</b>. A cached and a full forward of the same bf16 model,
 *     and two evaluations of it, must agree within the logits tolerance.</li>
 * <li><b>Greedy decoding.</b> HF's near-ties (top-2 margins down to 0.003 in these fixtures) are below the logits
 *     tolerance, so instead of free-running generation, HF's tokens go through the KV cache and each of HF's
 *     choices must be within twice the logits tolerance of the model's best logit, as logits within tolerance
 *     imply; the test prints how many steps pick HF's token exactly.</li>
 * </ol>
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class HfParity {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String backendName;
    private final Precision precision;
    private final ParityTolerances tol;
    private final List<Case> opened = new ArrayList<>();
    private Backend be;

    /**
     * The suite for one backend in one precision.
     *
     * @param backendName the backend as shown in test names ("cpu-fp32", "cuda-bf16")
     * @param precision   the precision the models run in
     * @param tolerances  the per-tensor tolerances of that precision
     */
    protected HfParity(String backendName, Precision precision, ParityTolerances tolerances) {
        this.backendName = backendName;
        this.precision = precision;
        this.tol = tolerances;
    }

    /**
     * Opens the backend under test, once per class; a device backend uses {@code TestBackends.device} so that it
     * skips without a device, or fails when the run requires one.
     *
     * @return the backend
     */
    protected abstract Backend openBackend();

    @BeforeAll
    final void open() {
        be = openBackend();
        assertTrue(be.computes(precision.compute()), backendName + ": backend '" + be.name()
                + "' does not compute in " + precision);
        System.out.println("HF parity on backend '" + be.name() + "' as " + backendName + " (" + precision
                + ", tolerances " + tol + ")");
    }

    @AfterAll
    final void close() {
        for (Case c : opened) {
            c.close();
        }
        if (be != null) {
            be.close();
        }
    }

    static Path fixturesRoot() {
        String env = System.getenv("RLSR_FIXTURES");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        URL url = HfParity.class.getClassLoader().getResource("fixtures");
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
            String name = backendName + " " + dir.getFileName();
            Case c = new Case(dir, name);
            opened.add(c);
            return dynamicContainer(name, Stream.of(
                    dynamicTest(name + ": parameter names and order", c::parameterNames),
                    dynamicTest(name + ": logits", c::logits),
                    dynamicTest(name + ": SFT loss and gradients", c::sft),
                    dynamicTest(name + ": GRPO token-level loss and gradients", () -> c.grpo(GrpoLoss.Level.TOKEN)),
                    dynamicTest(name + ": GRPO sequence-level loss and gradients",
                            () -> c.grpo(GrpoLoss.Level.SEQUENCE)),
                    dynamicTest(name + ": left-padded logits", c::leftPadded),
                    dynamicTest(name + ": log-probs at temperature 0.7 (left-padded)", c::logProbsAtTemperature),
                    dynamicTest(name + (tol.greedyExact() ? ": greedy decoding (KV cache)"
                            : ": greedy decoding (KV cache, HF's tokens within tolerance)"), c::greedy),
                    dynamicTest(name + ": KV-cache logits equal full-forward logits", c::cacheVsFull),
                    dynamicTest(name + ": KV-cache with left padding", c::cacheLeftPadded),
                    dynamicTest(name + ": save/load round trip", c::roundTrip)));
        });
    }

    static double maxAbs(float[] x) {
        double m = 0;
        for (float v : x) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /** One fixture case; the model is loaded once and shared by its tests. */
    final class Case {
        final Path dir;
        final String name;
        DecoderModel model;
        SafeTensors exp;
        JsonNode fixture;
        double logitsTol;

        Case(Path dir, String name) {
            this.dir = dir;
            this.name = name;
        }

        DecoderModel model() {
            if (model == null) {
                model = DecoderModel.load(dir, be, precision, true);
                exp = SafeTensors.open(dir.resolve("expected.safetensors"));
                try {
                    fixture = JSON.readTree(dir.resolve("fixture.json").toFile());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                logitsTol = tol.logits(maxAbs(floats("logits")));
            }
            return model;
        }

        DecoderModel load(Path from) {
            return DecoderModel.load(from, be, precision, true);
        }

        void close() {
            if (model != null) {
                model.close();
                exp.close();
            }
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
            Check.maxAbs(name + " logits", be.download(logits), floats("logits"), null, logitsTol);
        }

        void checkGrads(String prefix) {
            int checked = 0;
            for (Map.Entry<String, Tensor> e : model.grads().entrySet()) {
                String key = prefix + "." + e.getKey();
                assertTrue(exp.contains(key), name + ": expected.safetensors has no " + key);
                Check.relNorm(name + " " + key, be.download(e.getValue()), exp.floats(key), tol.grad(e.getKey()));
                checked++;
            }
            long inFixture = exp.names().stream().filter(n -> n.startsWith(prefix + ".")).count();
            assertEquals(inFixture, checked, name + ": every " + prefix + ".* tensor must be checked");
        }

        void sft() {
            model();
            model.zeroGrad();
            float loss = model.sftLoss(batch("input_ids"), ints("input_ids"), ints("labels"));
            Check.relScalar(name + " loss_ce", loss, floats("loss_ce")[0], tol.lossRel());
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
            Check.maxAbs(name + " logp", step.logp(), floats("logp"), null, tol.logpOfLogits() * logitsTol);
            String suffix = level == GrpoLoss.Level.TOKEN ? "token" : "seq";
            // the loss is a masked mean of per-token terms -min(r A, clip(r) A) + beta k3(ref - logp): its first-order
            // error is sum_t w_t |d term_t / d logp_t| * |error of logp_t|, bounded with HF's own inputs
            double sensitivity = grpoSensitivity(level, floats("logp"), floats("old_logp"), floats("ref_logp"),
                    floats("advantages"), mask, b, t - 1, eps, beta);
            Check.scalar(name + " loss_grpo_" + suffix, step.loss(), floats("loss_grpo_" + suffix)[0], tol.lossRel(),
                    sensitivity * tol.logpOfLogits() * logitsTol);
            checkGrads("grad_grpo_" + suffix);
        }

        /**
         * {@code sum_t w_t * max |d term_t / d logp_t|} in double from the fixture's values, w_t the token's weight in
         * the aggregation (TOKEN: m_t / sum(m); SEQUENCE: m_t / (B * sum of the row's m)); the derivative of a term is
         * at most {@code r |A|} (both branches of the min, and 0 when clipped) plus {@code beta |1 - e^(ref - logp)|}.
         */
        private static double grpoSensitivity(GrpoLoss.Level level, float[] logp, float[] old, float[] ref, float[] adv,
                                              float[] mask, int b, int len, double eps, double beta) {
            double total = 0, all = 0;
            for (float m : mask) {
                all += m;
            }
            for (int r = 0; r < b; r++) {
                double row = 0;
                for (int j = 0; j < len; j++) {
                    row += mask[r * len + j];
                }
                for (int j = 0; j < len; j++) {
                    int i = r * len + j;
                    if (mask[i] == 0) {
                        continue;
                    }
                    double ratio = Math.exp((double) logp[i] - old[i]);
                    double d = Math.max(ratio, 1 + eps) * Math.abs(adv[r]) + beta * Math.abs(1 - Math.exp((double) ref[i] - logp[i]));
                    double w = level == GrpoLoss.Level.TOKEN ? mask[i] / Math.max(all, 1) : mask[i] / (b * Math.max(row, 1));
                    total += w * d;
                }
            }
            return total;
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
            Check.maxAbs(name + " lp_logits (unmasked positions)", got, floats("lp_logits"), sel, logitsTol);
        }

        /**
         * GRPO's log-probs at a sampling temperature T (TRL: log_softmax(logits / T)) against the same formula in
         * double on HF's own left-padded logits: {@code z[id]/T - logsumexp(z/T)} at every position whose token and
         * next token are real. Each logit's error within the logits tolerance moves the log-prob by at most twice that,
         * divided by T.
         */
        void logProbsAtTemperature() {
            model();
            float temperature = 0.7f;
            int[] ids = ints("lp_input_ids"), mask = ints("lp_attention_mask"), pos = ints("lp_position_ids");
            int b = batch("lp_input_ids"), t = ids.length / b, v = model.config().vocabSize();
            float[] z = floats("lp_logits");
            float[] got;
            try (Tensor out = be.zeros(DType.F32, b, t)) {
                model.logProbs(b, ids, pos, mask, temperature, out);
                got = be.download(out);
            }
            float[] want = new float[b * t];
            boolean[] sel = new boolean[b * t];
            for (int r = 0; r < b; r++) {
                for (int j = 0; j + 1 < t; j++) {
                    int i = r * t + j;
                    if (mask[i] == 0 || mask[i + 1] == 0) {
                        continue;
                    }
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int k = 0; k < v; k++) {
                        max = Math.max(max, z[i * v + k] / (double) temperature);
                    }
                    for (int k = 0; k < v; k++) {
                        sum += Math.exp(z[i * v + k] / (double) temperature - max);
                    }
                    want[i] = (float) (z[i * v + ids[i + 1]] / (double) temperature - max - Math.log(sum));
                    sel[i] = true;
                }
            }
            assertTrue(Arrays.stream(mask).filter(m -> m != 0).count() > b, name + ": no real tokens to score");
            Check.maxAbs(name + " log-probs at T = " + temperature, got, want, sel,
                    tol.logpOfLogits() * logitsTol / temperature);
        }

        void greedy() {
            model();
            int[] prompt = ints("greedy_prompt"), want = ints("greedy_output");
            int b = batch("greedy_prompt");
            int newTokens = want.length / b - prompt.length / b;
            if (tol.greedyExact()) {
                int[] got = Generator.greedy(model, b, prompt, null, newTokens, List.of(), 0);
                assertArrayEquals(want, got, name + ": greedy tokens differ from HF generate: got "
                        + Arrays.toString(got) + ", expected " + Arrays.toString(want));
                return;
            }
            // HF's tokens through the KV cache; the device's argmax of each step against HF's choice
            int tp = prompt.length / b, total = want.length / b, exact = 0;
            try (KvCache cache = model.newKvCache(b, total); Tensor best = be.zeros(DType.I32, b)) {
                Tensor logits = model.prefill(cache, prompt, null, null);
                for (int step = 0; step < newTokens; step++) {
                    be.argmaxRows(logits, best);
                    int[] top = be.downloadInts(best);
                    float[] rows = be.download(logits);
                    int v = rows.length / b;
                    int[] tok = new int[b];
                    for (int r = 0; r < b; r++) {
                        tok[r] = want[r * total + tp + step];
                        double gap = rows[r * v + top[r]] - rows[r * v + tok[r]];
                        assertTrue(gap <= 2 * logitsTol, name + ": at step " + step + " HF chose token " + tok[r]
                                + ", whose logit is " + gap + " below this model's best (token " + top[r]
                                + "): more than twice the logits tolerance " + logitsTol);
                        exact += top[r] == tok[r] ? 1 : 0;
                    }
                    logits = model.decode(cache, tok, null);
                }
            }
            System.out.printf("  %-70s %d of %d steps pick HF's token, the rest are within tolerance%n",
                    name + " greedy", exact, b * newTokens);
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
            Check.maxAbs(name + " " + what, rows, want, null, logitsTol);
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
                try (DecoderModel again = load(out)) {
                    assertEquals(model.config().modelType(), again.config().modelType());
                    assertEquals(model.config().tieWordEmbeddings(), again.config().tieWordEmbeddings());
                    for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                        assertArrayEquals(be.download(e.getValue()), be.download(again.parameters().get(e.getKey())),
                                name + ": parameter " + e.getKey() + " changed in the save/load round trip");
                    }
                    // not bit-exact: JIT-compiled and interpreted Vector API reductions may round differently
                    float[] after = be.download(again.forward(b, ids, null, null));
                    Check.maxAbs(name + " logits after save/load", after, before, null, tol.repeat(logitsTol));
                    Check.maxAbs(name + " reloaded logits vs HF", after, floats("logits"), null, logitsTol);
                }
                // saving over an existing directory replaces the files in place
                model.save(out);
                try (DecoderModel again = load(out)) {
                    Check.maxAbs(name + " logits after second save", be.download(again.forward(b, ids, null, null)),
                            before, null, tol.repeat(logitsTol));
                }
            } finally {
                try (Stream<Path> s = Files.walk(tmp)) {
                    s.sorted((x, y) -> y.getNameCount() - x.getNameCount()).forEach(p -> p.toFile().delete());
                }
            }
        }
    }
}
