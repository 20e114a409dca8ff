package dev.rlsr.engine.model;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.io.SafeTensorsWriter;
import dev.rlsr.engine.optim.Parameterized;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A Qwen2 / Qwen3 / Llama decoder (pre-norm, RMSNorm, RoPE, GQA attention, SwiGLU MLP) with hand-written forward
 * and backward, computing what Hugging Face transformers computes, on any {@link Backend}.
 *
 * <p>Legend: B batch, T sequence length, N = B*T rows, C hidden, H query heads, Hkv key/value heads, D head dim,
 * F intermediate size, V vocabulary. Token ids, labels, positions and masks are host {@code int[]} laid out (B,T).
 *
 * <p>Training: {@link #forward} saves every activation the backward needs in per-shape buffers
 * (reused across steps of the same (B,T), so a training loop allocates nothing per step); {@link #backward}
 * accumulates into {@link #grads()}. The fused losses ({@link #sftLoss}, {@link #grpoLoss}) do forward, loss and
 * backward in one call and turn the logits buffer into dlogits in place, so no second (N,V) buffer exists. A
 * training step is: {@code model.zeroGrad(); loss = model.sftLoss(...); GradClip...; adamW.step(model)}.
 *
 * <p>Parameters are named and ordered exactly as HF {@code named_parameters()}; tied models have no
 * {@code lm_head.weight} and the embedding's gradient receives both the input and the output-projection parts.
 *
 * <p>Memory: a training forward keeps about {@code N*(7C + 3F)} floats per layer plus the (N,V) logits (attention
 * saves only a log-sum-exp per query row and recomputes probabilities in the backward). Buffers are cached for the
 * four most recently used (B,T) shapes; {@link #releaseActivations()} frees them. Not thread-safe: one model, one
 * caller at a time (the backend parallelises inside each op).
 */
public final class DecoderModel implements Parameterized, AutoCloseable {

    /** A linear layer's weight (out,in), optional bias (out) and their gradients. */
    private record Lin(Tensor w, Tensor b, Tensor gw, Tensor gb) {}

    /** An RMSNorm weight and its gradient. */
    private record Norm(Tensor w, Tensor gw) {}

    private record Layer(Lin q, Lin k, Lin v, Lin o, Norm qNorm, Norm kNorm, Lin gate, Lin up, Lin down, Norm ln1,
                         Norm ln2) {}

    private final ModelConfig config;
    private final Backend backend;
    private final LinkedHashMap<String, Tensor> params;
    private final LinkedHashMap<String, Tensor> grads;
    private final Tensor embed;
    private final Tensor embedGrad;
    private final Tensor lmHead;
    private final Tensor lmHeadGrad;
    private final Norm finalNorm;
    private final Layer[] layers;
    private final Tensor invFreq;
    private final float eps;
    private final int C, H, KH, D, F, V, L;

    /** Activation buffers per (B, T, training), least recently used first; at most {@link #MAX_SHAPES} kept. */
    private final LinkedHashMap<Long, Activations> activationCache = new LinkedHashMap<>(8, 0.75f, true);
    private static final int MAX_SHAPES = 4;
    private Activations last;
    private boolean closed;

    private DecoderModel(ModelConfig config, Backend backend, Map<String, float[]> values) {
        this.config = config;
        this.backend = backend;
        this.C = config.hiddenSize();
        this.H = config.numHeads();
        this.KH = config.numKvHeads();
        this.D = config.headDim();
        this.F = config.intermediateSize();
        this.V = config.vocabSize();
        this.L = config.numLayers();
        this.eps = (float) config.rmsNormEps();
        if (D % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for RoPE, got " + D);
        }
        LinkedHashMap<String, long[]> shapes = config.parameterShapes();
        params = new LinkedHashMap<>();
        grads = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            float[] data = values.get(e.getKey());
            params.put(e.getKey(), backend.upload(data, e.getValue()));
            grads.put(e.getKey(), backend.zeros(e.getValue()));
        }
        embed = params.get("model.embed_tokens.weight");
        embedGrad = grads.get("model.embed_tokens.weight");
        lmHead = config.tieWordEmbeddings() ? embed : params.get("lm_head.weight");
        lmHeadGrad = config.tieWordEmbeddings() ? embedGrad : grads.get("lm_head.weight");
        finalNorm = norm("model.norm");
        layers = new Layer[L];
        for (int l = 0; l < L; l++) {
            String p = "model.layers." + l + ".";
            layers[l] = new Layer(lin(p + "self_attn.q_proj"), lin(p + "self_attn.k_proj"),
                    lin(p + "self_attn.v_proj"), lin(p + "self_attn.o_proj"),
                    config.qkNorm() ? norm(p + "self_attn.q_norm") : null,
                    config.qkNorm() ? norm(p + "self_attn.k_norm") : null,
                    lin(p + "mlp.gate_proj"), lin(p + "mlp.up_proj"), lin(p + "mlp.down_proj"),
                    norm(p + "input_layernorm"), norm(p + "post_attention_layernorm"));
        }
        float[] inv = config.ropeInvFreq();
        invFreq = backend.upload(inv, inv.length);
    }

    private Lin lin(String prefix) {
        return new Lin(params.get(prefix + ".weight"), params.get(prefix + ".bias"), grads.get(prefix + ".weight"),
                grads.get(prefix + ".bias"));
    }

    private Norm norm(String prefix) {
        return new Norm(params.get(prefix + ".weight"), grads.get(prefix + ".weight"));
    }

    // ================================================================== creation, loading, saving

    /**
     * Loads an HF model directory (config.json + model.safetensors or a sharded index); weights become fp32.
     *
     * @param hfDir   the model directory
     * @param backend where the parameters live
     * @return the model; close it to free the parameters
     * @throws CheckpointException naming the file or tensor when the directory is incomplete or inconsistent
     */
    public static DecoderModel load(Path hfDir, Backend backend) {
        ModelConfig cfg = ModelConfig.load(hfDir);
        Map<String, float[]> values = new HashMap<>();
        try (SafeTensors st = SafeTensors.open(hfDir)) {
            for (Map.Entry<String, long[]> e : cfg.parameterShapes().entrySet()) {
                if (!st.contains(e.getKey())) {
                    throw new CheckpointException("checkpoint " + hfDir + " has no tensor '" + e.getKey()
                            + "' required by its config (" + cfg.modelType() + ", "
                            + (cfg.tieWordEmbeddings() ? "tied" : "untied") + " embeddings)");
                }
                values.put(e.getKey(), st.floats(e.getKey(), e.getValue()));
            }
        }
        return new DecoderModel(cfg, backend, values);
    }

    /**
     * A fresh model initialised like HF {@code _init_weights}: linear and embedding weights ~ N(0, 0.02), biases 0,
     * norm weights 1; deterministic for a seed.
     *
     * @param cfg     the architecture
     * @param seed    random seed of the initialisation
     * @param backend where the parameters live
     * @return the model
     */
    public static DecoderModel init(ModelConfig cfg, long seed, Backend backend) {
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, float[]> values = new HashMap<>();
        for (Map.Entry<String, long[]> e : cfg.parameterShapes().entrySet()) {
            String name = e.getKey();
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            float[] data = new float[Math.toIntExact(n)];
            if (name.endsWith("norm.weight") || name.endsWith("layernorm.weight")) {
                Arrays.fill(data, 1f);
            } else if (!name.endsWith(".bias")) {
                for (int i = 0; i < data.length; i++) {
                    data[i] = (float) (0.02 * rng.nextGaussian());
                }
            }
            values.put(name, data);
        }
        return new DecoderModel(cfg, backend, values);
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors} (fp32, HF names) so that transformers loads the
     * directory unchanged. Atomic: both files are written into a temporary sibling directory first; a new
     * directory is then renamed into place, an existing one gets each file renamed over the old one (other files
     * there, e.g. tokenizer files, are kept; a stale sharded index is removed so it cannot shadow the new weights).
     *
     * @param dir the model directory (created if missing)
     * @throws CheckpointException when the files cannot be written
     */
    public void save(Path dir) {
        checkOpen();
        Path target = dir.toAbsolutePath().normalize();
        try {
            Path parent = target.getParent();
            Files.createDirectories(parent);
            Path tmp = Files.createTempDirectory(parent, "." + target.getFileName() + ".tmp-");
            try {
                SafeTensorsWriter w = new SafeTensorsWriter();
                w.metadata("format", "pt");
                for (Map.Entry<String, Tensor> e : params.entrySet()) {
                    w.putF32(e.getKey(), e.getValue().shape(), backend.download(e.getValue()));
                }
                w.write(tmp.resolve(SafeTensors.SINGLE_FILE));
                Files.writeString(tmp.resolve("config.json"), config.toJson());
                if (!Files.exists(target)) {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                    return;
                }
                Files.deleteIfExists(target.resolve(SafeTensors.INDEX_FILE));
                for (String f : new String[]{SafeTensors.SINGLE_FILE, "config.json"}) {
                    Files.move(tmp.resolve(f), target.resolve(f), StandardCopyOption.ATOMIC_MOVE,
                            StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                if (Files.exists(tmp)) {
                    try (DirectoryStream<Path> ds = Files.newDirectoryStream(tmp)) {
                        for (Path p : ds) {
                            Files.deleteIfExists(p);
                        }
                    }
                    Files.deleteIfExists(tmp);
                }
            }
        } catch (IOException e) {
            throw new CheckpointException("cannot save model to " + dir + ": " + e.getMessage(), e);
        }
    }

    // ================================================================== accessors

    /** {@return the architecture} */
    public ModelConfig config() {
        return config;
    }

    /** {@return the backend that holds the parameters} */
    public Backend backend() {
        return backend;
    }

    @Override
    public Map<String, Tensor> parameters() {
        return Collections.unmodifiableMap(params);
    }

    @Override
    public Map<String, Tensor> grads() {
        return Collections.unmodifiableMap(grads);
    }

    /** Sets every gradient to zero (gradients accumulate across backward calls, as in torch). */
    public void zeroGrad() {
        for (Tensor g : grads.values()) {
            backend.fill(g, 0f);
        }
    }

    /**
     * Copies every parameter from another model of the same architecture (e.g. to make a reference model).
     *
     * @param other a model with the same parameter names and shapes
     */
    public void copyParametersFrom(DecoderModel other) {
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor src = other.params.get(e.getKey());
            if (src == null) {
                throw new IllegalArgumentException("the other model has no parameter '" + e.getKey() + "'");
            }
            if (src.backend() == backend) {
                backend.copy(src, e.getValue());
            } else {
                backend.upload(src.backend().download(src), e.getValue());
            }
        }
    }

    /**
     * An empty KV cache.
     *
     * @param batch    rows (sequences)
     * @param capacity positions per row (prompt + generated)
     * @return the cache; close it to free its buffers
     */
    public KvCache newKvCache(int batch, int capacity) {
        return new KvCache(backend, L, batch, capacity, KH * D);
    }

    // ================================================================== activations

    /**
     * Everything one forward of shape (B,T) produces. With {@code saved} each layer has its own buffers (kept for
     * the backward); without, all layers share one set (inference), and the residual stream is updated in place.
     */
    private final class Activations implements AutoCloseable {
        final int B, T, N;
        final boolean saved;
        final Tensor[] res;                 // (N,C) residual stream entering layer l; res[L] enters the final norm
        final Tensor[] ln1, rstd1, qPre, kPre, rstdQ, rstdK, q, k, v, att, lse, x1, ln2, rstd2, g, u, h;
        final Tensor lnf, rstdf, rope;      // (N,C), (N), (N,D)
        Tensor logits;                      // (N,V), lazily
        Tensor lastHidden, lastLogits;      // (B,C), (B,V) for generation, lazily
        Tensor logp, lse2, dlogp;           // (N) for log-prob gathers, lazily
        // backward scratch, lazily
        Tensor dres, dln, dq, dk, dv, datt, dg, du, dh;
        int[] ids, positions, mask;

        Activations(int B, int T, boolean saved) {
            this.B = B;
            this.T = T;
            this.N = B * T;
            this.saved = saved;
            int layerSets = saved ? L : 1;
            res = new Tensor[L + 1];
            for (int l = 0; l <= L; l++) {
                res[l] = saved || l == 0 ? backend.zeros(N, C) : res[0];
            }
            ln1 = per(layerSets, N, C);
            rstd1 = per(layerSets, N);
            qPre = config.qkNorm() ? per(layerSets, N, (long) H * D) : null;
            kPre = config.qkNorm() ? per(layerSets, N, (long) KH * D) : null;
            rstdQ = config.qkNorm() ? per(layerSets, (long) N * H) : null;
            rstdK = config.qkNorm() ? per(layerSets, (long) N * KH) : null;
            q = per(layerSets, N, (long) H * D);
            k = per(layerSets, N, (long) KH * D);
            v = per(layerSets, N, (long) KH * D);
            att = per(layerSets, N, (long) H * D);
            lse = per(layerSets, (long) B * H * T);
            x1 = saved ? per(layerSets, N, C) : new Tensor[]{res[0]};
            ln2 = per(layerSets, N, C);
            rstd2 = per(layerSets, N);
            g = per(layerSets, N, F);
            u = per(layerSets, N, F);
            h = per(layerSets, N, F);
            lnf = backend.zeros(N, C);
            rstdf = backend.zeros(N);
            rope = backend.zeros(N, D);
        }

        private Tensor[] per(int sets, long... shape) {
            Tensor[] t = new Tensor[sets];
            for (int i = 0; i < sets; i++) {
                t[i] = backend.zeros(shape);
            }
            return t;
        }

        /** Layer l's buffer (layer 0's when activations are not saved). */
        Tensor at(Tensor[] t, int l) {
            return t[t.length == 1 ? 0 : l];
        }

        Tensor logits() {
            if (logits == null) {
                logits = backend.zeros(N, V);
            }
            return logits;
        }

        void ensureBackwardScratch() {
            if (dres == null) {
                dres = backend.zeros(N, C);
                dln = backend.zeros(N, C);
                dq = backend.zeros(N, (long) H * D);
                dk = backend.zeros(N, (long) KH * D);
                dv = backend.zeros(N, (long) KH * D);
                datt = backend.zeros(N, (long) H * D);
                dg = backend.zeros(N, F);
                du = backend.zeros(N, F);
                dh = backend.zeros(N, F);
            }
        }

        void ensureLogp() {
            if (logp == null) {
                logp = backend.zeros(N);
                lse2 = backend.zeros(N);
                dlogp = backend.zeros(N);
            }
        }

        @Override
        public void close() {
            java.util.IdentityHashMap<Tensor, Boolean> seen = new java.util.IdentityHashMap<>();
            for (Tensor[] arr : new Tensor[][]{res, ln1, rstd1, qPre, kPre, rstdQ, rstdK, q, k, v, att, lse, x1, ln2,
                    rstd2, g, u, h}) {
                if (arr != null) {
                    for (Tensor t : arr) {
                        seen.put(t, true);
                    }
                }
            }
            for (Tensor t : new Tensor[]{lnf, rstdf, rope, logits, lastHidden, lastLogits, logp, lse2, dlogp, dres,
                    dln, dq, dk, dv, datt, dg, du, dh}) {
                if (t != null) {
                    seen.put(t, true);
                }
            }
            seen.keySet().forEach(Tensor::close);
        }
    }

    private Activations activations(int B, int T, boolean saved) {
        long key = ((long) B << 33) | ((long) T << 1) | (saved ? 1 : 0);
        Activations a = activationCache.get(key);
        if (a == null) {
            if (activationCache.size() >= MAX_SHAPES) {
                // a new batch geometry: free the least recently used buffers rather than growing without bound
                Long eldest = activationCache.keySet().iterator().next();
                Activations old = activationCache.remove(eldest);
                if (old == last) {
                    last = null;
                }
                old.close();
            }
            a = new Activations(B, T, saved);
            activationCache.put(key, a);
        }
        return a;
    }

    /** Drops every cached activation buffer (frees memory between phases, e.g. after rollouts). */
    public void releaseActivations() {
        activationCache.values().forEach(Activations::close);
        activationCache.clear();
        last = null;
    }

    // ================================================================== forward

    private void checkInputs(int batch, int[] ids, int[] positions, int[] mask) {
        checkOpen();
        if (batch < 1 || ids.length == 0 || ids.length % batch != 0) {
            throw new IllegalArgumentException("input ids (" + ids.length + " values) are not a (B,T) batch with B = "
                    + batch);
        }
        if (positions != null && positions.length != ids.length) {
            throw new IllegalArgumentException("position ids have " + positions.length + " values, input ids "
                    + ids.length);
        }
        if (mask != null && mask.length != ids.length) {
            throw new IllegalArgumentException("attention mask has " + mask.length + " values, input ids "
                    + ids.length);
        }
    }

    private static int[] defaultPositions(int B, int T, int offset) {
        int[] p = new int[B * T];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                p[b * T + t] = offset + t;
            }
        }
        return p;
    }

    /**
     * Full forward, saving activations for {@link #backward}. Returns logits (B,T,V) as a model-owned buffer, valid
     * until the next forward of the same shape (and overwritten by the fused losses).
     *
     * @param batch         B (T = inputIds.length / B)
     * @param inputIds      (B,T)
     * @param positionIds   (B,T) or null for 0..T-1 in every row (as HF without explicit position ids)
     * @param attentionMask (B,T) 1 = token, 0 = padding (never attended to), or null for none
     * @return the logits (B,T,V)
     */
    public Tensor forward(int batch, int[] inputIds, int[] positionIds, int[] attentionMask) {
        return forward(batch, inputIds, positionIds, attentionMask, true);
    }

    /** With {@code training} false nothing is kept for a backward (one shared set of layer buffers). */
    private Tensor forward(int batch, int[] inputIds, int[] positionIds, int[] attentionMask, boolean training) {
        checkInputs(batch, inputIds, positionIds, attentionMask);
        int T = inputIds.length / batch;
        Activations a = activations(batch, T, training);
        run(a, inputIds, positionIds == null ? defaultPositions(batch, T, 0) : positionIds, attentionMask, null);
        backend.linear(a.lnf, lmHead, null, a.logits(), false);
        last = a;
        return a.logits;
    }

    /** The decoder stack up to and including the final norm (into a.lnf); with a cache, keys/values go there. */
    private void run(Activations a, int[] ids, int[] positions, int[] mask, KvCache cache) {
        int B = a.B, T = a.T;
        a.ids = ids.clone();
        a.positions = positions.clone();
        a.mask = mask == null ? null : mask.clone();
        AttentionShape shape;
        int[] keyMask;
        if (cache == null) {
            shape = AttentionShape.selfAttention(B, T, H, KH, D);
            keyMask = a.mask;
        } else {
            if (cache.batch != B) {
                throw new IllegalArgumentException("KV cache holds " + cache.batch + " rows, the input " + B);
            }
            if (cache.length + T > cache.capacity) {
                throw new IllegalArgumentException("KV cache overflow: " + cache.length + " cached + " + T
                        + " new positions > capacity " + cache.capacity);
            }
            for (int b = 0; b < B; b++) {
                for (int t = 0; t < T; t++) {
                    cache.keyMask[b * cache.capacity + cache.length + t] = mask == null ? 1 : mask[b * T + t];
                }
            }
            shape = new AttentionShape(B, T, cache.length + T, cache.capacity, cache.length, H, KH, D,
                    (float) (1.0 / Math.sqrt(D)));
            keyMask = cache.keyMask;
        }
        backend.embedding(ids, embed, a.res[0]);
        backend.ropeTable(positions, invFreq, a.rope);
        for (int l = 0; l < L; l++) {
            Layer ly = layers[l];
            Tensor res = a.res[l], x1 = a.at(a.x1, l), ln1 = a.at(a.ln1, l), ln2 = a.at(a.ln2, l);
            Tensor q = a.at(a.q, l), k = a.at(a.k, l), v = a.at(a.v, l), att = a.at(a.att, l);
            // attention block: x1 = res + o_proj(attn(rope(norm_qk(proj(rmsnorm(res))))))
            backend.rmsNorm(res, ly.ln1.w, eps, ln1, a.at(a.rstd1, l));
            if (config.qkNorm()) {
                Tensor qPre = a.at(a.qPre, l), kPre = a.at(a.kPre, l);
                backend.linear(ln1, ly.q.w, ly.q.b, qPre, false);
                backend.linear(ln1, ly.k.w, ly.k.b, kPre, false);
                backend.rmsNorm(qPre, ly.qNorm.w, eps, q, a.at(a.rstdQ, l));
                backend.rmsNorm(kPre, ly.kNorm.w, eps, k, a.at(a.rstdK, l));
            } else {
                backend.linear(ln1, ly.q.w, ly.q.b, q, false);
                backend.linear(ln1, ly.k.w, ly.k.b, k, false);
            }
            backend.linear(ln1, ly.v.w, ly.v.b, v, false);
            backend.rope(q, a.rope, H, false);
            backend.rope(k, a.rope, KH, false);
            if (cache == null) {
                backend.attention(q, k, v, att, a.at(a.lse, l), shape, keyMask);
            } else {
                backend.copyRows(k, T, 0, cache.k[l], cache.capacity, cache.length, B, T, KH * D);
                backend.copyRows(v, T, 0, cache.v[l], cache.capacity, cache.length, B, T, KH * D);
                backend.attention(q, cache.k[l], cache.v[l], att, a.at(a.lse, l), shape, keyMask);
            }
            if (x1 != res) {
                backend.copy(res, x1);
            }
            backend.linear(att, ly.o.w, ly.o.b, x1, true);
            // MLP block: res' = x1 + down(silu(gate(n)) * up(n)), n = rmsnorm(x1)
            backend.rmsNorm(x1, ly.ln2.w, eps, ln2, a.at(a.rstd2, l));
            Tensor g = a.at(a.g, l), u = a.at(a.u, l), h = a.at(a.h, l);
            backend.linear(ln2, ly.gate.w, ly.gate.b, g, false);
            backend.linear(ln2, ly.up.w, ly.up.b, u, false);
            backend.swiglu(g, u, h);
            Tensor next = a.res[l + 1];
            if (next != x1) {
                backend.copy(x1, next);
            }
            backend.linear(h, ly.down.w, ly.down.b, next, true);
        }
        backend.rmsNorm(a.res[L], finalNorm.w, eps, a.lnf, a.rstdf);
        if (cache != null) {
            cache.length += T;
        }
    }

    // ================================================================== backward

    /**
     * Backward of the last {@link #forward}: accumulates d loss / d parameter into {@link #grads()}.
     *
     * @param dlogits (B,T,V), the gradient of the loss with respect to the logits (may be the logits buffer itself)
     */
    public void backward(Tensor dlogits) {
        checkOpen();
        Activations a = last;
        if (a == null || !a.saved) {
            throw new IllegalStateException("backward needs a preceding training forward (forward/sftLoss/grpoLoss)");
        }
        a.ensureBackwardScratch();
        AttentionShape shape = AttentionShape.selfAttention(a.B, a.T, H, KH, D);
        // lm head (tied: into the embedding's gradient)
        backend.linearBackwardWeight(dlogits, a.lnf, lmHeadGrad, null);
        backend.linearBackwardInput(dlogits, lmHead, a.dln, false);
        backend.rmsNormBackward(a.dln, a.res[L], finalNorm.w, a.rstdf, a.dres, finalNorm.gw, false);
        for (int l = L - 1; l >= 0; l--) {
            Layer ly = layers[l];
            // MLP: res[l+1] = x1 + down(h); dres holds d res[l+1]
            backend.linearBackwardWeight(a.dres, a.h[l], ly.down.gw, ly.down.gb);
            backend.linearBackwardInput(a.dres, ly.down.w, a.dh, false);
            backend.swigluBackward(a.g[l], a.u[l], a.dh, a.dg, a.du);
            backend.linearBackwardWeight(a.dg, a.ln2[l], ly.gate.gw, ly.gate.gb);
            backend.linearBackwardWeight(a.du, a.ln2[l], ly.up.gw, ly.up.gb);
            backend.linearBackwardInput(a.dg, ly.gate.w, a.dln, false);
            backend.linearBackwardInput(a.du, ly.up.w, a.dln, true);
            backend.rmsNormBackward(a.dln, a.x1[l], ly.ln2.w, a.rstd2[l], a.dres, ly.ln2.gw, true);
            // attention: x1 = res[l] + o(att); dres now holds d x1
            backend.linearBackwardWeight(a.dres, a.att[l], ly.o.gw, ly.o.gb);
            backend.linearBackwardInput(a.dres, ly.o.w, a.datt, false);
            backend.attentionBackward(a.q[l], a.k[l], a.v[l], a.att[l], a.lse[l], a.datt, a.dq, a.dk, a.dv, shape,
                    a.mask);
            backend.rope(a.dq, a.rope, H, true);
            backend.rope(a.dk, a.rope, KH, true);
            if (config.qkNorm()) {
                backend.rmsNormBackward(a.dq, a.qPre[l], ly.qNorm.w, a.rstdQ[l], a.dq, ly.qNorm.gw, false);
                backend.rmsNormBackward(a.dk, a.kPre[l], ly.kNorm.w, a.rstdK[l], a.dk, ly.kNorm.gw, false);
            }
            backend.linearBackwardWeight(a.dq, a.ln1[l], ly.q.gw, ly.q.gb);
            backend.linearBackwardWeight(a.dk, a.ln1[l], ly.k.gw, ly.k.gb);
            backend.linearBackwardWeight(a.dv, a.ln1[l], ly.v.gw, ly.v.gb);
            backend.linearBackwardInput(a.dq, ly.q.w, a.dln, false);
            backend.linearBackwardInput(a.dk, ly.k.w, a.dln, true);
            backend.linearBackwardInput(a.dv, ly.v.w, a.dln, true);
            backend.rmsNormBackward(a.dln, a.res[l], ly.ln1.w, a.rstd1[l], a.dres, ly.ln1.gw, true);
        }
        backend.embeddingBackward(a.ids, a.dres, embedGrad);
    }

    // ================================================================== losses

    /** Targets of the causal shift: row (b,t) predicts ids[b,t+1]; the last position of each row predicts nothing. */
    private static int[] shiftedTargets(int B, int T, int[] tokens) {
        int[] t = new int[B * T];
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < T; i++) {
                t[b * T + i] = i < T - 1 ? tokens[b * T + i + 1] : -100;
            }
        }
        return t;
    }

    /**
     * SFT step: HF causal-LM loss (mean over shifted positions whose label != -100; any negative label is
     * ignored) and, with {@code backward}, its gradient accumulated into {@link #grads()}.
     * Returns 0 and touches no gradient when no label counts.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param labels        (B,T) usually the input ids with prompt and padding positions set to -100
     * @param positionIds   (B,T) or null for 0..T-1
     * @param attentionMask (B,T) or null for none
     * @param backward      also accumulate the gradient
     * @return the mean loss
     */
    public float sftLoss(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask,
                         boolean backward) {
        int count = countTargets(batch, labels);
        if (count == 0) {
            return 0f;
        }
        double sum = sftLossSum(batch, inputIds, labels, positionIds, attentionMask, backward ? 1f / count : 0f);
        return (float) (sum / count);
    }

    /**
     * Number of shifted label positions that count in the SFT loss (label &gt;= 0 at t+1).
     *
     * @param batch  B
     * @param labels (B,T)
     * @return the count
     */
    public static int countTargets(int batch, int[] labels) {
        int T = labels.length / batch, count = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 1; t < T; t++) {
                if (labels[b * T + t] >= 0) {
                    count++;
                }
            }
        }
        return count;
    }

    /**
     * The SUM of the token cross-entropies of the SFT loss; with {@code gradScale != 0} also backpropagates
     * {@code gradScale * d(sum)} into {@link #grads()}. For gradient accumulation over micro-batches pass
     * {@code gradScale = 1 / (label tokens in the whole batch)} so the accumulated gradient is that of the global
     * mean. {@code gradScale == 0} evaluates only (no activations are kept).
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param labels        (B,T), negative = not counted
     * @param positionIds   (B,T) or null for 0..T-1
     * @param attentionMask (B,T) or null for none
     * @param gradScale     factor of the accumulated gradient, 0 for none
     * @return the summed loss
     */
    public double sftLossSum(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask,
                             float gradScale) {
        if (labels.length != inputIds.length) {
            throw new IllegalArgumentException("labels have " + labels.length + " values, input ids "
                    + inputIds.length);
        }
        boolean backward = gradScale != 0f;
        Tensor logits = forward(batch, inputIds, positionIds, attentionMask, backward);
        int T = inputIds.length / batch;
        int[] targets = shiftedTargets(batch, T, labels);
        double sum = backend.crossEntropy(logits, targets, gradScale, logits);
        if (backward) {
            backward(logits);
        }
        return sum;
    }

    /**
     * {@link #sftLoss(int, int[], int[], int[], int[], boolean)} with backward, no padding, default positions.
     *
     * @param batch    B
     * @param inputIds (B,T)
     * @param labels   (B,T), negative = not counted
     * @return the mean loss
     */
    public float sftLoss(int batch, int[] inputIds, int[] labels) {
        return sftLoss(batch, inputIds, labels, null, null, true);
    }

    /**
     * Log-probabilities of each next token, (B, T-1): {@code logp[b,t] = log_softmax(logits[b,t])[ids[b,t+1]]}.
     * Forward only (no activations kept for a backward), e.g. for the old-policy and reference log-probs of GRPO.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param positionIds   (B,T) or null for 0..T-1
     * @param attentionMask (B,T) or null for none
     * @return (B, T-1) log-probabilities
     */
    public float[] logProbs(int batch, int[] inputIds, int[] positionIds, int[] attentionMask) {
        Tensor logits = forward(batch, inputIds, positionIds, attentionMask, false);
        Activations a = last;
        int T = inputIds.length / batch;
        a.ensureLogp();
        backend.logProbGather(logits, shiftedTargets(batch, T, inputIds), a.logp, a.lse2);
        return dropLast(backend.download(a.logp), batch, T);
    }

    private static float[] dropLast(float[] perRow, int B, int T) {
        float[] out = new float[B * (T - 1)];
        for (int b = 0; b < B; b++) {
            System.arraycopy(perRow, b * T, out, b * (T - 1), T - 1);
        }
        return out;
    }

    /**
     * A GRPO loss evaluation: the loss result and the current policy's log-probs (B, T-1).
     *
     * @param result the loss and its statistics
     * @param logp   (B, T-1) log-probabilities of the current policy
     */
    public record GrpoStep(GrpoLoss.Result result, float[] logp) {
        /** {@return the loss value} */
        public double loss() {
            return result.loss();
        }
    }

    /**
     * GRPO step: forward, per-token log-probs of the next tokens, {@link GrpoLoss} on them, and the gradient back
     * through the log-prob gather into every parameter (accumulated into {@link #grads()}).
     *
     * @param batch          B
     * @param inputIds       (B,T) prompt and completion tokens
     * @param positionIds    (B,T) or null for 0..T-1
     * @param attentionMask  (B,T) or null for none
     * @param completionMask (B, T-1) aligned with the log-probs (for HF-style masks (B,T) pass {@code mask[:,1:]})
     * @param oldLogp        (B, T-1), or null for on-policy (r = 1 with the gradient of r)
     * @param refLogp        (B, T-1), or null when the loss has beta = 0
     * @param advantages     (B)
     * @param loss           the loss settings (clipping, beta, level)
     * @return the loss result and the policy's log-probs
     */
    public GrpoStep grpoLoss(int batch, int[] inputIds, int[] positionIds, int[] attentionMask,
                             float[] completionMask, float[] oldLogp, float[] refLogp, float[] advantages,
                             GrpoLoss loss) {
        Tensor logits = forward(batch, inputIds, positionIds, attentionMask);
        Activations a = last;
        int T = inputIds.length / batch;
        a.ensureLogp();
        int[] targets = shiftedTargets(batch, T, inputIds);
        backend.logProbGather(logits, targets, a.logp, a.lse2);
        float[] logp = dropLast(backend.download(a.logp), batch, T);
        GrpoLoss.Result r = loss.compute(logp, oldLogp == null ? logp : oldLogp, refLogp, advantages,
                completionMask, batch, T - 1);
        float[] d = new float[batch * T];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(r.dLogp(), b * (T - 1), d, b * T, T - 1);
        }
        backend.upload(d, a.dlogp);
        backend.logProbGatherBackward(logits, targets, a.lse2, a.dlogp, logits);
        backward(logits);
        return new GrpoStep(r, logp);
    }

    // ================================================================== incremental decoding

    /**
     * Runs {@code ids} (B, T) through the model appending their keys/values to the cache, and returns the logits
     * of each row's last position (B, V) (a model-owned buffer valid until the next call). Prefill passes the
     * left-padded prompts with their mask and positions; decoding passes one token per row (T = 1, mask null).
     *
     * @param cache         the KV cache of the B rows
     * @param ids           (B,T) new tokens
     * @param positionIds   (B,T), or null for cache.length + t
     * @param attentionMask (B,T) or null (all tokens real)
     * @return the last position's logits (B, V)
     */
    public Tensor forwardCached(KvCache cache, int[] ids, int[] positionIds, int[] attentionMask) {
        int B = cache.batch;
        checkInputs(B, ids, positionIds, attentionMask);
        int T = ids.length / B;
        Activations a = activations(B, T, false);
        run(a, ids, positionIds == null ? defaultPositions(B, T, cache.length) : positionIds, attentionMask, cache);
        if (a.lastHidden == null) {
            a.lastHidden = backend.zeros(B, C);
            a.lastLogits = backend.zeros(B, V);
        }
        int[] rows = new int[B];
        for (int b = 0; b < B; b++) {
            rows[b] = b * T + T - 1;
        }
        backend.gatherRows(a.lnf, rows, a.lastHidden);
        backend.linear(a.lastHidden, lmHead, null, a.lastLogits, false);
        return a.lastLogits;
    }

    /**
     * Prefill: runs the left-padded prompts (B, Tp) into an empty cache and returns each row's last logits (B, V).
     * Position ids default to HF's {@code clamp(cumsum(mask) - 1, 0)}.
     *
     * @param cache         an empty cache of B rows
     * @param promptIds     (B, Tp) left-padded prompts
     * @param attentionMask (B, Tp) 1 = token, 0 = padding
     * @param positionIds   (B, Tp) or null for the default
     * @return the last position's logits (B, V)
     */
    public Tensor prefill(KvCache cache, int[] promptIds, int[] attentionMask, int[] positionIds) {
        if (cache.length != 0) {
            throw new IllegalStateException("prefill needs an empty KV cache (it holds " + cache.length
                    + " positions); call reset() first");
        }
        int[] pos = positionIds != null ? positionIds
                : Generator.positionsFromMask(cache.batch, promptIds.length / cache.batch, attentionMask);
        return forwardCached(cache, promptIds, pos, attentionMask);
    }

    /**
     * Decode: one new token per row at the given positions.
     *
     * @param cache       the cache after prefill
     * @param tokens      (B) one token per row
     * @param positionIds (B) their positions
     * @return the next-token logits (B, V)
     */
    public Tensor decode(KvCache cache, int[] tokens, int[] positionIds) {
        if (tokens.length != cache.batch) {
            throw new IllegalArgumentException("decode takes one token per row: " + tokens.length + " tokens for "
                    + cache.batch + " rows");
        }
        return forwardCached(cache, tokens, positionIds, null);
    }

    // ================================================================== lifecycle

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("model is closed");
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
        grads.values().forEach(Tensor::close);
        invFreq.close();
    }

    // ================================================================== embedding backbone (additive API)

    /**
     * The final-norm hidden states {@code (B,T,C)} (what multiplies the output projection into the logits),
     * without the logits: the backbone of decoder embedding models. Forward only (nothing kept for a backward); a
     * model-owned buffer valid until the next forward of the same shape.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param positionIds   (B,T) or null for 0..T-1 in every row
     * @param attentionMask (B,T) 1 = token, 0 = padding, or null for none
     * @return the hidden states (B,T,C)
     */
    public Tensor hiddenStates(int batch, int[] inputIds, int[] positionIds, int[] attentionMask) {
        checkInputs(batch, inputIds, positionIds, attentionMask);
        int T = inputIds.length / batch;
        Activations a = activations(batch, T, false);
        run(a, inputIds, positionIds == null ? defaultPositions(batch, T, 0) : positionIds, attentionMask, null);
        last = a;
        return a.lnf;
    }

    /**
     * Loads a decoder checkpoint as an embedding backbone (e.g. Qwen3-Embedding): parameter names may lack the
     * {@code model.} prefix (checkpoints saved from {@code Qwen3Model} rather than {@code Qwen3ForCausalLM}), and
     * no {@code lm_head.weight} is needed. An untied checkpoint without one gets the input embedding as its output
     * projection, so such a model's logits are not the checkpoint's: use {@link #hiddenStates}, and do not train or
     * save it as a causal LM.
     *
     * @param hfDir   the model directory
     * @param backend where the parameters live
     * @return the model
     */
    public static DecoderModel loadBackbone(Path hfDir, Backend backend) {
        ModelConfig cfg = ModelConfig.load(hfDir);
        Map<String, float[]> values = new HashMap<>();
        try (SafeTensors st = SafeTensors.open(hfDir)) {
            if (!cfg.tieWordEmbeddings() && !st.contains("lm_head.weight")) {
                cfg = new ModelConfig(cfg.modelType(), cfg.vocabSize(), cfg.hiddenSize(), cfg.intermediateSize(),
                        cfg.numLayers(), cfg.numHeads(), cfg.numKvHeads(), cfg.headDim(), cfg.rmsNormEps(),
                        cfg.ropeTheta(), cfg.ropeScaling(), cfg.maxPositionEmbeddings(), true, cfg.qkvBias(),
                        cfg.oBias(), cfg.mlpBias(), cfg.qkNorm(), cfg.hiddenAct(), cfg.bosTokenId(),
                        cfg.eosTokenIds(), cfg.padTokenId(), cfg.rawJson());
            }
            for (Map.Entry<String, long[]> e : cfg.parameterShapes().entrySet()) {
                String name = e.getKey();
                String bare = name.startsWith("model.") ? name.substring("model.".length()) : name;
                String found = st.contains(name) ? name : st.contains(bare) ? bare : null;
                if (found == null) {
                    throw new CheckpointException("checkpoint " + hfDir + " has no tensor '" + name + "' (nor '"
                            + bare + "') required by its config (" + cfg.modelType() + ")");
                }
                values.put(name, st.floats(found, e.getValue()));
            }
        }
        return new DecoderModel(cfg, backend, values);
    }
}
