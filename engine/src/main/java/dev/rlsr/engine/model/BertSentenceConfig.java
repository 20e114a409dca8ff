package dev.rlsr.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.engine.io.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The sentence-transformers modules of a BERT model directory: the pooling of {@code 1_Pooling/config.json} (or
 * the Pooling module named in {@code modules.json}), whether a {@code Normalize} module follows, and
 * {@code max_seq_length} of {@code sentence_bert_config.json}.
 *
 * @param pooling      mean or CLS pooling
 * @param normalize    L2-normalise the pooled embedding
 * @param maxSeqLength truncation length in word pieces, [CLS] and [SEP] included; 0 when the directory does not
 *                     say (callers then use the position table's size)
 */
public record BertSentenceConfig(BertPooling pooling, boolean normalize, int maxSeqLength) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Checks that a pooling is given and the length is not negative. */
    public BertSentenceConfig {
        if (pooling == null) {
            throw new IllegalArgumentException("pooling must be given (MEAN or CLS)");
        }
        if (maxSeqLength < 0) {
            throw new IllegalArgumentException("max_seq_length must be >= 0 (0 = not set), got " + maxSeqLength);
        }
    }

    /**
     * Reads the modules of {@code dir}. A directory without sentence-transformers files gets mean pooling, no
     * normalisation and no length (a plain HF BERT checkpoint).
     *
     * @param dir the model directory
     * @return the modules' settings
     */
    public static BertSentenceConfig load(Path dir) {
        boolean normalize = false;
        Path poolingDir = dir.resolve("1_Pooling");
        Path modules = dir.resolve("modules.json");
        if (Files.isRegularFile(modules)) {
            JsonNode list = read(modules);
            for (JsonNode m : list) {
                String type = m.path("type").asText("");
                if (type.endsWith(".Normalize")) {
                    normalize = true;
                } else if (type.endsWith(".Pooling") && !m.path("path").asText("").isEmpty()) {
                    poolingDir = dir.resolve(m.path("path").asText());
                }
            }
        }
        BertPooling pooling = BertPooling.MEAN;
        Path poolingFile = poolingDir.resolve("config.json");
        if (Files.isRegularFile(poolingFile)) {
            JsonNode p = read(poolingFile);
            boolean mean = p.path("pooling_mode_mean_tokens").asBoolean(false);
            boolean cls = p.path("pooling_mode_cls_token").asBoolean(false);
            for (String other : new String[]{"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                    "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}) {
                if (p.path(other).asBoolean(false)) {
                    throw new CheckpointException(poolingFile + ": " + other + " is not supported (mean or CLS)");
                }
            }
            if (mean == cls) {
                throw new CheckpointException(poolingFile + ": exactly one of pooling_mode_mean_tokens and "
                        + "pooling_mode_cls_token must be true (concatenated poolings are not supported)");
            }
            pooling = cls ? BertPooling.CLS : BertPooling.MEAN;
        }
        int maxLen = 0;
        Path sb = dir.resolve("sentence_bert_config.json");
        if (Files.isRegularFile(sb)) {
            maxLen = read(sb).path("max_seq_length").asInt(0);
        }
        return new BertSentenceConfig(pooling, normalize, maxLen);
    }

    private static JsonNode read(Path f) {
        try {
            return JSON.readTree(f.toFile());
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + f + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
    }
}
