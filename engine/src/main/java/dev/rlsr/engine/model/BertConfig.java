package dev.rlsr.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.engine.io.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;

/**
 * A BERT-family encoder's Hugging Face {@code config.json} ({@code model_type} bert: BERT, MiniLM, BGE, E5).
 *
 * <p>Shapes: C = hiddenSize, F = intermediateSize, V = vocabSize, P = maxPositionEmbeddings, Y = typeVocabSize,
 * H = numHeads, D = C / H.
 *
 * @param vocabSize             V
 * @param hiddenSize            C
 * @param numLayers             encoder layers
 * @param numHeads              H (divides C)
 * @param intermediateSize      F, the MLP width
 * @param maxPositionEmbeddings P, the longest input in tokens
 * @param typeVocabSize         Y, token type ids
 * @param layerNormEps          eps of every LayerNorm
 * @param hiddenAct             only {@code gelu} (the exact erf form) is supported: every checkpoint of the family
 *                              uses it
 */
public record BertConfig(int vocabSize, int hiddenSize, int numLayers, int numHeads, int intermediateSize,
                         int maxPositionEmbeddings, int typeVocabSize, double layerNormEps, String hiddenAct) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Checks every size and the activation, naming the config.json key that is wrong. */
    public BertConfig {
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("num_hidden_layers", numLayers);
        positive("num_attention_heads", numHeads);
        positive("intermediate_size", intermediateSize);
        positive("max_position_embeddings", maxPositionEmbeddings);
        positive("type_vocab_size", typeVocabSize);
        if (hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                    + numHeads);
        }
        if (!(layerNormEps > 0) || !Double.isFinite(layerNormEps)) {
            throw new IllegalArgumentException("layer_norm_eps must be positive, got " + layerNormEps);
        }
        if (!"gelu".equals(hiddenAct)) {
            throw new IllegalArgumentException("hidden_act '" + hiddenAct + "' is not supported; the BERT encoder "
                    + "implements 'gelu' (exact erf form), which BERT, MiniLM, BGE and E5 use");
        }
    }

    private static void positive(String key, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(key + " must be positive, got " + v);
        }
    }

    /** {@return D = C / H, the size of one head} */
    public int headDim() {
        return hiddenSize / numHeads;
    }

    /**
     * Reads {@code config.json} from a model directory (or the file itself).
     *
     * @param dirOrFile a model directory or a config.json path
     * @return the config
     * @throws CheckpointException naming the file when it is missing, unreadable or not a BERT config
     */
    public static BertConfig load(Path dirOrFile) {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("config.json") : dirOrFile;
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new CheckpointException("cannot read BERT config " + file + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException(file + ": config must be a JSON object");
        }
        String type = root.path("model_type").asText("");
        if (!type.equals("bert")) {
            throw new CheckpointException(file + ": model_type '" + type + "' is not a BERT encoder (expected 'bert')");
        }
        try {
            return new BertConfig(required(root, "vocab_size", file), required(root, "hidden_size", file),
                    required(root, "num_hidden_layers", file), required(root, "num_attention_heads", file),
                    required(root, "intermediate_size", file), root.path("max_position_embeddings").asInt(512),
                    root.path("type_vocab_size").asInt(2), root.path("layer_norm_eps").asDouble(1e-12),
                    root.path("hidden_act").asText("gelu"));
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file + ": " + e.getMessage(), e);
        }
    }

    private static int required(JsonNode root, String key, Path file) {
        JsonNode v = root.get(key);
        if (v == null || !v.canConvertToInt()) {
            throw new CheckpointException(file + ": missing or non-integer key '" + key + "'");
        }
        return v.asInt();
    }

    /** {@return the parameter names (HF {@code BertModel}, no {@code bert.} prefix, no pooler) and shapes, in HF order} */
    public LinkedHashMap<String, long[]> parameterShapes() {
        long c = hiddenSize, f = intermediateSize;
        LinkedHashMap<String, long[]> m = new LinkedHashMap<>();
        m.put("embeddings.word_embeddings.weight", new long[]{vocabSize, c});
        m.put("embeddings.position_embeddings.weight", new long[]{maxPositionEmbeddings, c});
        m.put("embeddings.token_type_embeddings.weight", new long[]{typeVocabSize, c});
        m.put("embeddings.LayerNorm.weight", new long[]{c});
        m.put("embeddings.LayerNorm.bias", new long[]{c});
        for (int l = 0; l < numLayers; l++) {
            String p = "encoder.layer." + l + ".";
            for (String s : new String[]{"attention.self.query", "attention.self.key", "attention.self.value",
                    "attention.output.dense"}) {
                m.put(p + s + ".weight", new long[]{c, c});
                m.put(p + s + ".bias", new long[]{c});
            }
            m.put(p + "attention.output.LayerNorm.weight", new long[]{c});
            m.put(p + "attention.output.LayerNorm.bias", new long[]{c});
            m.put(p + "intermediate.dense.weight", new long[]{f, c});
            m.put(p + "intermediate.dense.bias", new long[]{f});
            m.put(p + "output.dense.weight", new long[]{c, f});
            m.put(p + "output.dense.bias", new long[]{c});
            m.put(p + "output.LayerNorm.weight", new long[]{c});
            m.put(p + "output.LayerNorm.bias", new long[]{c});
        }
        return m;
    }
}
