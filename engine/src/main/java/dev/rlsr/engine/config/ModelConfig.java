package dev.rlsr.engine.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.engine.io.CheckpointException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Objects;

/**
 * A decoder's Hugging Face {@code config.json} (model_type {@code qwen2}, {@code qwen3}, {@code llama}), with
 * the defaults transformers applies to absent keys. {@code rawJson} keeps the file as read, so keys this class
 * does not know survive a save ({@link #toJson()}).
 *
 * <p>Shapes: H = hiddenSize, I = intermediateSize, V = vocabSize, D = headDim, Nq = numHeads, Nkv = numKvHeads.
 *
 * @param modelType             {@code qwen2}, {@code qwen3} or {@code llama}
 * @param vocabSize             V, rows of the embedding (may exceed the tokenizer's vocabulary)
 * @param hiddenSize            H
 * @param intermediateSize      I, the MLP width
 * @param numLayers             decoder layers
 * @param numHeads              Nq, query heads
 * @param numKvHeads            Nkv, key/value heads (divides Nq)
 * @param headDim               D, the size of one head (Qwen3 may have D != H / Nq)
 * @param rmsNormEps            eps of every RMSNorm
 * @param ropeTheta             RoPE base
 * @param ropeScaling           RoPE frequency scaling, {@link RopeScaling#NONE} for none
 * @param maxPositionEmbeddings the context length the model was trained for
 * @param tieWordEmbeddings     the output projection is the input embedding (no {@code lm_head.weight})
 * @param qkvBias               q/k/v projections have a bias (qwen2 always; llama and qwen3 from
 *                              {@code attention_bias})
 * @param oBias                 o_proj has a bias: {@code attention_bias} for llama and qwen3 (transformers'
 *                              Qwen3Attention is LlamaAttention, whose o_proj uses it); never for qwen2
 * @param mlpBias               gate/up/down projections have a bias (llama {@code mlp_bias})
 * @param qkNorm                per-head RMSNorm on q and k before RoPE (qwen3)
 * @param hiddenAct             the MLP activation ({@code silu})
 * @param bosTokenId            {@code bos_token_id}, or null
 * @param eosTokenIds           {@code eos_token_id} (one or several), possibly empty
 * @param padTokenId            {@code pad_token_id}, or null
 * @param rawJson               the config.json text as read (or as created), kept for saving
 */
public record ModelConfig(
        String modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        int maxPositionEmbeddings,
        boolean tieWordEmbeddings,
        boolean qkvBias,
        boolean oBias,
        boolean mlpBias,
        boolean qkNorm,
        String hiddenAct,
        Integer bosTokenId,
        List<Integer> eosTokenIds,
        Integer padTokenId,
        String rawJson) {

    public static final List<String> SUPPORTED_TYPES = List.of("qwen2", "qwen3", "llama");

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * RoPE frequency scaling.
     *
     * @param type                          "default" (none), "linear" (inv_freq / factor), "llama3" (Llama 3.1)
     * @param factor                        the scaling factor (1 for none)
     * @param lowFreqFactor                 llama3 only: {@code low_freq_factor}
     * @param highFreqFactor                llama3 only: {@code high_freq_factor}
     * @param originalMaxPositionEmbeddings llama3 only: the pre-training context length
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositionEmbeddings) {
        // SUPPORTED before NONE: static initialisers run in order and NONE's constructor reads SUPPORTED.
        public static final List<String> SUPPORTED = List.of("default", "linear", "llama3");
        public static final RopeScaling NONE = new RopeScaling("default", 1.0, 0, 0, 0);

        /** Checks the type and the factors, naming the bad one. */
        public RopeScaling {
            Objects.requireNonNull(type, "rope type");
            if (!SUPPORTED.contains(type)) {
                throw new IllegalArgumentException("rope type '" + type + "' is not supported; supported: "
                        + String.join(", ", SUPPORTED));
            }
            if (!(factor > 0) || !Double.isFinite(factor)) {
                throw new IllegalArgumentException("rope scaling factor must be positive, got " + factor);
            }
            if (type.equals("llama3")) {
                if (!(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)) {
                    throw new IllegalArgumentException("llama3 rope scaling needs 0 < low_freq_factor < "
                            + "high_freq_factor, got " + lowFreqFactor + " and " + highFreqFactor);
                }
                if (originalMaxPositionEmbeddings <= 0) {
                    throw new IllegalArgumentException("llama3 rope scaling needs a positive "
                            + "original_max_position_embeddings, got " + originalMaxPositionEmbeddings);
                }
            }
        }

        /**
         * Linear scaling: every inverse frequency divided by {@code factor}.
         *
         * @param factor &gt; 0
         * @return the scaling
         */
        public static RopeScaling linear(double factor) {
            return new RopeScaling("linear", factor, 0, 0, 0);
        }

        /**
         * Llama 3.1 scaling (transformers' {@code _compute_llama3_parameters}).
         *
         * @param factor                        &gt; 0
         * @param lowFreqFactor                 &gt; 0
         * @param highFreqFactor                &gt; lowFreqFactor
         * @param originalMaxPositionEmbeddings the pre-training context length, &gt; 0
         * @return the scaling
         */
        public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor,
                                         int originalMaxPositionEmbeddings) {
            return new RopeScaling("llama3", factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings);
        }
    }

    /** Checks every size and the head arithmetic, naming the config.json key that is wrong. */
    public ModelConfig {
        Objects.requireNonNull(modelType, "model_type");
        if (!SUPPORTED_TYPES.contains(modelType)) {
            throw new IllegalArgumentException("model_type '" + modelType + "' is not a supported decoder; supported: "
                    + String.join(", ", SUPPORTED_TYPES));
        }
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numLayers);
        positive("num_attention_heads", numHeads);
        positive("num_key_value_heads", numKvHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numHeads
                    + ") must be a multiple of num_key_value_heads (" + numKvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for rotary embeddings, got " + headDim);
        }
        if (!(rmsNormEps > 0) || !Double.isFinite(rmsNormEps)) {
            throw new IllegalArgumentException("rms_norm_eps must be positive, got " + rmsNormEps);
        }
        if (!(ropeTheta > 0) || !Double.isFinite(ropeTheta)) {
            throw new IllegalArgumentException("rope_theta must be positive, got " + ropeTheta);
        }
        Objects.requireNonNull(ropeScaling, "ropeScaling (use RopeScaling.NONE)");
        if (!"silu".equals(hiddenAct)) {
            throw new IllegalArgumentException("hidden_act '" + hiddenAct + "' is not supported; supported: silu");
        }
        eosTokenIds = eosTokenIds == null ? List.of() : List.copyOf(eosTokenIds);
        Objects.requireNonNull(rawJson, "rawJson");
    }

    private static void positive(String key, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException(key + " must be positive, got " + v);
        }
    }

    // ---------------------------------------------------------------- loading

    /**
     * Reads {@code config.json} from a model directory, or the given file.
     *
     * @param dirOrFile a model directory or a config.json path
     * @return the config
     * @throws CheckpointException for a missing or unreadable file, unsupported model types and invalid values
     */
    public static ModelConfig load(Path dirOrFile) {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("config.json") : dirOrFile;
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(Files.isDirectory(dirOrFile)
                    ? "no config.json in model directory " + dirOrFile
                    : "config file not found: " + dirOrFile);
        }
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + file + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
        return parse(text, file.toString());
    }

    /**
     * Parses config.json text.
     *
     * @param json       the text
     * @param sourceName prefixes every error message (usually the file)
     * @return the config
     * @throws CheckpointException for unsupported model types, missing required keys and invalid values
     */
    public static ModelConfig parse(String json, String sourceName) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new CheckpointException(sourceName + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException(sourceName + ": config must be a JSON object");
        }
        try {
            return fromJson((ObjectNode) root, sourceName);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(sourceName + ": " + e.getMessage(), e);
        }
    }

    private static ModelConfig fromJson(ObjectNode root, String src) {
        JsonNode mt = root.get("model_type");
        if (mt == null || mt.isNull()) {
            throw new IllegalArgumentException("missing required key 'model_type' (supported: "
                    + String.join(", ", SUPPORTED_TYPES) + ")");
        }
        String type = mt.asText();
        if (!SUPPORTED_TYPES.contains(type)) {
            throw new IllegalArgumentException("model_type '" + type + "' is not a supported decoder; supported: "
                    + String.join(", ", SUPPORTED_TYPES));
        }
        int vocab = requiredInt(root, "vocab_size");
        int hidden = requiredInt(root, "hidden_size");
        int inter = requiredInt(root, "intermediate_size");
        int layers = requiredInt(root, "num_hidden_layers");
        int heads = requiredInt(root, "num_attention_heads");
        int kvHeads = optInt(root, "num_key_value_heads", heads);
        Integer explicitHeadDim = optInteger(root, "head_dim");
        int headDim;
        if (explicitHeadDim != null) {
            headDim = explicitHeadDim;
        } else {
            if (heads > 0 && hidden % heads != 0) {
                throw new IllegalArgumentException("hidden_size (" + hidden + ") is not divisible by "
                        + "num_attention_heads (" + heads + ") and no head_dim is given");
            }
            headDim = heads > 0 ? hidden / heads : 0;
        }
        double eps = optDouble(root, "rms_norm_eps", 1e-6);
        // Defaults as in transformers' config classes.
        int maxPos = optInt(root, "max_position_embeddings", type.equals("llama") ? 2048 : 32768);
        boolean tied = optBool(root, "tie_word_embeddings", false);
        boolean attentionBias = optBool(root, "attention_bias", false);
        boolean qkvBias = type.equals("qwen2") || attentionBias;
        boolean oBias = !type.equals("qwen2") && attentionBias;
        boolean mlpBias = type.equals("llama") && optBool(root, "mlp_bias", false);
        boolean qkNorm = type.equals("qwen3");
        String act = optText(root, "hidden_act", "silu");

        // RoPE: transformers 5 writes rope_parameters {rope_theta, rope_type, ...}; older files a top-level
        // rope_theta and an optional rope_scaling {rope_type|type, ...}. rope_parameters wins when both exist.
        double theta = 10000.0;
        RopeScaling scaling = RopeScaling.NONE;
        JsonNode legacyTheta = root.get("rope_theta");
        if (legacyTheta != null && !legacyTheta.isNull()) {
            theta = number(legacyTheta, "rope_theta");
        }
        JsonNode legacyScaling = root.get("rope_scaling");
        if (legacyScaling != null && !legacyScaling.isNull()) {
            scaling = ropeScaling(legacyScaling, "rope_scaling");
        }
        JsonNode params = root.get("rope_parameters");
        if (params != null && !params.isNull()) {
            if (!params.isObject()) {
                throw new IllegalArgumentException("'rope_parameters' must be an object, got " + params);
            }
            JsonNode t = params.get("rope_theta");
            if (t != null && !t.isNull()) {
                theta = number(t, "rope_parameters.rope_theta");
            }
            scaling = ropeScaling(params, "rope_parameters");
        }

        Integer bos = optInteger(root, "bos_token_id");
        Integer pad = optInteger(root, "pad_token_id");
        List<Integer> eos = new ArrayList<>();
        JsonNode e = root.get("eos_token_id");
        if (e != null && !e.isNull()) {
            if (e.isArray()) {
                for (JsonNode x : e) {
                    eos.add(intValue(x, "eos_token_id"));
                }
            } else {
                eos.add(intValue(e, "eos_token_id"));
            }
        }
        return new ModelConfig(type, vocab, hidden, inter, layers, heads, kvHeads, headDim, eps, theta, scaling,
                maxPos, tied, qkvBias, oBias, mlpBias, qkNorm, act, bos, List.copyOf(eos), pad, pretty(root));
    }

    private static RopeScaling ropeScaling(JsonNode n, String where) {
        if (!n.isObject()) {
            throw new IllegalArgumentException("'" + where + "' must be an object, got " + n);
        }
        JsonNode t = n.has("rope_type") ? n.get("rope_type") : n.get("type");
        String type = t == null || t.isNull() ? "default" : t.asText();
        if (type.equals("default")) {
            return RopeScaling.NONE;
        }
        if (!RopeScaling.SUPPORTED.contains(type)) {
            throw new IllegalArgumentException(where + ": rope type '" + type + "' is not supported; supported: "
                    + String.join(", ", RopeScaling.SUPPORTED));
        }
        double factor = number(need(n, "factor", where), where + ".factor");
        if (type.equals("linear")) {
            return RopeScaling.linear(factor);
        }
        double low = number(need(n, "low_freq_factor", where), where + ".low_freq_factor");
        double high = number(need(n, "high_freq_factor", where), where + ".high_freq_factor");
        int orig = intValue(need(n, "original_max_position_embeddings", where),
                where + ".original_max_position_embeddings");
        try {
            return RopeScaling.llama3(factor, low, high, orig);
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(where + ": " + ex.getMessage(), ex);
        }
    }

    private static JsonNode need(JsonNode n, String key, String where) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException("missing required key '" + key + "' in " + where);
        }
        return v;
    }

    private static int requiredInt(JsonNode root, String key) {
        JsonNode v = root.get(key);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException("missing required key '" + key + "'");
        }
        return intValue(v, key);
    }

    private static int optInt(JsonNode root, String key, int def) {
        Integer v = optInteger(root, key);
        return v == null ? def : v;
    }

    private static Integer optInteger(JsonNode root, String key) {
        JsonNode v = root.get(key);
        return v == null || v.isNull() ? null : intValue(v, key);
    }

    private static int intValue(JsonNode v, String key) {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new IllegalArgumentException("'" + key + "' must be an integer, got " + v);
        }
        return v.intValue();
    }

    private static double optDouble(JsonNode root, String key, double def) {
        JsonNode v = root.get(key);
        return v == null || v.isNull() ? def : number(v, key);
    }

    private static double number(JsonNode v, String key) {
        if (!v.isNumber()) {
            throw new IllegalArgumentException("'" + key + "' must be a number, got " + v);
        }
        return v.doubleValue();
    }

    private static boolean optBool(JsonNode root, String key, boolean def) {
        JsonNode v = root.get(key);
        if (v == null || v.isNull()) {
            return def;
        }
        if (!v.isBoolean()) {
            throw new IllegalArgumentException("'" + key + "' must be true or false, got " + v);
        }
        return v.booleanValue();
    }

    private static String optText(JsonNode root, String key, String def) {
        JsonNode v = root.get(key);
        return v == null || v.isNull() ? def : v.asText();
    }

    private static String pretty(JsonNode n) {
        try {
            return JSON.writer(SerializationFeature.INDENT_OUTPUT).writeValueAsString(n);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---------------------------------------------------------------- creating

    /**
     * A fresh config for a model created from scratch (RoPE theta 10000 for llama, 1e6 for Qwen; eps 1e-6;
     * 4096 positions); its {@link #toJson()} loads in transformers.
     *
     * @param modelType    {@code qwen2}, {@code qwen3} or {@code llama}
     * @param vocab        V
     * @param hidden       H
     * @param intermediate I
     * @param layers       decoder layers
     * @param heads        query heads
     * @param kvHeads      key/value heads (divides heads)
     * @param headDim      D
     * @param tied         tie the output projection to the input embedding
     * @return the config
     */
    public static ModelConfig of(String modelType, int vocab, int hidden, int intermediate, int layers, int heads,
                                 int kvHeads, int headDim, boolean tied) {
        return of(modelType, vocab, hidden, intermediate, layers, heads, kvHeads, headDim, tied,
                modelType.equals("llama") ? 10000.0 : 1_000_000.0, 1e-6, 4096);
    }

    /**
     * As {@link #of(String, int, int, int, int, int, int, int, boolean)} with RoPE theta, eps and max positions.
     *
     * @param modelType             {@code qwen2}, {@code qwen3} or {@code llama}
     * @param vocab                 V
     * @param hidden                H
     * @param intermediate          I
     * @param layers                decoder layers
     * @param heads                 query heads
     * @param kvHeads               key/value heads (divides heads)
     * @param headDim               D
     * @param tied                  tie the output projection to the input embedding
     * @param ropeTheta             RoPE base
     * @param rmsNormEps            eps of every RMSNorm
     * @param maxPositionEmbeddings context length
     * @return the config
     */
    public static ModelConfig of(String modelType, int vocab, int hidden, int intermediate, int layers, int heads,
                                 int kvHeads, int headDim, boolean tied, double ropeTheta, double rmsNormEps,
                                 int maxPositionEmbeddings) {
        String arch = switch (modelType) {
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            case "llama" -> "LlamaForCausalLM";
            default -> throw new IllegalArgumentException("model_type '" + modelType
                    + "' is not a supported decoder; supported: " + String.join(", ", SUPPORTED_TYPES));
        };
        ObjectNode n = JSON.createObjectNode();
        n.putArray("architectures").add(arch);
        n.put("model_type", modelType);
        n.put("vocab_size", vocab);
        n.put("hidden_size", hidden);
        n.put("intermediate_size", intermediate);
        n.put("num_hidden_layers", layers);
        n.put("num_attention_heads", heads);
        n.put("num_key_value_heads", kvHeads);
        n.put("head_dim", headDim);
        n.put("hidden_act", "silu");
        n.put("rms_norm_eps", rmsNormEps);
        n.put("max_position_embeddings", maxPositionEmbeddings);
        // Both spellings: transformers < 5 reads rope_theta, transformers 5 reads rope_parameters.
        n.put("rope_theta", ropeTheta);
        ObjectNode rp = n.putObject("rope_parameters");
        rp.put("rope_theta", ropeTheta);
        rp.put("rope_type", "default");
        n.put("tie_word_embeddings", tied);
        if (!modelType.equals("qwen2")) {
            n.put("attention_bias", false);
        }
        if (modelType.equals("llama")) {
            n.put("mlp_bias", false);
        }
        n.put("attention_dropout", 0.0);
        n.put("initializer_range", 0.02);
        n.put("use_cache", true);
        n.put("torch_dtype", "float32");
        n.put("dtype", "float32");
        return parse(pretty(n), "ModelConfig.of(" + modelType + ")");
    }

    /** This config with one key of the raw JSON replaced (re-parsed, so the typed fields follow). */
    private ModelConfig withRaw(String key, JsonNode value) {
        try {
            ObjectNode n = (ObjectNode) JSON.readTree(rawJson);
            n.set(key, value);
            return parse(pretty(n), "config with " + key + "=" + value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * This config with another vocabulary size (e.g. after adding tokens).
     *
     * @param vocabSize the new V
     * @return the new config (its JSON updated too)
     */
    public ModelConfig withVocabSize(int vocabSize) {
        return withRaw("vocab_size", JSON.getNodeFactory().numberNode(vocabSize));
    }

    /**
     * This config with another number of layers (e.g. a truncated test model).
     *
     * @param numLayers the new layer count
     * @return the new config (its JSON updated too)
     */
    public ModelConfig withNumLayers(int numLayers) {
        return withRaw("num_hidden_layers", JSON.getNodeFactory().numberNode(numLayers));
    }

    // ---------------------------------------------------------------- derived

    /** {@return config.json to save with a checkpoint: the JSON as read (unknown keys kept), pretty-printed} */
    public String toJson() {
        return rawJson + "\n";
    }

    /**
     * Writes {@link #toJson()} to {@code dir/config.json}.
     *
     * @param dir the model directory
     */
    public void save(Path dir) {
        Path file = dir.resolve("config.json");
        try {
            Files.createDirectories(dir);
            Path tmp = dev.rlsr.engine.io.TempFiles.newFile(dir, "config.json");
            try {
                Files.writeString(tmp, toJson(), StandardCharsets.UTF_8);
                Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new CheckpointException("cannot write " + file + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
    }

    /** {@return query heads per key/value head (GQA group size)} */
    public int kvGroups() {
        return numHeads / numKvHeads;
    }

    /** {@return 1 / sqrt(headDim), the softmax scale of attention scores} */
    public double attentionScale() {
        return 1.0 / Math.sqrt(headDim);
    }

    /**
     * RoPE inverse frequencies, as transformers computes them: {@code 1 / theta^(2i/D)}, divided by the
     * factor for "linear", and for "llama3" (transformers' _compute_llama3_parameters) divided by the factor for
     * wavelengths longer than original/low_freq_factor, kept for wavelengths shorter than
     * original/high_freq_factor, and smoothly interpolated in between. Computed in double, returned as float.
     *
     * @return (D/2) inverse frequencies
     */
    public float[] ropeInvFreq() {
        int half = headDim / 2;
        float[] out = new float[half];
        RopeScaling s = ropeScaling;
        for (int i = 0; i < half; i++) {
            double inv = 1.0 / Math.pow(ropeTheta, (2.0 * i) / headDim);
            switch (s.type()) {
                case "linear" -> inv = inv / s.factor();
                case "llama3" -> {
                    double orig = s.originalMaxPositionEmbeddings();
                    double lowWavelen = orig / s.lowFreqFactor();
                    double highWavelen = orig / s.highFreqFactor();
                    double wavelen = 2 * Math.PI / inv;
                    if (wavelen > lowWavelen) {
                        inv = inv / s.factor();
                    } else if (wavelen >= highWavelen) {
                        double smooth = (orig / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                        inv = (1 - smooth) * inv / s.factor() + smooth * inv;
                    }
                }
                default -> { }
            }
            out[i] = (float) inv;
        }
        return out;
    }

    /**
     * Every parameter of this architecture with its shape, in transformers' order ({@code named_parameters()}):
     * embeddings, then per layer q/k/v/o (weight then bias), q_norm/k_norm (qwen3), gate/up/down, the two norms,
     * then model.norm and lm_head (untied only). Linear weights are (out, in).
     *
     * @return name to shape, in order
     */
    public LinkedHashMap<String, long[]> parameterShapes() {
        long h = hiddenSize, inter = intermediateSize, v = vocabSize, d = headDim;
        long q = (long) numHeads * headDim, kv = (long) numKvHeads * headDim;
        LinkedHashMap<String, long[]> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", new long[]{v, h});
        for (int l = 0; l < numLayers; l++) {
            String p = "model.layers." + l + ".";
            linear(m, p + "self_attn.q_proj", q, h, qkvBias);
            linear(m, p + "self_attn.k_proj", kv, h, qkvBias);
            linear(m, p + "self_attn.v_proj", kv, h, qkvBias);
            linear(m, p + "self_attn.o_proj", h, q, oBias);
            if (qkNorm) {
                m.put(p + "self_attn.q_norm.weight", new long[]{d});
                m.put(p + "self_attn.k_norm.weight", new long[]{d});
            }
            linear(m, p + "mlp.gate_proj", inter, h, mlpBias);
            linear(m, p + "mlp.up_proj", inter, h, mlpBias);
            linear(m, p + "mlp.down_proj", h, inter, mlpBias);
            m.put(p + "input_layernorm.weight", new long[]{h});
            m.put(p + "post_attention_layernorm.weight", new long[]{h});
        }
        m.put("model.norm.weight", new long[]{h});
        if (!tieWordEmbeddings) {
            m.put("lm_head.weight", new long[]{v, h});
        }
        return m;
    }

    private static void linear(LinkedHashMap<String, long[]> m, String name, long out, long in, boolean bias) {
        m.put(name + ".weight", new long[]{out, in});
        if (bias) {
            m.put(name + ".bias", new long[]{out});
        }
    }

    /** {@return the total number of parameters} */
    public long numParameters() {
        long n = 0;
        for (long[] s : parameterShapes().values()) {
            long k = 1;
            for (long x : s) {
                k *= x;
            }
            n += k;
        }
        return n;
    }
}
