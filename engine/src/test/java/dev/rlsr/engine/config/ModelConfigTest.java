package dev.rlsr.engine.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.CheckpointFixtures;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.io.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelConfigTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    static List<Path> decoders() {
        return CheckpointFixtures.decoderCases();
    }

    @Test
    void decoderFixturesArePresent() {
        assertFalse(decoders().isEmpty(), "no decoder case under " + CheckpointFixtures.root());
        for (String name : List.of("qwen2_tiny", "qwen3_tiny", "llama_tiny")) {
            assertTrue(Files.isRegularFile(CheckpointFixtures.bundled(name).resolve("config.json")), name);
        }
    }

    /** parameterShapes() against the tensors HF actually saved, and against fixture.json's param_names order. */
    @ParameterizedTest
    @MethodSource("decoders")
    void parameterShapesMatchTheCheckpoint(Path dir) throws Exception {
        ModelConfig c = ModelConfig.load(dir);
        Map<String, long[]> shapes = c.parameterShapes();
        try (SafeTensors st = SafeTensors.open(dir)) {
            assertEquals(Set.copyOf(st.names()), shapes.keySet(), dir.toString());
            long total = 0;
            for (var e : shapes.entrySet()) {
                TensorInfo t = st.info(e.getKey());
                assertArrayEquals(t.shape(), e.getValue(), e.getKey());
                total += t.numel();
            }
            assertEquals(total, c.numParameters());
        }
        List<String> hfOrder = new ArrayList<>();
        CheckpointFixtures.json(dir.resolve("fixture.json")).get("param_names").forEach(n -> hfOrder.add(n.asText()));
        assertEquals(hfOrder, new ArrayList<>(shapes.keySet()), "named_parameters() order");
    }

    @ParameterizedTest
    @MethodSource("decoders")
    void fieldsFollowTheJson(Path dir) throws Exception {
        JsonNode j = CheckpointFixtures.json(dir.resolve("config.json"));
        ModelConfig c = ModelConfig.load(dir.resolve("config.json"));
        assertEquals(j.get("model_type").asText(), c.modelType());
        assertEquals(j.get("vocab_size").asInt(), c.vocabSize());
        assertEquals(j.get("hidden_size").asInt(), c.hiddenSize());
        assertEquals(j.get("intermediate_size").asInt(), c.intermediateSize());
        assertEquals(j.get("num_hidden_layers").asInt(), c.numLayers());
        assertEquals(j.get("num_attention_heads").asInt(), c.numHeads());
        assertEquals(j.get("num_key_value_heads").asInt(), c.numKvHeads());
        assertEquals(j.has("head_dim") ? j.get("head_dim").asInt()
                : j.get("hidden_size").asInt() / j.get("num_attention_heads").asInt(), c.headDim());
        assertEquals(j.get("rms_norm_eps").asDouble(), c.rmsNormEps());
        assertEquals(j.get("rope_parameters").get("rope_theta").asDouble(), c.ropeTheta());
        assertEquals("default", c.ropeScaling().type());
        assertEquals(j.get("max_position_embeddings").asInt(), c.maxPositionEmbeddings());
        assertEquals(j.get("tie_word_embeddings").asBoolean(), c.tieWordEmbeddings());
        assertEquals(1.0 / Math.sqrt(c.headDim()), c.attentionScale(), 0.0);
        // Reloading what toJson() writes gives the same config, unknown keys and all.
        ModelConfig again = ModelConfig.parse(c.toJson(), "saved");
        assertEquals(c, again);
        assertEquals(j, JSON.readTree(c.toJson()));
    }

    @Test
    void architectureFlags() {
        Path root = CheckpointFixtures.bundled();
        ModelConfig q2 = ModelConfig.load(root.resolve("qwen2_tiny"));
        assertTrue(q2.qkvBias());
        assertFalse(q2.oBias() || q2.mlpBias() || q2.qkNorm());
        assertTrue(q2.tieWordEmbeddings());
        assertNull(q2.bosTokenId());
        assertEquals(List.of(), q2.eosTokenIds());
        ModelConfig q3 = ModelConfig.load(root.resolve("qwen3_tiny"));
        assertTrue(q3.qkNorm());
        assertFalse(q3.qkvBias());
        assertEquals(32, q3.headDim()); // explicit, not 64 / 4
        ModelConfig ll = ModelConfig.load(root.resolve("llama_tiny"));
        assertFalse(ll.tieWordEmbeddings() || ll.qkNorm() || ll.qkvBias());
        assertEquals(3, ll.kvGroups());
        assertEquals(1, ll.bosTokenId());
        assertEquals(List.of(2), ll.eosTokenIds());
    }

    @Test
    void llamaAttentionAndMlpBiasAddParameters() throws Exception {
        ObjectNode n = fixtureJson("llama_tiny");
        n.put("attention_bias", true);
        n.put("mlp_bias", true);
        n.putArray("eos_token_id").add(2).add(7);
        ModelConfig c = ModelConfig.parse(n.toString(), "biased");
        Map<String, long[]> s = c.parameterShapes();
        assertArrayEquals(new long[]{96}, s.get("model.layers.0.self_attn.o_proj.bias"));
        assertArrayEquals(new long[]{2 * 16}, s.get("model.layers.2.self_attn.k_proj.bias"));
        assertArrayEquals(new long[]{160}, s.get("model.layers.1.mlp.up_proj.bias"));
        assertArrayEquals(new long[]{96}, s.get("model.layers.1.mlp.down_proj.bias"));
        assertEquals(List.of(2, 7), c.eosTokenIds());
    }

    // ------------------------------------------------------------------ RoPE

    /**
     * Written separately from ModelConfig, following transformers' _compute_default_rope_parameters and
     * _compute_llama3_parameters step by step (vector form: where / smooth / is_medium_freq).
     */
    static double[] hfReferenceInvFreq(double base, int dim, String type, double factor, double low, double high,
                                       double oldContextLen) {
        int n = dim / 2;
        double[] invFreq = new double[n];
        for (int k = 0; k < n; k++) {
            invFreq[k] = 1.0 / Math.pow(base, (double) (2 * k) / dim);
        }
        if (type.equals("linear")) {
            for (int k = 0; k < n; k++) {
                invFreq[k] /= factor;
            }
            return invFreq;
        }
        if (!type.equals("llama3")) {
            return invFreq;
        }
        double lowFreqWavelen = oldContextLen / low;
        double highFreqWavelen = oldContextLen / high;
        double[] out = new double[n];
        for (int k = 0; k < n; k++) {
            double wavelen = 2 * Math.PI / invFreq[k];
            double invFreqLlama = wavelen > lowFreqWavelen ? invFreq[k] / factor : invFreq[k];
            double smoothFactor = (oldContextLen / wavelen - low) / (high - low);
            double smoothed = (1 - smoothFactor) * invFreqLlama / factor + smoothFactor * invFreqLlama;
            boolean isMediumFreq = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
            out[k] = isMediumFreq ? smoothed : invFreqLlama;
        }
        return out;
    }

    private static void assertInvFreq(double[] expected, float[] got) {
        assertEquals(expected.length, got.length);
        for (int i = 0; i < got.length; i++) {
            float e = (float) expected[i];
            assertTrue(Math.abs(e - got[i]) <= Math.ulp(e), "inv_freq[" + i + "]: expected " + e + ", got " + got[i]);
        }
    }

    /** The Llama 3.1 8B rope section, in the pre-transformers-5 layout. */
    private static final String LLAMA31 = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
             "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "hidden_act": "silu",
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "tie_word_embeddings": false,
             "rope_theta": 500000.0,
             "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
            """;

    @Test
    void llama3ScalingMatchesTheHfFormula() {
        ModelConfig c = ModelConfig.parse(LLAMA31, "llama31");
        assertEquals(128, c.headDim());
        assertEquals(new ModelConfig.RopeScaling("llama3", 8, 1, 4, 8192), c.ropeScaling());
        float[] got = c.ropeInvFreq();
        double[] ref = hfReferenceInvFreq(500000.0, 128, "llama3", 8, 1, 4, 8192);
        assertInvFreq(ref, got);
        // Sanity of the reference itself: the three regimes all occur.
        double[] plain = hfReferenceInvFreq(500000.0, 128, "default", 1, 0, 0, 0);
        int kept = 0, divided = 0, smoothed = 0;
        for (int i = 0; i < plain.length; i++) {
            if (ref[i] == plain[i]) {
                kept++;
            } else if (ref[i] == plain[i] / 8) {
                divided++;
            } else {
                assertTrue(ref[i] < plain[i] && ref[i] > plain[i] / 8);
                smoothed++;
            }
        }
        assertTrue(kept > 0 && divided > 0 && smoothed > 0, kept + "/" + divided + "/" + smoothed);
        assertEquals(List.of(128001, 128008, 128009), c.eosTokenIds());
    }

    @Test
    void legacyTypeKeyAndRopeParametersAreEquivalent() throws Exception {
        ModelConfig legacy = ModelConfig.parse(LLAMA31, "legacy");
        ObjectNode n = (ObjectNode) JSON.readTree(LLAMA31);
        ObjectNode scaling = (ObjectNode) n.remove("rope_scaling");
        double theta = n.remove("rope_theta").asDouble();
        ObjectNode params = n.putObject("rope_parameters");
        params.put("rope_theta", theta);
        params.setAll(scaling);
        ModelConfig v5 = ModelConfig.parse(n.toString(), "v5");
        assertEquals(legacy.ropeTheta(), v5.ropeTheta());
        assertEquals(legacy.ropeScaling(), v5.ropeScaling());
        assertArrayEquals(legacy.ropeInvFreq(), v5.ropeInvFreq());

        ObjectNode typeKey = (ObjectNode) JSON.readTree(LLAMA31);
        ObjectNode s = (ObjectNode) typeKey.get("rope_scaling");
        s.put("type", s.remove("rope_type").asText());
        assertArrayEquals(legacy.ropeInvFreq(), ModelConfig.parse(typeKey.toString(), "type").ropeInvFreq());
    }

    @Test
    void fixtureRopeParametersEqualTopLevelRopeTheta() throws Exception {
        for (Path dir : decoders()) {
            ModelConfig v5 = ModelConfig.load(dir);
            ObjectNode n = (ObjectNode) JSON.readTree(Files.readString(dir.resolve("config.json")));
            double theta = n.remove("rope_parameters").get("rope_theta").asDouble();
            n.put("rope_theta", theta);
            ModelConfig legacy = ModelConfig.parse(n.toString(), "legacy " + dir.getFileName());
            assertEquals(v5.ropeTheta(), legacy.ropeTheta());
            assertArrayEquals(v5.ropeInvFreq(), legacy.ropeInvFreq());
            assertInvFreq(hfReferenceInvFreq(theta, v5.headDim(), "default", 1, 0, 0, 0), v5.ropeInvFreq());
            assertEquals(1.0f, v5.ropeInvFreq()[0]);
        }
    }

    @Test
    void linearScalingDividesByFactor() throws Exception {
        ObjectNode n = fixtureJson("llama_tiny");
        ObjectNode p = (ObjectNode) n.get("rope_parameters");
        p.put("rope_type", "linear");
        p.put("factor", 4.0);
        ModelConfig c = ModelConfig.parse(n.toString(), "linear");
        assertInvFreq(hfReferenceInvFreq(500000.0, 16, "linear", 4, 0, 0, 0), c.ropeInvFreq());
    }

    // ------------------------------------------------------------------ errors

    @Test
    void unsupportedModelTypeListsSupportedOnes() {
        Path bert = CheckpointFixtures.bundled("bert_tiny").resolve("config.json");
        CheckpointException e = assertThrows(CheckpointException.class, () -> ModelConfig.load(bert));
        assertEquals(bert + ": model_type 'bert' is not a supported decoder; supported: qwen2, qwen3, llama",
                e.getMessage());
    }

    @Test
    void missingKeyIsNamedWithTheFile() throws Exception {
        ObjectNode n = fixtureJson("qwen2_tiny");
        n.remove("intermediate_size");
        CheckpointException e = assertThrows(CheckpointException.class, () -> ModelConfig.parse(n.toString(), "x/config.json"));
        assertTrue(e.getMessage().startsWith("x/config.json: "), e.getMessage());
        assertTrue(e.getMessage().contains("'intermediate_size'"), e.getMessage());
    }

    @Test
    void badValuesAreNamed() throws Exception {
        assertBad("qwen2_tiny", n -> n.put("num_key_value_heads", 3), "num_key_value_heads (3)");
        assertBad("qwen2_tiny", n -> n.put("vocab_size", 0), "vocab_size must be positive");
        assertBad("llama_tiny", n -> n.put("hidden_act", "gelu"), "hidden_act 'gelu'");
        assertBad("qwen2_tiny", n -> n.put("num_attention_heads", 6), "not divisible");
        assertBad("llama_tiny", n -> ((ObjectNode) n.get("rope_parameters")).put("rope_type", "yarn"), "'yarn'");
        assertBad("llama_tiny", n -> ((ObjectNode) n.get("rope_parameters")).put("rope_type", "llama3"),
                "'factor'");
        assertBad("qwen3_tiny", n -> n.put("hidden_size", "64"), "'hidden_size' must be an integer");
        CheckpointException e = assertThrows(CheckpointException.class, () -> ModelConfig.parse("{", "broken.json"));
        assertTrue(e.getMessage().startsWith("broken.json: not valid JSON"), e.getMessage());
    }

    @Test
    void missingConfigNamesTheDirectory(@TempDir Path tmp) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> ModelConfig.load(tmp));
        assertTrue(e.getMessage().contains(tmp.toString()), e.getMessage());
    }

    // ------------------------------------------------------------------ creation

    @Test
    void fromScratchConfigIsCompleteAndSaves(@TempDir Path tmp) throws Exception {
        ModelConfig c = ModelConfig.of("llama", 1000, 128, 256, 2, 8, 2, 16, false);
        JsonNode j = JSON.readTree(c.toJson());
        assertEquals("LlamaForCausalLM", j.get("architectures").get(0).asText());
        assertEquals("float32", j.get("torch_dtype").asText());
        assertEquals(10000.0, j.get("rope_theta").asDouble());
        assertEquals(10000.0, j.get("rope_parameters").get("rope_theta").asDouble());
        assertTrue(c.parameterShapes().containsKey("lm_head.weight"));
        c.save(tmp);
        assertEquals(c, ModelConfig.load(tmp));

        ModelConfig q3 = ModelConfig.of("qwen3", 500, 64, 128, 1, 4, 2, 32, true);
        assertTrue(q3.qkNorm() && q3.tieWordEmbeddings());
        assertFalse(q3.parameterShapes().containsKey("lm_head.weight"));
        assertEquals("Qwen3ForCausalLM", JSON.readTree(q3.toJson()).get("architectures").get(0).asText());
        assertTrue(ModelConfig.of("qwen2", 500, 64, 128, 1, 4, 2, 16, true).qkvBias());

        ModelConfig bigger = q3.withVocabSize(640);
        assertEquals(640, bigger.vocabSize());
        assertArrayEquals(new long[]{640, 64}, bigger.parameterShapes().get("model.embed_tokens.weight"));
        assertEquals(640, JSON.readTree(bigger.toJson()).get("vocab_size").asInt());
        assertThrows(IllegalArgumentException.class, () -> ModelConfig.of("gpt2", 1, 1, 1, 1, 1, 1, 2, true));
    }

    private static ObjectNode fixtureJson(String name) throws Exception {
        return (ObjectNode) JSON.readTree(Files.readString(CheckpointFixtures.bundled(name).resolve("config.json")));
    }

    private static void assertBad(String fixture, java.util.function.Consumer<ObjectNode> edit, String expected)
            throws Exception {
        ObjectNode n = fixtureJson(fixture);
        edit.accept(n);
        CheckpointException e = assertThrows(CheckpointException.class, () -> ModelConfig.parse(n.toString(), "src.json"));
        assertTrue(e.getMessage().startsWith("src.json: "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "'" + expected + "' not in: " + e.getMessage());
    }
}
