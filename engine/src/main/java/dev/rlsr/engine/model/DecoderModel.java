package dev.rlsr.engine.model;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.optim.ParamStore;
import dev.rlsr.engine.optim.Parameterized;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.nio.file.Path;
import java.util.function.Function;

/**
 * A Qwen2 / Qwen3 / Llama decoder (pre-norm, RMSNorm, RoPE, GQA attention, SwiGLU MLP) with hand-written forward
 * and backward, computing what Hugging Face transformers computes, on any {@link Backend} and {@link Precision}.
 *
 * <p>The model is split by concern: {@link DecoderWeights} (flat parameter buffers; load, init, save),
 * {@link DecoderActivations} (per-shape buffers), this class (forward and backward), {@link DecoderLosses} (SFT,
 * log-probs, GRPO) and {@link DecoderDecoding} (KV-cache prefill and decode). A frozen model ({@link #loadFrozen},
 * {@link #frozenCopy}) holds only its compute weights: no gradients, no master copy, no optimizer state.
 *
 * <p>Legend: B batch, T sequence length, N = B*T rows, C hidden, H query heads, Hkv key/value heads, D head dim,
 * F intermediate size, V vocabulary. Token ids, labels, positions and masks given as host {@code int[]} (B,T) are
 * uploaded into I32 tensors of the activation buffers (one copy each per call).
 *
 * <p>Training: {@link #forward} saves every activation the backward needs in per-shape buffers (reused across steps
 * of the same (B,T), so a training loop allocates nothing per step); {@link #backward} accumulates into the fp32
 * gradient buffer. The fused losses ({@link #sftLossSum(int, int[], int[], int[], int[], float, Tensor)},
 * {@link #grpoLoss(int, int[], int[], int[], Tensor, Tensor, Tensor, Tensor, GrpoLoss, float, Tensor)}) do forward,
 * loss and backward in one call, turn the logits buffer into dlogits in place (no second (N,V) buffer), and write
 * their statistics into device tensors: nothing comes back to the host until the caller reads it.
 *
 * <p>Not thread-safe: one model, one caller at a time (the backend parallelises inside each op).
 */
public final class DecoderModel implements Parameterized, AutoCloseable {

    private final ModelConfig config;
    private final Backend backend;
    final DecoderWeights weights;
    final DType act;
    private final float eps;
    final int C, H, KH, D, F, V, L;
    private final DecoderActivations.Cache activationCache = new DecoderActivations.Cache();
    private DecoderActivations last;
    private final DecoderLosses losses;
    private final DecoderDecoding decoding;
    private boolean closed;

    private DecoderModel(DecoderWeights weights) {
        this.weights = weights;
        this.config = weights.config();
        this.backend = weights.store().backend();
        this.act = weights.store().precision().compute();
        this.C = config.hiddenSize();
        this.H = config.numHeads();
        this.KH = config.numKvHeads();
        this.D = config.headDim();
        this.F = config.intermediateSize();
        this.V = config.vocabSize();
        this.L = config.numLayers();
        this.eps = (float) config.rmsNormEps();
        this.losses = new DecoderLosses(this);
        this.decoding = new DecoderDecoding(this);
    }

    // ================================================================== creation, loading, saving

    /**
     * Loads an HF model directory (config.json + model.safetensors or a sharded index) as a trainable model in the
     * backend's default precision.
     *
     * @param hfDir   the directory
     * @param backend where the model runs
     * @return the model
     */
    public static DecoderModel load(Path hfDir, Backend backend) {
        return load(hfDir, backend, backend.defaultPrecision(), true);
    }

    /**
     * Loads an HF model directory.
     *
     * @param hfDir     the directory
     * @param backend   where the model runs
     * @param precision compute precision
     * @param trainable whether gradients and a master copy are allocated
     * @return the model
     */
    public static DecoderModel load(Path hfDir, Backend backend, Precision precision, boolean trainable) {
        ModelConfig cfg = ModelConfig.load(hfDir);
        return new DecoderModel(DecoderWeights.load(hfDir, cfg, backend, precision, trainable, false,
                st -> name -> st.contains(name) ? name : null));
    }

    /**
     * Loads an HF model directory for inference only (evaluation, generation, a reference model): no gradients, no
     * master copy.
     *
     * @param hfDir   the directory
     * @param backend where the model runs
     * @return the frozen model
     */
    public static DecoderModel loadFrozen(Path hfDir, Backend backend) {
        return load(hfDir, backend, backend.defaultPrecision(), false);
    }

    /**
     * A fresh trainable model initialised like HF {@code _init_weights}, in the backend's default precision.
     *
     * @param cfg     architecture
     * @param seed    random seed
     * @param backend where the model runs
     * @return the model
     */
    public static DecoderModel init(ModelConfig cfg, long seed, Backend backend) {
        return init(cfg, seed, backend, backend.defaultPrecision());
    }

    /**
     * A fresh trainable model initialised like HF {@code _init_weights}: linear and embedding weights ~ N(0, 0.02),
     * biases 0, norm weights 1; deterministic for a seed.
     *
     * @param cfg       architecture
     * @param seed      random seed
     * @param backend   where the model runs
     * @param precision compute precision
     * @return the model
     */
    public static DecoderModel init(ModelConfig cfg, long seed, Backend backend, Precision precision) {
        return new DecoderModel(DecoderWeights.init(cfg, seed, backend, precision, true));
    }

    /**
     * Loads a decoder checkpoint as a frozen embedding backbone (e.g. Qwen3-Embedding): parameter names may lack the
     * {@code model.} prefix (checkpoints saved from {@code Qwen3Model} rather than {@code Qwen3ForCausalLM}), and no
     * {@code lm_head.weight} is needed. An untied checkpoint without one gets the input embedding as its output
     * projection, so such a model's logits are not the checkpoint's: use {@link #hiddenStates}, and do not train or
     * save it as a causal LM.
     *
     * @param hfDir   the directory
     * @param backend where the model runs, in its default precision
     * @return the frozen backbone
     */
    public static DecoderModel loadBackbone(Path hfDir, Backend backend) {
        return loadBackbone(hfDir, backend, backend.defaultPrecision());
    }

    /**
     * {@link #loadBackbone(Path, Backend)} in a given precision.
     *
     * @param hfDir     the directory
     * @param backend   where the model runs
     * @param precision compute precision
     * @return the frozen backbone
     */
    public static DecoderModel loadBackbone(Path hfDir, Backend backend, Precision precision) {
        ModelConfig cfg = ModelConfig.load(hfDir);
        try (SafeTensors st = SafeTensors.open(hfDir)) {
            if (!cfg.tieWordEmbeddings() && !st.contains("lm_head.weight")) {
                cfg = new ModelConfig(cfg.modelType(), cfg.vocabSize(), cfg.hiddenSize(), cfg.intermediateSize(),
                        cfg.numLayers(), cfg.numHeads(), cfg.numKvHeads(), cfg.headDim(), cfg.rmsNormEps(),
                        cfg.ropeTheta(), cfg.ropeScaling(), cfg.maxPositionEmbeddings(), true, cfg.qkvBias(),
                        cfg.oBias(), cfg.mlpBias(), cfg.qkNorm(), cfg.hiddenAct(), cfg.bosTokenId(),
                        cfg.eosTokenIds(), cfg.padTokenId(), cfg.rawJson());
            }
        }
        Function<SafeTensors, Function<String, String>> names = st -> name -> {
            String bare = name.startsWith("model.") ? name.substring("model.".length()) : name;
            return st.contains(name) ? name : st.contains(bare) ? bare : null;
        };
        return new DecoderModel(DecoderWeights.load(hfDir, cfg, backend, precision, false, true, names));
    }

    /**
     * A frozen copy of this model's current weights on the same backend and precision (e.g. the GRPO reference):
     * no gradients, no master copy.
     *
     * @return the copy
     */
    public DecoderModel frozenCopy() {
        checkOpen();
        return new DecoderModel(weights.frozenCopy());
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors} in the checkpoint's dtype (see {@link DecoderWeights});
     * atomic.
     *
     * @param dir the model directory
     */
    public void save(Path dir) {
        checkOpen();
        weights.save(dir);
    }

    // ================================================================== accessors

    /** {@return the architecture} */
    public ModelConfig config() {
        return config;
    }

    /** {@return the backend} */
    public Backend backend() {
        return backend;
    }

    /** {@return the precision policy} */
    public Precision precision() {
        return weights.store().precision();
    }

    /** {@return whether the model has gradients (false for a frozen model)} */
    public boolean trainable() {
        return weights.store().trainable();
    }

    @Override
    public ParamStore store() {
        checkOpen();
        return weights.store();
    }

    /** Sets every gradient to zero (one fill over the flat gradient buffer; gradients accumulate as in torch). */
    public void zeroGrad() {
        store().zeroGrad();
    }

    /**
     * Copies every weight from another model of the same architecture (any backend or precision).
     *
     * @param other the source
     */
    public void copyParametersFrom(DecoderModel other) {
        store().copyFrom(other.store());
    }

    /**
     * An empty KV cache in this model's compute dtype.
     *
     * @param batch    rows
     * @param capacity positions per row (prompt + generated)
     * @return the cache
     */
    public KvCache newKvCache(int batch, int capacity) {
        checkOpen();
        return new KvCache(backend, act, L, batch, capacity, KH * D);
    }

    // ================================================================== activations

    DecoderActivations activations(int B, int T, boolean saved) {
        DecoderActivations a = activationCache.get(config, backend, act, B, T, saved, null);
        if (last != null && !activationCache.contains(last)) {
            last = null;
        }
        return a;
    }

    /** Drops every cached activation buffer (frees memory between phases, e.g. after rollouts). */
    public void releaseActivations() {
        activationCache.close();
        last = null;
    }

    DecoderActivations last() {
        return last;
    }

    void setLast(DecoderActivations a) {
        last = a;
    }

    // ================================================================== forward

    void checkInputs(int batch, int[] ids, int[] positions, int[] mask) {
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
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= V) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i
                        + " is outside the vocabulary [0, " + V + ")");
            }
        }
    }

    static int[] defaultPositions(int B, int T, int offset) {
        int[] p = new int[B * T];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                p[b * T + t] = offset + t;
            }
        }
        return p;
    }

    /** Uploads the host inputs into a's I32 buffers; returns (and records in a) whether a mask was given. */
    boolean uploadInputs(DecoderActivations a, int[] ids, int[] positions, int[] mask, int positionOffset) {
        backend.upload(ids, a.ids);
        backend.upload(positions == null ? defaultPositions(a.B, a.T, positionOffset) : positions, a.positions);
        if (mask != null) {
            backend.upload(mask, a.mask);
        }
        a.masked = mask != null;
        return a.masked;
    }

    /**
     * Full forward, saving activations for {@link #backward}. Returns logits (B,T,V) in the compute dtype as a
     * model-owned buffer, valid until the next forward of the same shape (and overwritten by the fused losses).
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param positionIds   (B,T) or null for 0..T-1 in every row (as HF without explicit position ids)
     * @param attentionMask (B,T) 1 = token, 0 = padding (never attended to), or null for none
     * @return the logits
     */
    public Tensor forward(int batch, int[] inputIds, int[] positionIds, int[] attentionMask) {
        return forward(batch, inputIds, positionIds, attentionMask, true);
    }

    /** With {@code training} false nothing is kept for a backward (one shared set of layer buffers). */
    Tensor forward(int batch, int[] inputIds, int[] positionIds, int[] attentionMask, boolean training) {
        checkInputs(batch, inputIds, positionIds, attentionMask);
        if (training && !trainable()) {
            throw new IllegalStateException("a frozen model has no gradients: load it trainable to train it");
        }
        int T = inputIds.length / batch;
        DecoderActivations a = activations(batch, T, training);
        boolean masked = uploadInputs(a, inputIds, positionIds, attentionMask, 0);
        run(a, masked, null);
        backend.linear(a.lnf, weights.lmHead, null, null, a.logits());
        last = a;
        return a.logits();
    }

    /**
     * The decoder stack up to and including the final norm (into a.lnf), reading a.ids/a.positions (and a.mask when
     * {@code masked}); with a cache, keys/values and the key mask go there.
     */
    void run(DecoderActivations a, boolean masked, KvCache cache) {
        int B = a.B, T = a.T;
        AttentionShape shape;
        Tensor keyMask;
        if (cache == null) {
            shape = AttentionShape.selfAttention(B, T, H, KH, D);
            keyMask = masked ? a.mask : null;
        } else {
            if (cache.batch != B) {
                throw new IllegalArgumentException("KV cache holds " + cache.batch + " rows, the input " + B);
            }
            if (cache.length + T > cache.capacity) {
                throw new IllegalArgumentException("KV cache overflow: " + cache.length + " cached + " + T
                        + " new positions > capacity " + cache.capacity);
            }
            if (!masked) {
                backend.fill(a.mask, 1f);
            }
            backend.copyRows(a.mask, T, 0, cache.keyMask, cache.capacity, cache.length, B, T, 1);
            shape = new AttentionShape(B, T, cache.length + T, cache.capacity, cache.length, H, KH, D,
                    (float) (1.0 / Math.sqrt(D)));
            keyMask = cache.keyMask;
        }
        DecoderWeights w = weights;
        backend.embedding(a.ids, w.embed, a.res[0]);
        backend.ropeTable(a.positions, w.invFreq, a.rope);
        AttentionShape attShape = shape;
        Tensor attMask = keyMask;
        layers(a, (l, k, v, q, att, lse) -> {
            if (cache == null) {
                backend.attention(q, k, v, att, lse, attShape, attMask);
            } else {
                backend.copyRows(k, T, 0, cache.k[l], cache.capacity, cache.length, B, T, KH * D);
                backend.copyRows(v, T, 0, cache.v[l], cache.capacity, cache.length, B, T, KH * D);
                backend.attention(q, cache.k[l], cache.v[l], att, lse, attShape, attMask);
            }
        });
        if (cache != null) {
            cache.length += T;
        }
    }

    /** The attention of one layer: keys and values after RoPE, queries, the output and its log-sum-exp. */
    @FunctionalInterface
    interface AttentionStep {
        void apply(int layer, Tensor k, Tensor v, Tensor q, Tensor att, Tensor lse);
    }

    /**
     * Every decoder layer and the final norm over a's residual stream (a.res[0] and a.rope already filled), with
     * {@code attention} doing each layer's attention (self-attention, a KV cache at a host length, or at a device
     * length).
     */
    void layers(DecoderActivations a, AttentionStep attention) {
        DecoderWeights w = weights;
        for (int l = 0; l < L; l++) {
            DecoderWeights.Layer ly = w.layers[l];
            Tensor res = a.res[l], x1 = a.at(a.x1, l), ln1 = a.at(a.ln1, l), ln2 = a.at(a.ln2, l);
            Tensor q = a.at(a.q, l), k = a.at(a.k, l), v = a.at(a.v, l), att = a.at(a.att, l);
            // attention block: x1 = res + o_proj(attn(rope(norm_qk(proj(rmsnorm(res))))))
            backend.rmsNorm(res, ly.ln1().w(), eps, ln1, a.at(a.rstd1, l));
            if (config.qkNorm()) {
                Tensor qPre = a.at(a.qPre, l), kPre = a.at(a.kPre, l);
                backend.linear(ln1, ly.q().w(), ly.q().b(), null, qPre);
                backend.linear(ln1, ly.k().w(), ly.k().b(), null, kPre);
                backend.rmsNorm(qPre, ly.qNorm().w(), eps, q, a.at(a.rstdQ, l));
                backend.rmsNorm(kPre, ly.kNorm().w(), eps, k, a.at(a.rstdK, l));
            } else {
                backend.linear(ln1, ly.q().w(), ly.q().b(), null, q);
                backend.linear(ln1, ly.k().w(), ly.k().b(), null, k);
            }
            backend.linear(ln1, ly.v().w(), ly.v().b(), null, v);
            backend.rope(q, a.rope, H, false);
            backend.rope(k, a.rope, KH, false);
            attention.apply(l, k, v, q, att, a.at(a.lse, l));
            // the residual add rides in the GEMM's epilogue (C = res, D = x1)
            backend.linear(att, ly.o().w(), ly.o().b(), res, x1);
            // MLP block: res' = x1 + down(silu(gate(n)) * up(n)), n = rmsnorm(x1)
            backend.rmsNorm(x1, ly.ln2().w(), eps, ln2, a.at(a.rstd2, l));
            Tensor g = a.at(a.g, l), u = a.at(a.u, l), h = a.at(a.h, l);
            backend.linear(ln2, ly.gate().w(), ly.gate().b(), null, g);
            backend.linear(ln2, ly.up().w(), ly.up().b(), null, u);
            backend.swiglu(g, u, h);
            backend.linear(h, ly.down().w(), ly.down().b(), x1, a.res[l + 1]);
        }
        backend.rmsNorm(a.res[L], w.finalNorm.w(), eps, a.lnf, a.rstdf);
    }

    // ================================================================== backward

    /**
     * Backward of the last {@link #forward}: accumulates d loss / d parameter into the gradients given dlogits
     * (B,T,V) in the compute dtype (which may be the logits buffer itself).
     *
     * @param dlogits the gradient of the loss with respect to the logits
     */
    public void backward(Tensor dlogits) {
        checkOpen();
        DecoderActivations a = last;
        if (a == null || !a.saved) {
            throw new IllegalStateException("backward needs a preceding training forward (forward/sftLoss/grpoLoss)");
        }
        a.ensureBackwardScratch();
        DecoderWeights w = weights;
        AttentionShape shape = AttentionShape.selfAttention(a.B, a.T, H, KH, D);
        Tensor mask = maskOf(a);
        // lm head (tied: into the embedding's gradient)
        backend.linearBackwardWeight(dlogits, a.lnf, w.lmHeadGrad, null);
        backend.linearBackwardInput(dlogits, w.lmHead, a.dln, false);
        backend.rmsNormBackward(a.dln, a.res[L], w.finalNorm.w(), a.rstdf, a.dres, w.finalNorm.gw(), false);
        for (int l = L - 1; l >= 0; l--) {
            DecoderWeights.Layer ly = w.layers[l];
            // MLP: res[l+1] = x1 + down(h); dres holds d res[l+1]
            backend.linearBackwardWeight(a.dres, a.h[l], ly.down().gw(), ly.down().gb());
            backend.linearBackwardInput(a.dres, ly.down().w(), a.dh, false);
            backend.swigluBackward(a.g[l], a.u[l], a.dh, a.dg, a.du);
            backend.linearBackwardWeight(a.dg, a.ln2[l], ly.gate().gw(), ly.gate().gb());
            backend.linearBackwardWeight(a.du, a.ln2[l], ly.up().gw(), ly.up().gb());
            backend.linearBackwardInput(a.dg, ly.gate().w(), a.dln, false);
            backend.linearBackwardInput(a.du, ly.up().w(), a.dln, true);
            backend.rmsNormBackward(a.dln, a.x1[l], ly.ln2().w(), a.rstd2[l], a.dres, ly.ln2().gw(), true);
            // attention: x1 = res[l] + o(att); dres now holds d x1
            backend.linearBackwardWeight(a.dres, a.att[l], ly.o().gw(), ly.o().gb());
            backend.linearBackwardInput(a.dres, ly.o().w(), a.datt, false);
            backend.attentionBackward(a.q[l], a.k[l], a.v[l], a.att[l], a.lse[l], a.datt, a.dq, a.dk, a.dv, shape,
                    mask);
            backend.rope(a.dq, a.rope, H, true);
            backend.rope(a.dk, a.rope, KH, true);
            if (config.qkNorm()) {
                backend.rmsNormBackward(a.dq, a.qPre[l], ly.qNorm().w(), a.rstdQ[l], a.dq, ly.qNorm().gw(), false);
                backend.rmsNormBackward(a.dk, a.kPre[l], ly.kNorm().w(), a.rstdK[l], a.dk, ly.kNorm().gw(), false);
            }
            backend.linearBackwardWeight(a.dq, a.ln1[l], ly.q().gw(), ly.q().gb());
            backend.linearBackwardWeight(a.dk, a.ln1[l], ly.k().gw(), ly.k().gb());
            backend.linearBackwardWeight(a.dv, a.ln1[l], ly.v().gw(), ly.v().gb());
            backend.linearBackwardInput(a.dq, ly.q().w(), a.dln, false);
            backend.linearBackwardInput(a.dk, ly.k().w(), a.dln, true);
            backend.linearBackwardInput(a.dv, ly.v().w(), a.dln, true);
            backend.rmsNormBackward(a.dln, a.res[l], ly.ln1().w(), a.rstd1[l], a.dres, ly.ln1().gw(), true);
        }
        backend.embeddingBackward(a.ids, a.dres, w.embedGrad);
    }

    /** The key mask the last forward of {@code a} used (null when it had none). */
    private static Tensor maskOf(DecoderActivations a) {
        return a.masked ? a.mask : null;
    }

    // ================================================================== losses (see DecoderLosses)

    /**
     * SFT step: HF causal-LM loss (mean over shifted positions whose label != -100; any negative label is ignored)
     * and, with {@code backward}, its gradient accumulated into the gradients. Returns 0 and touches no gradient when
     * no label counts. Reads the loss back to the host (a synchronisation point: training loops use
     * {@link #sftLossSum(int, int[], int[], int[], int[], float, Tensor)}).
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param labels        (B,T) usually the input ids with prompt and padding positions set to -100
     * @param positionIds   (B,T) or null
     * @param attentionMask (B,T) or null
     * @param backward      whether to backpropagate
     * @return the mean loss
     */
    public float sftLoss(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask,
                         boolean backward) {
        return losses.sftLoss(batch, inputIds, labels, positionIds, attentionMask, backward);
    }

    /**
     * {@link #sftLoss(int, int[], int[], int[], int[], boolean)} with backward, no padding, default positions.
     *
     * @param batch    B
     * @param inputIds (B,T)
     * @param labels   (B,T)
     * @return the mean loss
     */
    public float sftLoss(int batch, int[] inputIds, int[] labels) {
        return sftLoss(batch, inputIds, labels, null, null, true);
    }

    /**
     * Number of shifted label positions that count in the SFT loss (label &gt;= 0 at t+1).
     *
     * @param batch  B
     * @param labels (B,T)
     * @return the count
     */
    public static int countTargets(int batch, int[] labels) {
        return DecoderLosses.countTargets(batch, labels);
    }

    /**
     * The SUM of the token cross-entropies of the SFT loss, added into {@code lossSum} (F32 (1) on the backend);
     * with {@code gradScale != 0} also backpropagates {@code gradScale * d(sum)} into the gradients. For gradient
     * accumulation over micro-batches pass {@code gradScale = 1 / (label tokens in the whole batch)} so the
     * accumulated gradient is that of the global mean. {@code gradScale == 0} evaluates only (no activations kept).
     * Nothing is read back to the host.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param labels        (B,T)
     * @param positionIds   (B,T) or null
     * @param attentionMask (B,T) or null
     * @param gradScale     gradient factor, 0 for evaluation
     * @param lossSum       F32 (1), accumulated
     */
    public void sftLossSum(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask,
                           float gradScale, Tensor lossSum) {
        losses.sftLossSum(batch, inputIds, labels, positionIds, attentionMask, gradScale, lossSum);
    }

    /**
     * {@link #sftLossSum(int, int[], int[], int[], int[], float, Tensor)} read back to the host.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param labels        (B,T)
     * @param positionIds   (B,T) or null
     * @param attentionMask (B,T) or null
     * @param gradScale     gradient factor, 0 for evaluation
     * @return the sum of the token losses
     */
    public double sftLossSum(int batch, int[] inputIds, int[] labels, int[] positionIds, int[] attentionMask,
                             float gradScale) {
        return losses.sftLossSumHost(batch, inputIds, labels, positionIds, attentionMask, gradScale);
    }

    /**
     * Log-probabilities of each next token, (B, T-1), at temperature 1, read back to the host: {@code logp[b,t] =
     * log_softmax(logits[b,t])[ids[b,t+1]]}. Forward only.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param positionIds   (B,T) or null
     * @param attentionMask (B,T) or null
     * @return (B, T-1) log-probs
     */
    public float[] logProbs(int batch, int[] inputIds, int[] positionIds, int[] attentionMask) {
        return losses.logProbsHost(batch, inputIds, positionIds, attentionMask, 1f);
    }

    /**
     * Log-probabilities of each next token at temperature T (of {@code logits / T}, as TRL computes GRPO's policy,
     * old and reference log-probs), into {@code out} (B,T) F32 on the backend: {@code out[b,t] = logp of ids[b,t+1]},
     * and 0 at t = T-1 (which predicts nothing). Forward only; nothing is read back.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param positionIds   (B,T) or null
     * @param attentionMask (B,T) or null
     * @param temperature   T &gt; 0
     * @param out           F32 (B,T)
     */
    public void logProbs(int batch, int[] inputIds, int[] positionIds, int[] attentionMask, float temperature,
                         Tensor out) {
        losses.logProbs(batch, inputIds, positionIds, attentionMask, temperature, out);
    }

    /**
     * A GRPO loss evaluation read back to the host: the loss result and the current policy's log-probs (B, T-1).
     *
     * @param result the loss, dL/dlogp and diagnostics
     * @param logp   (B, T-1) log-probs of the current policy
     */
    public record GrpoStep(GrpoLoss.Result result, float[] logp) {
        /** {@return the loss} */
        public double loss() {
            return result.loss();
        }
    }

    /**
     * GRPO step with host inputs and outputs (tests and tools; the trainer uses the device form): forward, per-token
     * log-probs at T = 1, {@link GrpoLoss}, and the gradient into every parameter.
     *
     * @param batch          B
     * @param inputIds       (B,T)
     * @param positionIds    (B,T) or null
     * @param attentionMask  (B,T) or null
     * @param completionMask (B, T-1) aligned with the log-probs
     * @param oldLogp        (B, T-1), or null for on-policy (r = 1 with the gradient of r)
     * @param refLogp        (B, T-1), or null when the loss has beta = 0
     * @param advantages     (B)
     * @param loss           the objective
     * @return the step's results
     */
    public GrpoStep grpoLoss(int batch, int[] inputIds, int[] positionIds, int[] attentionMask,
                             float[] completionMask, float[] oldLogp, float[] refLogp, float[] advantages,
                             GrpoLoss loss) {
        return losses.grpoLossHost(batch, inputIds, positionIds, attentionMask, completionMask, oldLogp, refLogp,
                advantages, loss);
    }

    /**
     * GRPO step on the backend: forward, per-token log-probs at temperature T, the GRPO objective (backend op), and
     * its gradient accumulated into every parameter; the statistics {@code [loss, meanRatio, clipFraction, meanKl]}
     * go into {@code stats} (F32 (4)). Per-token tensors are (B,T) with position T-1 unused (mask 0 there).
     *
     * @param batch          B
     * @param inputIds       (B,T)
     * @param positionIds    (B,T) or null
     * @param attentionMask  (B,T) or null
     * @param completionMask I32 (B,T): 1 where position t's next token is a completion token
     * @param oldLogp        F32 (B,T) or null (on-policy)
     * @param refLogp        F32 (B,T) or null (beta = 0)
     * @param advantages     F32 (B)
     * @param loss           the objective
     * @param temperature    sampling temperature T
     * @param stats          F32 (4) output
     */
    public void grpoLoss(int batch, int[] inputIds, int[] positionIds, int[] attentionMask, Tensor completionMask,
                         Tensor oldLogp, Tensor refLogp, Tensor advantages, GrpoLoss loss, float temperature,
                         Tensor stats) {
        losses.grpoLoss(batch, inputIds, positionIds, attentionMask, completionMask, oldLogp, refLogp, advantages,
                loss, temperature, stats);
    }

    // ================================================================== incremental decoding (see DecoderDecoding)

    /**
     * Runs {@code ids} (B, T) through the model appending their keys/values to the cache, and returns the logits of
     * each row's last position (B, V) (a model-owned buffer valid until the next call). Prefill passes the
     * left-padded prompts with their mask and positions; decoding passes one token per row (T = 1, mask null).
     *
     * @param cache         the KV cache
     * @param ids           (B,T)
     * @param positionIds   (B,T), or null for cache.length + t
     * @param attentionMask (B,T) or null (all tokens real)
     * @return the last positions' logits
     */
    public Tensor forwardCached(KvCache cache, int[] ids, int[] positionIds, int[] attentionMask) {
        return decoding.forwardCached(cache, ids, positionIds, attentionMask);
    }

    /**
     * Prefill: runs the left-padded prompts (B, Tp) into an empty cache and returns each row's last logits (B, V).
     * Position ids default to HF's {@code clamp(cumsum(mask) - 1, 0)}.
     *
     * @param cache         an empty cache
     * @param promptIds     (B, Tp)
     * @param attentionMask (B, Tp) or null
     * @param positionIds   (B, Tp) or null
     * @return the last positions' logits
     */
    public Tensor prefill(KvCache cache, int[] promptIds, int[] attentionMask, int[] positionIds) {
        return decoding.prefill(cache, promptIds, attentionMask, positionIds);
    }

    /**
     * Decode: one new token per row (B) at the given positions (B); returns the next-token logits (B, V).
     *
     * @param cache       the cache
     * @param tokens      (B)
     * @param positionIds (B) or null
     * @return the next-token logits
     */
    public Tensor decode(KvCache cache, int[] tokens, int[] positionIds) {
        return decoding.decode(cache, tokens, positionIds);
    }

    /**
     * One decode step from device-resident state (see {@link DecodeState}): every row's next token through the model
     * against the KV cache, keys and values appended at the device's cache length; returns the next-token logits
     * (B, V), a model-owned buffer. The step reads no host value that changes between steps, so a backend can record
     * it once ({@link Backend#capture}) and replay it; the caller advances {@code cache} on the host
     * ({@link KvCache#advance}) by the steps it ran.
     *
     * @param cache the KV cache (prefilled)
     * @param state the device state: next ids, positions, cache length
     * @return the next-token logits
     */
    public Tensor decodeStep(KvCache cache, DecodeState state) {
        checkOpen();
        return decoding.decodeStep(cache, state);
    }

    /**
     * The final-norm hidden states {@code (B,T,C)} (what multiplies the output projection into the logits), without
     * the logits: the backbone of decoder embedding models. Forward only; a model-owned buffer valid until the next
     * forward of the same shape.
     *
     * @param batch         B
     * @param inputIds      (B,T)
     * @param positionIds   (B,T) or null for 0..T-1 in every row
     * @param attentionMask (B,T) 1 = token, 0 = padding, or null for none
     * @return the hidden states
     */
    public Tensor hiddenStates(int batch, int[] inputIds, int[] positionIds, int[] attentionMask) {
        checkInputs(batch, inputIds, positionIds, attentionMask);
        int T = inputIds.length / batch;
        DecoderActivations a = activations(batch, T, false);
        boolean masked = uploadInputs(a, inputIds, positionIds, attentionMask, 0);
        run(a, masked, null);
        last = a;
        return a.lnf;
    }

    // ================================================================== lifecycle

    void checkOpen() {
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
        losses.close();
        weights.close();
    }
}
