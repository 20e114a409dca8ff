package dev.rlsr.engine.model;

import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.optim.ParamLayout;
import dev.rlsr.engine.optim.ParamStore;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.kernels.DType;
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
    private final ParamStore store;
    private final DType act;
    private final Tensor wordEmb, posEmb, typeEmb;
    private final Norm embLn;
    private final Layer[] layers;
    private final float eps;
    private Activations acts;
    private boolean closed;

    private BertModel(BertConfig config, Backend backend, Precision precision, Map<String, float[]> values) {
        this.config = config;
        this.backend = backend;
        this.eps = (float) config.layerNormEps();
        for (Map.Entry<String, long[]> e : config.parameterShapes().entrySet()) {
            if (values.get(e.getKey()) == null) {
                throw new CheckpointException("BERT weights lack '" + e.getKey() + "'");
            }
        }
        // frozen (an encoder is never trained here): one flat buffer of compute weights, no gradients
        this.store = ParamStore.allocate(backend, ParamLayout.of(config.parameterShapes(), name -> false),
                precision, false);
        this.act = store.precision().compute();
        for (Map.Entry<String, long[]> e : config.parameterShapes().entrySet()) {
            backend.upload(values.get(e.getKey()), store.compute(e.getKey()));
        }
        wordEmb = param("embeddings.word_embeddings.weight");
        posEmb = param("embeddings.position_embeddings.weight");
        typeEmb = param("embeddings.token_type_embeddings.weight");
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

    private Tensor param(String name) {
        return store.compute(name);
    }

    private Lin lin(String prefix) {
        return new Lin(param(prefix + ".weight"), param(prefix + ".bias"));
    }

    private Norm norm(String prefix) {
        return new Norm(param(prefix + ".weight"), param(prefix + ".bias"));
    }

    // ================================================================== loading

    /**
     * Loads an HF BERT directory: {@code config.json} (model_type bert) and safetensors whose names may carry the
     * {@code bert.} prefix (BertForXxx checkpoints) or not (BertModel, sentence-transformers); old TF-converted
     * LayerNorm names ({@code gamma}/{@code beta}) are accepted. The pooler and heads are ignored.
     *
     * @param dir     the model directory
     * @param backend where the parameters live, in its default precision
     * @return the model
     * @throws CheckpointException naming the file or tensor when the directory is incomplete or inconsistent
     */
    public static BertModel load(Path dir, Backend backend) {
        return load(dir, backend, backend.defaultPrecision());
    }

    /**
     * {@link #load(Path, Backend)} in a given precision (a bf16 device backend can hold an fp32 encoder, and the
     * reverse).
     *
     * @param dir       the model directory
     * @param backend   where the parameters live
     * @param precision the dtype of weights and activations
     * @return the model
     * @throws CheckpointException naming the file or tensor when the directory is incomplete or inconsistent
     */
    public static BertModel load(Path dir, Backend backend, Precision precision) {
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
        return new BertModel(cfg, backend, precision, values);
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
     * @param backend where the parameters live, in its default precision
     * @return the model
     */
    public static BertModel fromWeights(BertConfig config, Map<String, float[]> weights, Backend backend) {
        return fromWeights(config, weights, backend, backend.defaultPrecision());
    }

    /**
     * {@link #fromWeights(BertConfig, Map, Backend)} in a given precision.
     *
     * @param config    the architecture
     * @param weights   every parameter by name
     * @param backend   where the parameters live
     * @param precision the dtype of weights and activations
     * @return the model
     */
    public static BertModel fromWeights(BertConfig config, Map<String, float[]> weights, Backend backend,
                                        Precision precision) {
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
        return new BertModel(config, backend, precision, weights);
    }

    /** {@return the architecture} */
    public BertConfig config() {
        return config;
    }

    /** {@return the backend that holds the parameters} */
    public Backend backend() {
        return backend;
    }

    /** {@return the dtype of the weights, the activations and the embeddings of {@link #pool}} */
    public DType dtype() {
        return act;
    }

    /** {@return the parameters by HF name (no prefix), in HF order (views of one flat buffer)} */
    public Map<String, Tensor> parameters() {
        return store.compute();
    }

    // ================================================================== forward

    /** Buffers of one (B,T) forward; reused while the geometry repeats, replaced when it changes. */
    private final class Activations implements AutoCloseable {
        final int B, T;
        final Tensor x, tmp, q, k, v, att, inter, pooled;
        final Tensor ids, mask, positions, types, clsRows;     // I32

        Activations(int B, int T) {
            this.B = B;
            this.T = T;
            int N = B * T, C = config.hiddenSize();
            x = backend.zeros(act, N, C);
            tmp = backend.zeros(act, N, C);
            q = backend.zeros(act, N, C);
            k = backend.zeros(act, N, C);
            v = backend.zeros(act, N, C);
            att = backend.zeros(act, N, C);
            inter = backend.zeros(act, N, config.intermediateSize());
            pooled = backend.zeros(act, B, C);
            int[] pos = new int[N];
            int[] cls = new int[B];
            for (int i = 0; i < N; i++) {
                pos[i] = i % T;
            }
            for (int b = 0; b < B; b++) {
                cls[b] = b * T;
            }
            ids = backend.zeros(DType.I32, N);
            mask = backend.zeros(DType.I32, N);
            positions = backend.upload(pos, N);
            types = backend.zeros(DType.I32, N);
            clsRows = backend.upload(cls, B);
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[]{x, tmp, q, k, v, att, inter, pooled, ids, mask, positions, types, clsRows}) {
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
        int vocab = config.vocabSize();
        for (int i = 0; i < inputIds.length; i++) {
            if (inputIds[i] < 0 || inputIds[i] >= vocab) {
                throw new IllegalArgumentException("token id " + inputIds[i] + " at position " + i
                        + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
        backend.upload(inputIds, a.ids);
        Tensor keyMask = null;
        if (attentionMask != null) {
            backend.upload(attentionMask, a.mask);
            keyMask = a.mask;
        }
        // embeddings: LN(word + position + token type 0)
        backend.embedding(a.ids, wordEmb, a.x);
        backend.embedding(a.positions, posEmb, a.tmp);
        backend.add(a.x, a.tmp, a.x);
        backend.embedding(a.types, typeEmb, a.tmp);
        backend.add(a.x, a.tmp, a.x);
        backend.layerNorm(a.x, embLn.w, embLn.b, eps, a.x);
        AttentionShape shape = AttentionShape.selfAttention(batch, T, config.numHeads(), config.numHeads(),
                config.headDim());
        for (Layer ly : layers) {
            backend.linear(a.x, ly.q.w, ly.q.b, null, a.q);
            backend.linear(a.x, ly.k.w, ly.k.b, null, a.k);
            backend.linear(a.x, ly.v.w, ly.v.b, null, a.v);
            backend.bidirectionalAttention(a.q, a.k, a.v, a.att, shape, keyMask);
            // x = LN(x + O att): the residual rides in the projection's epilogue
            backend.linear(a.att, ly.o.w, ly.o.b, a.x, a.tmp);
            backend.layerNorm(a.tmp, ly.ln1.w, ly.ln1.b, eps, a.x);
            // x = LN(x + W2 gelu(W1 x))
            backend.linear(a.x, ly.inter.w, ly.inter.b, null, a.inter);
            backend.gelu(a.inter, a.inter);
            backend.linear(a.inter, ly.out.w, ly.out.b, a.x, a.tmp);
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
        forward(batch, inputIds, attentionMask);
        Activations a = acts;
        int C = config.hiddenSize();
        poolInto(attentionMask != null, pooling, normalize, a.pooled);
        float[] flat = backend.download(a.pooled);
        float[][] out = new float[batch][C];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(flat, b * C, out[b], 0, C);
        }
        return out;
    }

    /**
     * {@link #embed} without the copy to the host: the sentence embeddings of a right-padded batch are written into
     * {@code out (B,C)}, a tensor of this model's backend and {@link #dtype()} (e.g. a row range of a larger
     * buffer), and stay there. Asynchronous on a device backend.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param attentionMask (B,T), 1 = token, 0 = padding; null = no padding
     * @param pooling       mean or CLS pooling
     * @param normalize     L2-normalise each embedding
     * @param out           (B,C), written
     */
    public void pool(int batch, int[] inputIds, int[] attentionMask, BertPooling pooling, boolean normalize,
                     Tensor out) {
        if (out.dtype() != act || out.numel() != (long) batch * config.hiddenSize()) {
            throw new IllegalArgumentException("pooled output " + out + " must be " + act + " with B*C = " + batch
                    + "*" + config.hiddenSize() + " elements");
        }
        forward(batch, inputIds, attentionMask);
        poolInto(attentionMask != null, pooling, normalize, out);
    }

    private void poolInto(boolean masked, BertPooling pooling, boolean normalize, Tensor out) {
        Activations a = acts;
        if (pooling == BertPooling.MEAN) {
            backend.meanPool(a.x, masked ? a.mask : null, out);
        } else {
            backend.gatherRows(a.x, a.clsRows, out);
        }
        if (normalize) {
            backend.l2NormalizeRows(out, 1e-12f);
        }
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
        store.close();
    }
}
