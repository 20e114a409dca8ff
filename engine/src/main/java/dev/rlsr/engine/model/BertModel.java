package dev.rlsr.engine.model;

import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A BERT-family encoder (HF {@code BertModel} without the pooler: BERT, MiniLM, BGE, E5), forward only, written
 * against {@link Backend} so it runs on every backend, plus sentence-transformers pooling and normalisation.
 *
 * <p>Legend: B batch, T sequence length, N = B*T rows, C hidden, H heads, D = C/H, F intermediate size.
 * Token ids and the attention mask are host {@code int[]} laid out (B,T), right padding (1 = token, 0 = padding);
 * positions are 0..T-1 in every row and token types 0, as HF computes them for single sentences.
 *
 * <p>Post-LN blocks: {@code x = LN(x + O(attn(Qx, Kx, Vx)))}, {@code x = LN(x + W2 gelu(W1 x))}, attention
 * bidirectional with padded keys masked. Padded query positions are computed like HF does (they attend to the
 * real tokens), so {@link #forward} matches HF's {@code last_hidden_state} everywhere, not only where the mask is 1.
 *
 * <p>Not thread-safe (activation buffers are reused); one caller at a time, the backend parallelises inside each op.
 */
public final class BertModel implements AutoCloseable {

    private record Lin(Tensor w, Tensor b) {}

    private record Norm(Tensor w, Tensor b) {}

    private record Layer(Lin q, Lin k, Lin v, Lin o, Norm ln1, Lin inter, Lin out, Norm ln2) {}

    private final BertConfig config;
    private final Backend backend;
    private final LinkedHashMap<String, Tensor> params = new LinkedHashMap<>();
    private final Tensor wordEmb, posEmb, typeEmb;
    private final Norm embLn;
    private final Layer[] layers;
    private final float eps;
    private Activations acts;
    private boolean closed;

    private BertModel(BertConfig config, Backend backend, Map<String, float[]> values) {
        this.config = config;
        this.backend = backend;
        this.eps = (float) config.layerNormEps();
        for (Map.Entry<String, long[]> e : config.parameterShapes().entrySet()) {
            float[] data = values.get(e.getKey());
            if (data == null) {
                params.values().forEach(Tensor::close);
                throw new CheckpointException("BERT weights lack '" + e.getKey() + "'");
            }
            params.put(e.getKey(), backend.upload(data, e.getValue()));
        }
        wordEmb = params.get("embeddings.word_embeddings.weight");
        posEmb = params.get("embeddings.position_embeddings.weight");
        typeEmb = params.get("embeddings.token_type_embeddings.weight");
        embLn = norm("embeddings.LayerNorm");
        layers = new Layer[config.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "encoder.layer." + l + ".";
            layers[l] = new Layer(lin(p + "attention.self.query"), lin(p + "attention.self.key"),
                    lin(p + "attention.self.value"), lin(p + "attention.output.dense"),
                    norm(p + "attention.output.LayerNorm"), lin(p + "intermediate.dense"), lin(p + "output.dense"),
                    norm(p + "output.LayerNorm"));
        }
    }

    private Lin lin(String prefix) {
        return new Lin(params.get(prefix + ".weight"), params.get(prefix + ".bias"));
    }

    private Norm norm(String prefix) {
        return new Norm(params.get(prefix + ".weight"), params.get(prefix + ".bias"));
    }

    // ================================================================== loading

    /**
     * Loads an HF BERT directory: {@code config.json} (model_type bert) and safetensors whose names may carry the
     * {@code bert.} prefix (BertForXxx checkpoints) or not (BertModel, sentence-transformers); old TF-converted
     * LayerNorm names ({@code gamma}/{@code beta}) are accepted. The pooler and heads are ignored.
     *
     * @param dir     the model directory
     * @param backend where the parameters live
     * @return the model
     * @throws CheckpointException naming the file or tensor when the directory is incomplete or inconsistent
     */
    public static BertModel load(Path dir, Backend backend) {
        BertConfig cfg = BertConfig.load(dir);
        Map<String, float[]> values = new LinkedHashMap<>();
        try (SafeTensors st = SafeTensors.open(dir)) {
            for (Map.Entry<String, long[]> e : cfg.parameterShapes().entrySet()) {
                String found = null;
                for (String candidate : aliases(e.getKey())) {
                    if (st.contains(candidate)) {
                        found = candidate;
                        break;
                    }
                }
                if (found == null) {
                    throw new CheckpointException("BERT checkpoint " + dir + " has no tensor '" + e.getKey()
                            + "' (also looked for the 'bert.' prefix and LayerNorm gamma/beta names)");
                }
                values.put(e.getKey(), st.floats(found, e.getValue()));
            }
        }
        return new BertModel(cfg, backend, values);
    }

    private static String[] aliases(String name) {
        String old = name.endsWith("LayerNorm.weight") ? name.replace("LayerNorm.weight", "LayerNorm.gamma")
                : name.endsWith("LayerNorm.bias") ? name.replace("LayerNorm.bias", "LayerNorm.beta") : name;
        return new String[]{name, "bert." + name, old, "bert." + old};
    }

    /**
     * A model from weights already in memory, named as {@link BertConfig#parameterShapes()} (no prefix; linear
     * weights (out,in) as torch); each array must hold exactly the shape's element count.
     *
     * @param config  the architecture
     * @param weights every parameter by name
     * @param backend where the parameters live
     * @return the model
     */
    public static BertModel fromWeights(BertConfig config, Map<String, float[]> weights, Backend backend) {
        for (Map.Entry<String, long[]> e : config.parameterShapes().entrySet()) {
            float[] w = weights.get(e.getKey());
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            if (w == null) {
                throw new IllegalArgumentException("BERT weights lack '" + e.getKey() + "'");
            }
            if (w.length != n) {
                throw new IllegalArgumentException("BERT weight '" + e.getKey() + "' has " + w.length
                        + " values, its shape " + Tensor.describe(e.getValue()) + " needs " + n);
            }
        }
        return new BertModel(config, backend, weights);
    }

    /** {@return the architecture} */
    public BertConfig config() {
        return config;
    }

    /** {@return the backend that holds the parameters} */
    public Backend backend() {
        return backend;
    }

    /** {@return the parameters by HF name (no prefix), in HF order} */
    public Map<String, Tensor> parameters() {
        return Collections.unmodifiableMap(params);
    }

    // ================================================================== forward

    /** Buffers of one (B,T) forward; reused while the geometry repeats, replaced when it changes. */
    private final class Activations implements AutoCloseable {
        final int B, T;
        final Tensor x, tmp, q, k, v, att, inter, pooled;
        final int[] positions, types;

        Activations(int B, int T) {
            this.B = B;
            this.T = T;
            int N = B * T, C = config.hiddenSize();
            x = backend.zeros(N, C);
            tmp = backend.zeros(N, C);
            q = backend.zeros(N, C);
            k = backend.zeros(N, C);
            v = backend.zeros(N, C);
            att = backend.zeros(N, C);
            inter = backend.zeros(N, config.intermediateSize());
            pooled = backend.zeros(B, C);
            positions = new int[N];
            types = new int[N];
            for (int i = 0; i < N; i++) {
                positions[i] = i % T;
            }
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[]{x, tmp, q, k, v, att, inter, pooled}) {
                t.close();
            }
        }
    }

    private Activations activations(int B, int T) {
        if (acts == null || acts.B != B || acts.T != T) {
            if (acts != null) {
                acts.close();
            }
            acts = new Activations(B, T);
        }
        return acts;
    }

    /**
     * {@code last_hidden_state (B,T,C)} for {@code inputIds (B,T)}; a model-owned buffer valid until the next
     * call.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param attentionMask (B,T), 1 = token, 0 = padding; null = no padding
     * @return the last hidden states (B,T,C)
     */
    public Tensor forward(int batch, int[] inputIds, int[] attentionMask) {
        checkOpen();
        if (batch < 1 || inputIds.length == 0 || inputIds.length % batch != 0) {
            throw new IllegalArgumentException("input ids (" + inputIds.length + " values) are not a (B,T) batch with B = "
                    + batch);
        }
        if (attentionMask != null && attentionMask.length != inputIds.length) {
            throw new IllegalArgumentException("attention mask has " + attentionMask.length + " values, input ids "
                    + inputIds.length);
        }
        int T = inputIds.length / batch;
        if (T > config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("sequence length " + T + " exceeds the " + config.maxPositionEmbeddings()
                    + " positions of this BERT model; truncate the input");
        }
        Activations a = activations(batch, T);
        // embeddings: LN(word + position + token type 0)
        backend.embedding(inputIds, wordEmb, a.x);
        backend.embedding(a.positions, posEmb, a.tmp);
        backend.add(a.x, a.tmp, a.x);
        backend.embedding(a.types, typeEmb, a.tmp);
        backend.add(a.x, a.tmp, a.x);
        backend.layerNorm(a.x, embLn.w, embLn.b, eps, a.x);
        AttentionShape shape = AttentionShape.selfAttention(batch, T, config.numHeads(), config.numHeads(),
                config.headDim());
        for (Layer ly : layers) {
            backend.linear(a.x, ly.q.w, ly.q.b, a.q, false);
            backend.linear(a.x, ly.k.w, ly.k.b, a.k, false);
            backend.linear(a.x, ly.v.w, ly.v.b, a.v, false);
            backend.bidirectionalAttention(a.q, a.k, a.v, a.att, shape, attentionMask);
            // x = LN(x + O att): the residual is copied first so the projection accumulates onto it
            backend.copy(a.x, a.tmp);
            backend.linear(a.att, ly.o.w, ly.o.b, a.tmp, true);
            backend.layerNorm(a.tmp, ly.ln1.w, ly.ln1.b, eps, a.x);
            // x = LN(x + W2 gelu(W1 x))
            backend.linear(a.x, ly.inter.w, ly.inter.b, a.inter, false);
            backend.gelu(a.inter, a.inter);
            backend.copy(a.x, a.tmp);
            backend.linear(a.inter, ly.out.w, ly.out.b, a.tmp, true);
            backend.layerNorm(a.tmp, ly.ln2.w, ly.ln2.b, eps, a.x);
        }
        return a.x;
    }

    /**
     * Sentence embeddings {@code (B,C)} of a right-padded batch: {@link #forward}, then pooling (mean over the
     * mask, or the [CLS] row) and, with {@code normalize}, L2 normalisation ({@code x / max(||x||, 1e-12)}).
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param attentionMask (B,T), 1 = token, 0 = padding; null = no padding
     * @param pooling       mean or CLS pooling
     * @param normalize     L2-normalise each embedding
     * @return one embedding per row
     */
    public float[][] embed(int batch, int[] inputIds, int[] attentionMask, BertPooling pooling, boolean normalize) {
        Tensor hidden = forward(batch, inputIds, attentionMask);
        Activations a = acts;
        int T = a.T, C = config.hiddenSize();
        if (pooling == BertPooling.MEAN) {
            backend.meanPool(hidden, attentionMask, a.pooled);
        } else {
            int[] rows = new int[batch];
            for (int b = 0; b < batch; b++) {
                rows[b] = b * T;
            }
            backend.gatherRows(hidden, rows, a.pooled);
        }
        if (normalize) {
            backend.l2NormalizeRows(a.pooled, 1e-12f);
        }
        float[] flat = backend.download(a.pooled);
        float[][] out = new float[batch][C];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(flat, b * C, out[b], 0, C);
        }
        return out;
    }

    /** Frees the activation buffers (they are rebuilt on the next forward). */
    public void releaseActivations() {
        if (acts != null) {
            acts.close();
            acts = null;
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("BERT model is closed");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        releaseActivations();
        params.values().forEach(Tensor::close);
    }
}
