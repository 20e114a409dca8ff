package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.engine.tokenizer.HfTokenizer;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.kernels.DType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * The paper's "Qwen-EM" encoder: a Qwen3-Embedding checkpoint (a Qwen3 decoder) on the engine's
 * {@link DecoderModel}, with the Qwen3-Embedding recipe: the text (optionally behind an instruction,
 * {@code "Instruct: {task}\nQuery:{text}"}) is tokenized without special tokens, truncated to
 * {@code maxTokens - 1} tokens, {@code <|endoftext|>} is appended, and the embedding is the final-norm hidden state
 * at that last token (last-token pooling), L2-normalised.
 *
 * <p>Batches are left-padded so that every row's last position is its {@code <|endoftext|>}; position ids count
 * real tokens only ({@code clamp(cumsum(mask) - 1, 0)}), so a padded row computes what it computes alone (HF's
 * arange positions differ by a constant offset per row, which RoPE attention does not see, up to rounding).
 * Texts are sorted by length (longest first) and run in batches of at most {@code batchSize}.
 *
 * <p>Loads checkpoint directories with {@code Qwen3ForCausalLM} or {@code Qwen3Model} weights (names with or
 * without {@code model.}; no lm_head needed) via {@link DecoderModel#loadBackbone}, on any backend and precision (the
 * CPU, or {@code CudaBackend} in fp32 or bf16); as a {@link DeviceEncoder} it can leave a batch's embeddings on the
 * device. Thread-safety: {@code embed} calls are serialised.
 */
public final class QwenEmbeddingEncoder implements DeviceEncoder {

    public static final String EOS_TOKEN = "<|endoftext|>";

    /**
     * @param batchSize   texts per model call inside one {@code embed}
     * @param maxTokens   longest input in tokens, the appended {@code <|endoftext|>} included; 0 = the model's
     *                    {@code max_position_embeddings} capped at 8192 (Qwen3-Embedding's documented maximum)
     * @param instruction task description for the query prefix, or null for none (documents are embedded without)
     */
    public record Config(int batchSize, int maxTokens, String instruction) {
        public Config {
            if (batchSize < 1) {
                throw new IllegalArgumentException("encoder batchSize must be at least 1, got " + batchSize);
            }
            if (maxTokens != 0 && maxTokens < 2) {
                throw new IllegalArgumentException("encoder maxTokens must be 0 (model default) or at least 2 (one text"
                        + " token and <|endoftext|>), got " + maxTokens);
            }
        }

        public static Config defaults() {
            return new Config(8, 0, null);
        }

        public Config withInstruction(String task) {
            return new Config(batchSize, maxTokens, task);
        }
    }

    private final String name;
    private final DecoderModel model;
    private final Tokenizer tokenizer;
    private final boolean ownsModel;
    private final int eosId;
    private final int maxTokens;
    private final Config config;
    private boolean closed;

    /**
     * Wraps a loaded model and tokenizer (both closed by {@link #close()} when {@code owns} is true).
     *
     * @throws IllegalArgumentException if the tokenizer has no {@code <|endoftext|>} token
     */
    public QwenEmbeddingEncoder(String name, DecoderModel model, Tokenizer tokenizer, Config config, boolean owns) {
        this.name = Objects.requireNonNull(name, "name");
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.config = Objects.requireNonNull(config, "config");
        this.ownsModel = owns;
        OptionalInt eos = tokenizer.tokenId(EOS_TOKEN);
        if (eos.isEmpty()) {
            throw new IllegalArgumentException("the tokenizer of " + name + " has no " + EOS_TOKEN
                    + " token, which Qwen3-Embedding pools on");
        }
        this.eosId = eos.getAsInt();
        int limit = model.config().maxPositionEmbeddings();
        this.maxTokens = config.maxTokens() > 0 ? config.maxTokens() : Math.min(limit, 8192);
        if (maxTokens > limit) {
            throw new IllegalArgumentException("maxTokens " + maxTokens + " exceeds the model's " + limit
                    + " positions");
        }
    }

    /** Loads a Qwen3-Embedding checkpoint directory (config.json, safetensors, tokenizer.json) on the CPU. */
    public static QwenEmbeddingEncoder load(Path dir) {
        return load(dir, Config.defaults(), CpuBackend.INSTANCE);
    }

    /** Loads a Qwen3-Embedding checkpoint directory on {@code backend} in its default precision. */
    public static QwenEmbeddingEncoder load(Path dir, Config config, Backend backend) {
        return load(dir, config, backend, backend.defaultPrecision());
    }

    /** Loads a Qwen3-Embedding checkpoint directory on {@code backend} in {@code precision} (fp32 or bf16). */
    public static QwenEmbeddingEncoder load(Path dir, Config config, Backend backend, Precision precision) {
        Objects.requireNonNull(dir, "model directory");
        Objects.requireNonNull(precision, "precision");
        DecoderModel model = DecoderModel.loadBackbone(dir, backend, precision);
        Tokenizer tok = null;
        try {
            tok = HfTokenizer.load(dir);
            return new QwenEmbeddingEncoder(dir.getFileName().toString(), model, tok, config, true);
        } catch (RuntimeException e) {
            model.close();
            if (tok != null) {
                tok.close();
            }
            throw e;
        }
    }

    /** The text the model sees: the instruction prefix of Qwen3-Embedding queries, when configured. */
    public String format(String text) {
        return config.instruction() == null ? text : "Instruct: " + config.instruction() + "\nQuery:" + text;
    }

    /** Token ids the model sees for {@code text}: prefix, truncation, then {@code <|endoftext|>}. */
    public int[] tokenIds(String text) {
        return finish(tokenizer.encode(format(Objects.requireNonNull(text, "text")), false));
    }

    private int[] finish(int[] ids) {
        int keep = Math.min(ids.length, maxTokens - 1);
        int[] out = Arrays.copyOf(ids, keep + 1);
        out[keep] = eosId;
        return out;
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
        List<String> formatted = new ArrayList<>(texts.size());
        for (String text : texts) {
            formatted.add(format(text));
        }
        int n = texts.size();
        List<int[]> raw = tokenizer.encodeBatch(formatted, false);
        int[][] ids = new int[n][];
        for (int i = 0; i < n; i++) {
            ids[i] = finish(raw.get(i));
        }
        Integer[] order = EncoderInputs.longestFirst(n, i -> ids[i].length);
        Backend be = model.backend();
        int C = model.config().hiddenSize();
        try (Tensor sorted = be.alloc(dtype(), n, C)) {     // (N,C), row k is text order[k]
            for (int start = 0; start < n; start += config.batchSize()) {
                int end = Math.min(n, start + config.batchSize());
                int b = end - start;
                int t = ids[order[start]].length;
                int[] batchIds = new int[b * t];    // (B,T) left-padded with <|endoftext|> (masked)
                int[] mask = new int[b * t];        // (B,T)
                int[] pos = new int[b * t];         // (B,T) clamp(cumsum(mask) - 1, 0)
                int[] last = new int[b];            // row index of each row's last position in (B*T)
                for (int k = 0; k < b; k++) {
                    int[] row = ids[order[start + k]];
                    int pad = t - row.length;
                    Arrays.fill(batchIds, k * t, k * t + pad, eosId);
                    for (int j = 0; j < row.length; j++) {
                        batchIds[k * t + pad + j] = row[j];
                        mask[k * t + pad + j] = 1;
                        pos[k * t + pad + j] = j;
                    }
                    last[k] = k * t + t - 1;
                }
                Tensor hidden = model.hiddenStates(b, batchIds, pos, mask);   // (B,T,C), model-owned
                Tensor pooled = sorted.view((long) start * C, b, C);          // this batch's rows of sorted
                try (Tensor lastRows = be.upload(last, b)) {
                    be.gatherRows(hidden, lastRows, pooled);
                    be.l2NormalizeRows(pooled, 1e-12f);
                }
            }
            return EncoderInputs.inInputOrder(be, sorted, order);
        }
    }

    public Config config() {
        return config;
    }

    @Override
    public Backend backend() {
        return model.backend();
    }

    @Override
    public DType dtype() {
        return model.precision().compute();
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
        return config.batchSize();
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (ownsModel) {
            try {
                model.close();
            } finally {
                tokenizer.close();
            }
        }
    }
}
