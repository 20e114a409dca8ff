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

    /** {@return a short name for logs, e.g. "cpu"} */
    String name();

    // ---- memory ----

    /**
     * A tensor with unspecified contents.
     *
     * @param shape its dimensions
     * @return the new tensor, owned by the caller
     */
    Tensor alloc(long... shape);

    /**
     * A tensor filled with zeros.
     *
     * @param shape its dimensions
     * @return the new tensor, owned by the caller
     */
    Tensor zeros(long... shape);

    /**
     * Copies {@code data} (row-major, {@code numel(shape)} elements) into a new tensor.
     *
     * @param data  the values
     * @param shape the tensor's dimensions
     * @return the new tensor, owned by the caller
     */
    Tensor upload(float[] data, long... shape);

    /**
     * Copies a tensor to the host.
     *
     * @param t the tensor
     * @return its values, row-major
     */
    float[] download(Tensor t);

    /**
     * Copies into an existing tensor of the same element count.
     *
     * @param data the values, {@code dst.numel()} of them
     * @param dst  the tensor to overwrite
     */
    void upload(float[] data, Tensor dst);

    /**
     * {@code dst = src}, same element count.
     *
     * @param src the source
     * @param dst the destination
     */
    void copy(Tensor src, Tensor dst);

    /**
     * Sets every element of {@code t} to {@code value}.
     *
     * @param t     the tensor
     * @param value the value
     */
    void fill(Tensor t, float value);

    /**
     * Copies rows of width {@code width} between batched buffers: for every batch {@code b} and row {@code r <
     * rows}, {@code dst[b, dstRow0 + r, :] = src[b, srcRow0 + r, :]}, where {@code src} has {@code srcStride} rows
     * per batch and {@code dst} {@code dstStride}. Used to append keys/values to a KV cache.
     *
     * @param src       source, {@code (batch, srcStride, width)}
     * @param srcStride rows per batch in {@code src}
     * @param srcRow0   first source row of each batch
     * @param dst       destination, {@code (batch, dstStride, width)}
     * @param dstStride rows per batch in {@code dst}
     * @param dstRow0   first destination row of each batch
     * @param batch     batches
     * @param rows      rows copied per batch
     * @param width     elements per row
     */
    void copyRows(Tensor src, int srcStride, int srcRow0, Tensor dst, int dstStride, int dstRow0, int batch,
                  int rows, int width);

    /**
     * {@code dst[i,:] = src[rows[i],:]}.
     *
     * @param src  {@code (R,W)}
     * @param rows indices into src's rows
     * @param dst  {@code (rows.length,W)}
     */
    void gatherRows(Tensor src, int[] rows, Tensor dst);

    // ---- elementwise and reductions ----

    /**
     * {@code out = a + b}; out may alias a or b.
     *
     * @param a   first addend
     * @param b   second addend, same element count
     * @param out the sum
     */
    void add(Tensor a, Tensor b, Tensor out);

    /**
     * {@code t *= s}.
     *
     * @param t the tensor, in place
     * @param s the factor
     */
    void scale(Tensor t, float s);

    /**
     * {@code sum(t^2)} accumulated in double (global-norm clipping).
     *
     * @param t the tensor
     * @return the sum of squares
     */
    double sumOfSquares(Tensor t);

    /**
     * Row-wise argmax of x (first index on ties, as torch).
     *
     * @param x {@code (R,W)}
     * @return {@code (R)} column indices
     */
    int[] argmaxRows(Tensor x);

    // ---- linear layers: y (N,out) = x (N,in) · Wᵀ + bias, W (out,in) as in torch.nn.Linear ----

    /**
     * {@code y = x·Wᵀ + bias}; with accumulate {@code y += x·Wᵀ + bias}.
     *
     * @param x          input {@code (N,in)}
     * @param w          weight {@code (out,in)}
     * @param bias       {@code (out)} or null
     * @param y          output {@code (N,out)}
     * @param accumulate add to y instead of overwriting it
     */
    void linear(Tensor x, Tensor w, Tensor bias, Tensor y, boolean accumulate);

    /**
     * {@code dx (N,in) = dy (N,out) · W}; with accumulate {@code dx += ...}.
     *
     * @param dy         gradient of the output {@code (N,out)}
     * @param w          weight {@code (out,in)}
     * @param dx         gradient of the input {@code (N,in)}
     * @param accumulate add to dx instead of overwriting it
     */
    void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate);

    /**
     * {@code dW (out,in) += dyᵀ · x}; {@code dBias (out) += column sums of dy} when dBias is not null.
     *
     * @param dy    gradient of the output {@code (N,out)}
     * @param x     the layer's input {@code (N,in)}
     * @param dw    weight gradient {@code (out,in)}, accumulated
     * @param dBias bias gradient {@code (out)}, accumulated, or null
     */
    void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias);

    // ---- embedding ----

    /**
     * {@code out[n,:] = table[ids[n],:]}.
     *
     * @param ids   {@code (N)} token ids in [0, V)
     * @param table {@code (V,C)}
     * @param out   {@code (N,C)}
     */
    void embedding(int[] ids, Tensor table, Tensor out);

    /**
     * Scatter-add: {@code dTable[ids[n],:] += dOut[n,:]}.
     *
     * @param ids    {@code (N)} token ids
     * @param dOut   gradient of the embedding output {@code (N,C)}
     * @param dTable table gradient {@code (V,C)}, accumulated
     */
    void embeddingBackward(int[] ids, Tensor dOut, Tensor dTable);

    // ---- RMSNorm over the last dim D = w.numel(); rows = x.numel()/D (per-head norms pass (N*H, D)) ----

    /**
     * {@code out = w * (x * rstd)}, {@code rstd = 1/sqrt(mean(x^2) + eps)} saved per row.
     *
     * @param x    input {@code (rows, D)}
     * @param w    weight {@code (D)}
     * @param eps  added to the mean square
     * @param out  output, x's shape
     * @param rstd {@code (rows)}, saved for the backward
     */
    void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd);

    /**
     * {@code dx (+)= d/dx}, {@code dw += d/dw} of rmsNorm given the saved rstd. dx may alias dOut.
     *
     * @param dOut         gradient of the output {@code (rows, D)}
     * @param x            the forward input
     * @param w            weight {@code (D)}
     * @param rstd         {@code (rows)} from the forward
     * @param dx           gradient of the input
     * @param dw           weight gradient {@code (D)}, accumulated
     * @param accumulateDx add to dx instead of overwriting it (the fused residual add)
     */
    void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw, boolean accumulateDx);

    // ---- rotary position embedding, HF rotate_half convention ----

    /**
     * Fills {@code table (N, D)} with {@code cos(pos*invFreq)} in the first D/2 columns and {@code sin} in the
     * last D/2, with the angle computed in fp32 like HF.
     *
     * @param positions {@code (N)} token positions
     * @param invFreq   {@code (D/2)} inverse frequencies
     * @param table     {@code (N, D)}, overwritten
     */
    void ropeTable(int[] positions, Tensor invFreq, Tensor table);

    /**
     * In place on x (N, H*D): {@code x = x*cos + rotate_half(x)*sin} per head; with {@code inverse} the
     * transposed rotation, which is the backward of the forward rotation.
     *
     * @param x       {@code (N, H*D)}, rotated in place
     * @param table   {@code (N, D)} from {@link #ropeTable}
     * @param heads   H
     * @param inverse apply the inverse (transposed) rotation
     */
    void rope(Tensor x, Tensor table, int heads, boolean inverse);

    // ---- attention ----

    /**
     * Causal softmax attention with optional key padding mask (see {@link AttentionShape} for layouts); saves the
     * per-row log-sum-exp of the scaled scores in lse (B,H,Tq) for the backward. A query row with no visible key
     * (a padding query) outputs zeros and gets lse = +inf, so it contributes no gradient.
     *
     * @param q       queries
     * @param k       keys
     * @param v       values
     * @param out     output, q's layout
     * @param lse     {@code (B,H,Tq)}, saved for the backward
     * @param s       sizes and layouts
     * @param keyMask {@code (B,Tk)} 1 = visible key, 0 = padding; null = all visible
     */
    void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, int[] keyMask);

    /**
     * Gradients of {@link #attention}: overwrites dq, dk, dv (same layouts as q, k, v).
     *
     * @param q       queries of the forward
     * @param k       keys of the forward
     * @param v       values of the forward
     * @param out     output of the forward
     * @param lse     lse of the forward
     * @param dOut    gradient of the output
     * @param dq      gradient of q, overwritten
     * @param dk      gradient of k, overwritten
     * @param dv      gradient of v, overwritten
     * @param s       sizes and layouts
     * @param keyMask the forward's key mask, or null
     */
    void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq, Tensor dk,
                           Tensor dv, AttentionShape s, int[] keyMask);

    // ---- MLP ----

    /**
     * {@code h = silu(g) * u}, all (N,F).
     *
     * @param g gate
     * @param u up projection
     * @param h output
     */
    void swiglu(Tensor g, Tensor u, Tensor h);

    /**
     * Overwrites dg and du from dh.
     *
     * @param g  gate of the forward
     * @param u  up projection of the forward
     * @param dh gradient of the output
     * @param dg gradient of g, overwritten
     * @param du gradient of u, overwritten
     */
    void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du);

    // ---- losses on logits (N,V); targets (N) with negative entries ignored ----

    /**
     * Fused cross entropy: returns {@code sum over counted rows of -log_softmax(logits)[target]} and writes
     * {@code gradScale * (softmax - onehot)} into dLogits (zeros on ignored rows). dLogits may be logits itself,
     * so no (N,V) buffer beyond the logits is needed.
     *
     * @param logits    {@code (N,V)}
     * @param targets   {@code (N)}, negative entries ignored
     * @param gradScale factor of the gradient (e.g. 1 / counted rows for a mean loss)
     * @param dLogits   {@code (N,V)}, overwritten
     * @return the summed loss over the counted rows
     */
    double crossEntropy(Tensor logits, int[] targets, float gradScale, Tensor dLogits);

    /**
     * {@code logp[n] = log_softmax(logits[n])[targets[n]]} (0 on ignored rows); saves lse (N).
     *
     * @param logits  {@code (N,V)}
     * @param targets {@code (N)}, negative entries ignored
     * @param logp    {@code (N)}, overwritten
     * @param lse     {@code (N)}, overwritten, for the backward
     */
    void logProbGather(Tensor logits, int[] targets, Tensor logp, Tensor lse);

    /**
     * Backward of {@link #logProbGather}: {@code dLogits[n,:] = dLogp[n] * (onehot(target) - softmax)} (zeros on
     * ignored rows). dLogits may be logits itself.
     *
     * @param logits  {@code (N,V)}
     * @param targets {@code (N)}, negative entries ignored
     * @param lse     {@code (N)} from the forward
     * @param dLogp   {@code (N)}, the upstream gradient
     * @param dLogits {@code (N,V)}, overwritten
     */
    void logProbGatherBackward(Tensor logits, int[] targets, Tensor lse, Tensor dLogp, Tensor dLogits);

    // ---- optimizer ----

    /**
     * One AdamW update in place of param, with first/second moments m, v (same shape).
     *
     * @param param the parameter, updated
     * @param grad  its gradient
     * @param m     first moment, updated
     * @param v     second moment, updated
     * @param p     learning rate, betas, eps, weight decay and step
     */
    void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWParams p);

    /** Releases backend-wide resources (thread pools, streams); tensors must be closed by their owners. */
    @Override
    default void close() {}

    // ---- encoder (BERT) ops, forward only ----

    /**
     * LayerNorm over the last dim D = w.numel() (rows = x.numel()/D): {@code out = (x - mean) * rstd * w + b},
     * {@code rstd = 1/sqrt(var + eps)} with the biased variance, as torch.nn.LayerNorm. out may alias x.
     *
     * @param x   input {@code (rows, D)}
     * @param w   weight {@code (D)}
     * @param b   bias {@code (D)}
     * @param eps added to the variance
     * @param out output, x's shape
     */
    void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out);

    /**
     * {@code out = x * 0.5 * (1 + erf(x / sqrt(2)))}, the exact GELU (HF "gelu"); out may alias x.
     *
     * @param x   input
     * @param out output, x's shape
     */
    void gelu(Tensor x, Tensor out);

    /**
     * Bidirectional (non-causal) softmax attention as in BERT: every query sees every key whose mask is 1
     * (layouts of {@link AttentionShape}; {@code qOffset} must be 0 and {@code qLen == kLen}). Queries at padding
     * positions are computed like any other (HF does the same); a row with no visible key outputs zeros.
     *
     * @param q       queries
     * @param k       keys
     * @param v       values
     * @param out     output, q's layout
     * @param s       sizes and layouts
     * @param keyMask {@code (B,T)} 1 = visible key; null = all visible
     */
    void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, int[] keyMask);

    /**
     * {@code pooled (B,C)} = mean of {@code x (B,T,C)} over the positions whose {@code mask (B,T)} is 1 (the count
     * clamped at 1e-9 like sentence-transformers, so an all-padding row gives zeros); mask null = all positions.
     *
     * @param x      {@code (B,T,C)}
     * @param mask   {@code (B,T)} or null
     * @param pooled {@code (B,C)}, overwritten
     */
    void meanPool(Tensor x, int[] mask, Tensor pooled);

    /**
     * In place: every row of {@code x (R,W)} divided by {@code max(||row||, eps)} (torch F.normalize).
     *
     * @param x   {@code (R,W)}, normalised in place
     * @param eps lower bound of the norm
     */
    void l2NormalizeRows(Tensor x, float eps);
}
