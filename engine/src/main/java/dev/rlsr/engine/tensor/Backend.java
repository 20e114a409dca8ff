package dev.rlsr.engine.tensor;

/**
 * The operations a decoder model needs, on tensors that live in one backend's memory (host arrays for
 * {@code CpuBackend}, device memory for a CUDA backend). Model code is written against this interface only.
 *
 * <p>Legend: {@code N} rows (tokens, B*T), {@code C} hidden size, {@code V} vocabulary, {@code in/out} features
 * of a linear layer, {@code H} heads, {@code D} head dim. All tensors are fp32, dense and row-major; sizes are
 * inferred from the tensors' element counts and checked. Integer inputs (token ids, positions, masks) are host
 * {@code int[]}; a device backend uploads them. "Accumulate" means {@code out += result}; gradient outputs of
 * parameters always accumulate (like {@code .grad} in torch), so a training step starts with zeroed grads.
 * Unless an op says an output may alias an input, outputs must be distinct from inputs.
 */
public interface Backend extends AutoCloseable {

    String name();

    // ---- memory ----

    /** A tensor with unspecified contents. */
    Tensor alloc(long... shape);

    Tensor zeros(long... shape);

    /** Copies {@code data} (row-major, {@code numel(shape)} elements) into a new tensor. */
    Tensor upload(float[] data, long... shape);

    /** Copies a tensor to the host. */
    float[] download(Tensor t);

    /** Copies into an existing tensor of the same element count. */
    void upload(float[] data, Tensor dst);

    void copy(Tensor src, Tensor dst);

    void fill(Tensor t, float value);

    /**
     * Copies rows of width {@code width} between batched buffers: for every batch {@code b} and row {@code r <
     * rows}, {@code dst[b, dstRow0 + r, :] = src[b, srcRow0 + r, :]}, where {@code src} has {@code srcStride} rows
     * per batch and {@code dst} {@code dstStride}. Used to append keys/values to a KV cache.
     */
    void copyRows(Tensor src, int srcStride, int srcRow0, Tensor dst, int dstStride, int dstRow0, int batch,
                  int rows, int width);

    /** {@code dst[i,:] = src[rows[i],:]}; src (R,W), dst (rows.length,W). */
    void gatherRows(Tensor src, int[] rows, Tensor dst);

    // ---- elementwise and reductions ----

    /** {@code out = a + b}; out may alias a or b. */
    void add(Tensor a, Tensor b, Tensor out);

    /** {@code t *= s}. */
    void scale(Tensor t, float s);

    /** {@code sum(t^2)} accumulated in double (global-norm clipping). */
    double sumOfSquares(Tensor t);

    /** Row-wise argmax of x (R,W) (first index on ties, as torch). */
    int[] argmaxRows(Tensor x);

    // ---- linear layers: y (N,out) = x (N,in) · Wᵀ + bias, W (out,in) as in torch.nn.Linear ----

    /** {@code y = x·Wᵀ + bias} (bias (out) or null); with accumulate {@code y += x·Wᵀ + bias}. */
    void linear(Tensor x, Tensor w, Tensor bias, Tensor y, boolean accumulate);

    /** {@code dx (N,in) = dy (N,out) · W}; with accumulate {@code dx += ...}. */
    void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate);

    /** {@code dW (out,in) += dyᵀ · x}; {@code dBias (out) += column sums of dy} when dBias is not null. */
    void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias);

    // ---- embedding ----

    /** {@code out[n,:] = table[ids[n],:]}; table (V,C), out (N,C). */
    void embedding(int[] ids, Tensor table, Tensor out);

    /** Scatter-add: {@code dTable[ids[n],:] += dOut[n,:]}. */
    void embeddingBackward(int[] ids, Tensor dOut, Tensor dTable);

    // ---- RMSNorm over the last dim D = w.numel(); rows = x.numel()/D (per-head norms pass (N*H, D)) ----

    /** {@code out = w * (x * rstd)}, {@code rstd = 1/sqrt(mean(x^2) + eps)} saved per row (rows). */
    void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd);

    /** {@code dx (+)= d/dx}, {@code dw += d/dw} of rmsNorm given the saved rstd. dx may alias dOut. */
    void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw, boolean accumulateDx);

    // ---- rotary position embedding, HF rotate_half convention ----

    /**
     * Fills {@code table (N, D)} with {@code cos(pos*invFreq)} in the first D/2 columns and {@code sin} in the
     * last D/2, with the angle computed in fp32 like HF; invFreq (D/2); positions (N).
     */
    void ropeTable(int[] positions, Tensor invFreq, Tensor table);

    /**
     * In place on x (N, H*D): {@code x = x*cos + rotate_half(x)*sin} per head; with {@code inverse} the
     * transposed rotation, which is the backward of the forward rotation.
     */
    void rope(Tensor x, Tensor table, int heads, boolean inverse);

    // ---- attention ----

    /**
     * Causal softmax attention with optional key padding mask (see {@link AttentionShape} for layouts); saves the
     * per-row log-sum-exp of the scaled scores in lse (B,H,Tq) for the backward. A query row with no visible key
     * (a padding query) outputs zeros and gets lse = +inf, so it contributes no gradient.
     */
    void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, int[] keyMask);

    /** Gradients of {@link #attention}: overwrites dq, dk, dv (same layouts as q, k, v). */
    void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq, Tensor dk,
                           Tensor dv, AttentionShape s, int[] keyMask);

    // ---- MLP ----

    /** {@code h = silu(g) * u}, all (N,F). */
    void swiglu(Tensor g, Tensor u, Tensor h);

    /** Overwrites dg and du from dh. */
    void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du);

    // ---- losses on logits (N,V); targets (N) with negative entries ignored ----

    /**
     * Fused cross entropy: returns {@code sum over counted rows of -log_softmax(logits)[target]} and writes
     * {@code gradScale * (softmax - onehot)} into dLogits (zeros on ignored rows). dLogits may be logits itself,
     * so no (N,V) buffer beyond the logits is needed.
     */
    double crossEntropy(Tensor logits, int[] targets, float gradScale, Tensor dLogits);

    /** {@code logp[n] = log_softmax(logits[n])[targets[n]]} (0 on ignored rows); saves lse (N). */
    void logProbGather(Tensor logits, int[] targets, Tensor logp, Tensor lse);

    /**
     * Backward of {@link #logProbGather}: {@code dLogits[n,:] = dLogp[n] * (onehot(target) - softmax)} (zeros on
     * ignored rows). dLogits may be logits itself.
     */
    void logProbGatherBackward(Tensor logits, int[] targets, Tensor lse, Tensor dLogp, Tensor dLogits);

    // ---- optimizer ----

    /** One AdamW update in place of param, with first/second moments m, v (same shape). */
    void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWParams p);

    /** Releases backend-wide resources (thread pools, streams); tensors must be closed by their owners. */
    @Override
    default void close() {}

    // ---- encoder (BERT) ops, forward only ----

    /**
     * LayerNorm over the last dim D = w.numel() (rows = x.numel()/D): {@code out = (x - mean) * rstd * w + b},
     * {@code rstd = 1/sqrt(var + eps)} with the biased variance, as torch.nn.LayerNorm. out may alias x.
     */
    void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out);

    /** {@code out = x * 0.5 * (1 + erf(x / sqrt(2)))}, the exact GELU (HF "gelu"); out may alias x. */
    void gelu(Tensor x, Tensor out);

    /**
     * Bidirectional (non-causal) softmax attention as in BERT: every query sees every key whose mask is 1
     * (layouts of {@link AttentionShape}; {@code qOffset} must be 0 and {@code qLen == kLen}). Queries at padding
     * positions are computed like any other (HF does the same); a row with no visible key outputs zeros.
     */
    void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, int[] keyMask);

    /**
     * {@code pooled (B,C)} = mean of {@code x (B,T,C)} over the positions whose {@code mask (B,T)} is 1 (the count
     * clamped at 1e-9 like sentence-transformers, so an all-padding row gives zeros); mask null = all positions.
     */
    void meanPool(Tensor x, int[] mask, Tensor pooled);

    /** In place: every row of {@code x (R,W)} divided by {@code max(||row||, eps)} (torch F.normalize). */
    void l2NormalizeRows(Tensor x, float eps);
}
