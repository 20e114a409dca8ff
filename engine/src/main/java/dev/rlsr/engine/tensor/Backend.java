package dev.rlsr.engine.tensor;

import dev.rlsr.kernels.CosineSimilarityReference;
import dev.rlsr.kernels.GroupAdvantagesReference;
import dev.rlsr.kernels.DType;

import java.lang.foreign.MemorySegment;

/**
 * The operations the models need, on tensors that live in one backend's memory (Java arrays for {@code CpuBackend},
 * device memory for {@code CudaBackend}). Model code is written against this interface only.
 *
 * <p>Legend: {@code N} rows (tokens, B*T), {@code C} hidden size, {@code V} vocabulary, {@code in/out} features of a
 * linear layer, {@code H} heads, {@code D} head dim. Tensors are dense and row-major; sizes are inferred from the
 * tensors' shapes and checked.
 *
 * <p><b>Dtypes.</b> "act" is the activation dtype of the call (F32, or BF16 on a device in bf16 mode): activations
 * and the compute copy of the weights. Parameter gradients, optimizer state and statistics (rstd, lse, losses,
 * norms) are F32. Token ids, targets, positions and masks are I32 tensors on the backend. Accumulation is fp32.
 *
 * <p><b>No op returns a host value.</b> Losses, norms and argmaxes are written into tensors; a caller reads host values
 * with {@link #download}/{@link #downloadInts} at points it chooses (the trainers: once per optimizer step). Ops are
 * asynchronous on a device backend; a download waits for the work before it.
 *
 * <p>"Accumulate" means {@code out += result}; gradient outputs of parameters always accumulate (like {@code .grad}
 * in torch), so a training step starts with zeroed grads. Unless an op says an output may alias an input, outputs
 * must be distinct from inputs.
 */
public interface Backend extends AutoCloseable {

    /** {@return a short name: "cpu", "cuda"} */
    String name();

    /** {@return the precision this backend trains in unless told otherwise} */
    Precision defaultPrecision();

    /**
     * Whether the backend can compute with activations of this dtype (every backend stores F32, BF16 and I32).
     *
     * @param act the activation dtype
     * @return true when ops accept it
     */
    boolean computes(DType act);

    // ---- memory ----

    /**
     * A tensor with unspecified contents.
     *
     * @param dtype element type
     * @param shape shape
     * @return the tensor
     */
    Tensor alloc(DType dtype, long... shape);

    /**
     * A tensor of zeros.
     *
     * @param dtype element type
     * @param shape shape
     * @return the tensor
     */
    Tensor zeros(DType dtype, long... shape);

    /**
     * An F32 tensor of zeros.
     *
     * @param shape shape
     * @return the tensor
     */
    default Tensor zeros(long... shape) {
        return zeros(DType.F32, shape);
    }

    /**
     * Copies {@code data} (row-major, {@code numel(shape)} values) into a new tensor of a floating dtype (values are
     * rounded to bf16 for BF16).
     *
     * @param data  values
     * @param dtype F32 or BF16
     * @param shape shape
     * @return the tensor
     */
    Tensor upload(float[] data, DType dtype, long... shape);

    /**
     * {@link #upload(float[], DType, long...)} as F32.
     *
     * @param data  values
     * @param shape shape
     * @return the tensor
     */
    default Tensor upload(float[] data, long... shape) {
        return upload(data, DType.F32, shape);
    }

    /**
     * Copies {@code data} into a new I32 tensor.
     *
     * @param data  values
     * @param shape shape
     * @return the tensor
     */
    Tensor upload(int[] data, long... shape);

    /**
     * Copies {@code data} into an existing F32 or BF16 tensor of the same element count.
     *
     * @param data values
     * @param dst  destination
     */
    void upload(float[] data, Tensor dst);

    /**
     * Copies {@code data} into an existing I32 tensor of the same element count.
     *
     * @param data values
     * @param dst  destination
     */
    void upload(int[] data, Tensor dst);

    /**
     * Streams raw little-endian elements of {@code srcType} (F32, BF16 or F16, e.g. a memory-mapped safetensors
     * tensor) into {@code dst} (F32 or BF16) starting at element {@code dstOffset}, converting on the way; the host
     * never holds the tensor as a {@code float[]} (a device backend stages it through a fixed-size buffer).
     *
     * @param src       the source bytes ({@code count * srcType.bytes()} of them)
     * @param srcType   their element type
     * @param count     number of elements
     * @param dst       destination tensor
     * @param dstOffset first element written, relative to {@code dst}
     */
    void uploadRaw(MemorySegment src, DType srcType, long count, Tensor dst, long dstOffset);

    /**
     * Copies a floating tensor to the host (bf16 widened to float). Waits for pending work.
     *
     * @param t the tensor
     * @return its values
     */
    float[] download(Tensor t);

    /**
     * Copies an I32 tensor to the host. Waits for pending work.
     *
     * @param t the tensor
     * @return its values
     */
    int[] downloadInts(Tensor t);

    /**
     * Copies {@code src} into {@code dst} (same element count), converting between F32 and BF16 when the dtypes
     * differ.
     *
     * @param src source
     * @param dst destination
     */
    void copy(Tensor src, Tensor dst);

    /**
     * Sets every element (an I32 tensor gets {@code (int) value}).
     *
     * @param t     the tensor
     * @param value the value
     */
    void fill(Tensor t, float value);

    /**
     * Copies rows of width {@code width} between batched buffers: for every batch {@code b} and row {@code r <
     * rows}, {@code dst[b, dstRow0 + r, :] = src[b, srcRow0 + r, :]}, where {@code src} has {@code srcStride} rows
     * per batch and {@code dst} {@code dstStride}. Same dtype. Used to append keys/values to a KV cache.
     *
     * @param src       source
     * @param srcStride rows per batch in src
     * @param srcRow0   first source row
     * @param dst       destination
     * @param dstStride rows per batch in dst
     * @param dstRow0   first destination row
     * @param batch     batches
     * @param rows      rows per batch
     * @param width     elements per row
     */
    void copyRows(Tensor src, int srcStride, int srcRow0, Tensor dst, int dstStride, int dstRow0, int batch,
                  int rows, int width);

    /**
     * {@code dst[i,:] = src[rows[i],:]}; src (R,W), rows I32 (n), dst (n,W), same dtype.
     *
     * @param src  source rows
     * @param rows row indices
     * @param dst  destination
     */
    void gatherRows(Tensor src, Tensor rows, Tensor dst);

    /** Waits until all work queued on this backend is done (no-op on the CPU). */
    default void synchronize() {}

    // ---- elementwise and reductions ----

    /**
     * {@code out = a + b}; out may alias a or b.
     *
     * @param a   act
     * @param b   act
     * @param out act
     */
    void add(Tensor a, Tensor b, Tensor out);

    /**
     * {@code t *= s}.
     *
     * @param t F32 or BF16
     * @param s factor
     */
    void scale(Tensor t, float s);

    /**
     * Global-norm clipping of a flat F32 gradient, as {@code torch.nn.utils.clip_grad_norm_}: writes
     * {@code sum(g^2)} into {@code sumSq} (F32 (1); the norm is its square root) and
     * {@code min(1, maxNorm / (||g|| + 1e-6))} into {@code scale} (F32 (1); 1 when {@code maxNorm <= 0}). The gradient
     * itself is not changed: {@link #adamW} applies the scale. Deterministic.
     *
     * @param grad    flat F32 gradient
     * @param maxNorm the clip threshold, &lt;= 0 for none
     * @param sumSq   output: the sum of squares
     * @param scale   output: the clip factor
     */
    void clipScale(Tensor grad, float maxNorm, Tensor sumSq, Tensor scale);

    /**
     * Row-wise argmax of x (R,W) F32 or BF16 into out I32 (R) (first index on ties, NaN wins, as torch).
     *
     * @param x   input
     * @param out output
     */
    void argmaxRows(Tensor x, Tensor out);

    // ---- linear layers: y (N,out) = x (N,in) · Wᵀ + bias, W (out,in) as in torch.nn.Linear ----

    /**
     * {@code y = x·Wᵀ + bias (+ residual)}; x, W, bias, residual and y in the act dtype; fp32 accumulation.
     *
     * @param x        (N,in)
     * @param w        (out,in)
     * @param bias     (out) or null
     * @param residual (N,out) added before the output is rounded, or null; may be {@code y} itself
     *                 (then {@code y += x·Wᵀ + bias})
     * @param y        (N,out)
     */
    void linear(Tensor x, Tensor w, Tensor bias, Tensor residual, Tensor y);

    /**
     * {@code dx (N,in) = dy (N,out) · W}; with accumulate {@code dx += ...}. act dtype.
     *
     * @param dy         (N,out)
     * @param w          (out,in)
     * @param dx         (N,in)
     * @param accumulate add into dx
     */
    void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate);

    /**
     * {@code dW (out,in) += dyᵀ · x}; {@code dBias (out) += column sums of dy} when dBias is not null. dy and x in
     * the act dtype, dW and dBias F32.
     *
     * @param dy    (N,out)
     * @param x     (N,in)
     * @param dw    (out,in) F32, accumulated
     * @param dBias (out) F32, accumulated, or null
     */
    void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias);

    // ---- embedding ----

    /**
     * {@code out[n,:] = table[ids[n],:]}.
     *
     * @param ids   I32 (N)
     * @param table (V,C) act
     * @param out   (N,C) act
     */
    void embedding(Tensor ids, Tensor table, Tensor out);

    /**
     * Scatter-add {@code dTable[ids[n],:] += dOut[n,:]}, deterministic.
     *
     * @param ids    I32 (N)
     * @param dOut   (N,C) act
     * @param dTable (V,C) F32
     */
    void embeddingBackward(Tensor ids, Tensor dOut, Tensor dTable);

    // ---- RMSNorm over the last dim D = w.numel(); rows = x.numel()/D (per-head norms pass (N*H, D)) ----

    /**
     * {@code out = w * (x * rstd)}, {@code rstd = 1/sqrt(mean(x^2) + eps)} saved per row.
     *
     * @param x    (rows, D) act
     * @param w    (D) act
     * @param eps  epsilon
     * @param out  (rows, D) act
     * @param rstd (rows) F32
     */
    void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd);

    /**
     * {@code dx (+)= d/dx}, {@code dw += d/dw} of rmsNorm given the saved rstd. dx may alias dOut; accumulating
     * into dx is the residual add of the backward, fused.
     *
     * @param dOut         (rows, D) act
     * @param x            (rows, D) act
     * @param w            (D) act
     * @param rstd         (rows) F32
     * @param dx           (rows, D) act
     * @param dw           (D) F32, accumulated
     * @param accumulateDx add into dx instead of overwriting it
     */
    void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw, boolean accumulateDx);

    // ---- rotary position embedding, HF rotate_half convention ----

    /**
     * Fills {@code table (N, D)} with {@code cos(pos*invFreq)} in the first D/2 columns and {@code sin} in the last
     * D/2, the angle computed in fp32 like HF.
     *
     * @param positions I32 (N)
     * @param invFreq   F32 (D/2)
     * @param table     F32 (N, D)
     */
    void ropeTable(Tensor positions, Tensor invFreq, Tensor table);

    /**
     * In place on x (N, H*D): {@code x = x*cos + rotate_half(x)*sin} per head; with {@code inverse} the transposed
     * rotation, which is the backward of the forward rotation.
     *
     * @param x       (N, heads*D) act
     * @param table   F32 (N, D)
     * @param heads   heads in x
     * @param inverse rotate backwards
     */
    void rope(Tensor x, Tensor table, int heads, boolean inverse);

    // ---- attention ----

    /**
     * Causal softmax attention with an optional key padding mask (layouts of {@link AttentionShape}); saves the
     * per-row log-sum-exp of the scaled scores in lse (B,H,Tq) for the backward. A query row with no visible key
     * (a padding query) outputs zeros and gets lse = +inf, so it contributes no gradient.
     *
     * @param q       act
     * @param k       act
     * @param v       act
     * @param out     act
     * @param lse     F32
     * @param s       geometry
     * @param keyMask I32 (B, kStride) or null
     */
    void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor keyMask);

    /**
     * Gradients of {@link #attention}: overwrites dq, dk, dv (same layouts and dtype as q, k, v).
     *
     * @param q       act
     * @param k       act
     * @param v       act
     * @param out     act
     * @param lse     F32
     * @param dOut    act
     * @param dq      act
     * @param dk      act
     * @param dv      act
     * @param s       geometry
     * @param keyMask I32 (B, kStride) or null
     */
    void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq, Tensor dk,
                           Tensor dv, AttentionShape s, Tensor keyMask);

    // ---- MLP ----

    /**
     * {@code h = silu(g) * u}, all (N,F) act.
     *
     * @param g gate
     * @param u up
     * @param h output
     */
    void swiglu(Tensor g, Tensor u, Tensor h);

    /**
     * Overwrites dg and du from dh.
     *
     * @param g  gate
     * @param u  up
     * @param dh upstream gradient
     * @param dg gate gradient
     * @param du up gradient
     */
    void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du);

    // ---- losses on logits (N,V); targets I32 (N) with negative entries ignored ----

    /**
     * Fused cross entropy: adds {@code sum over counted rows of -log_softmax(logits)[target]} into {@code lossSum}
     * (F32 (1)) and writes {@code gradScale * (softmax - onehot)} into dLogits (zeros on ignored rows). dLogits may
     * be logits itself, so no (N,V) buffer beyond the logits is needed.
     *
     * @param logits    (N,V) act
     * @param targets   I32 (N)
     * @param gradScale factor of the gradient (0 writes zeros)
     * @param dLogits   (N,V) act
     * @param lossSum   F32 (1), accumulated
     */
    void crossEntropy(Tensor logits, Tensor targets, float gradScale, Tensor dLogits, Tensor lossSum);

    /**
     * {@code logp[n] = log_softmax(logits[n]/T)[targets[n]]} (0 on ignored rows); saves lse (N) of logits/T.
     *
     * @param logits      (N,V) act
     * @param targets     I32 (N)
     * @param temperature T &gt; 0
     * @param logp        F32 (N)
     * @param lse         F32 (N)
     */
    void logProbGather(Tensor logits, Tensor targets, float temperature, Tensor logp, Tensor lse);

    /**
     * Backward of {@link #logProbGather}: {@code dLogits[n,:] = dLogp[n] * (onehot(target) - softmax(logits/T)) / T}
     * (zeros on ignored rows). dLogits may be logits itself.
     *
     * @param logits      (N,V) act
     * @param targets     I32 (N)
     * @param lse         F32 (N)
     * @param dLogp       F32 (N)
     * @param temperature T
     * @param dLogits     (N,V) act
     */
    void logProbGatherBackward(Tensor logits, Tensor targets, Tensor lse, Tensor dLogp, float temperature,
                               Tensor dLogits);

    /**
     * The GRPO objective on per-token log-probs (B, L) (see {@code GrpoLoss}): writes dL/dlogp (B, L) and the
     * statistics {@code [loss, meanRatio, clipFraction, meanKl]} into {@code stats} (F32 (4)), all on the backend.
     *
     * @param spec       clip epsilons, beta, aggregation level and normaliser
     * @param logp       F32 (B, L) current policy
     * @param oldLogp    F32 (B, L) sampling policy, or null for on-policy (ratio 1 with its gradient)
     * @param refLogp    F32 (B, L) reference policy, or null when beta = 0
     * @param advantages F32 (B)
     * @param mask       I32 (B, L) 1 on completion tokens
     * @param dLogp      F32 (B, L) output
     * @param stats      F32 (4) output
     */
    void grpoLoss(GrpoSpec spec, Tensor logp, Tensor oldLogp, Tensor refLogp, Tensor advantages, Tensor mask,
                  Tensor dLogp, Tensor stats);

    // ---- decoding whose every step a device graph can replay (the step's changing state lives in device memory) ----

    /**
     * {@code dst[b, *row, :] = src[b, :]} for every b: appends one row per batch at a position read from device memory
     * (a KV cache or a key mask at the current cache length). Same dtype.
     *
     * @param src       (batch, width)
     * @param dst       (batch, dstStride, width)
     * @param dstStride rows per batch in dst
     * @param row       I32 (1): the destination row, in [0, dstStride)
     */
    void appendRowsAt(Tensor src, Tensor dst, int dstStride, Tensor row);

    /**
     * One new query per row against a KV cache whose length is read from device memory: {@link #attention} with
     * qLen = 1, kLen = L and qOffset = L - 1, L = {@code *cacheLen} (the new token's own key already appended). The
     * geometry {@code s} gives batch, kStride (the capacity), heads, kvHeads, headDim and scale; its kLen and qOffset
     * are not used.
     *
     * @param q        (B, 1, H*D) act
     * @param k        (B, kStride, Hkv*D) act
     * @param v        (B, kStride, Hkv*D) act
     * @param out      (B, 1, H*D) act
     * @param lse      (B, H, 1) F32
     * @param s        geometry
     * @param cacheLen I32 (1): L, 1 &lt;= L &lt;= kStride
     * @param keyMask  I32 (B, kStride) or null
     */
    void attentionDecode(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor cacheLen,
                         Tensor keyMask);

    /**
     * {@code t += delta} for every element of an I32 tensor (positions and cache lengths advancing on the device).
     *
     * @param t     I32
     * @param delta the increment
     */
    void addInt(Tensor t, int delta);

    /**
     * Starts sampling a batch: the seed, all rows unfinished, every row at step 0 ({@link SamplingState}).
     *
     * @param state the batch's state
     * @param seed  the generator's seed (row b's draw at step s depends on (seed, b, s) only)
     */
    void samplingReset(SamplingState state, long seed);

    /**
     * One token per row, sampled on the backend (temperature, top-k, top-p, greedy; a counter-based generator of
     * (seed, row, step)): row b reads logits row {@code b / group} (the G samples of a prompt after its prefill share
     * it), writes its token into {@code tokens[b]} and into the state's histories at its step, and its
     * {@code log_softmax(logits/T)[token]}; a finished row writes the pad id; a row that samples a stop id finishes.
     * The same tokens on every backend for the same logits and seed ({@code dev.rlsr.kernels.SamplingReference}).
     *
     * @param logits (B / group, V) act
     * @param group  rows sharing a logits row
     * @param state  the batch's state (advanced)
     * @param tokens I32 (B): the sampled tokens (the next step's input ids)
     */
    void sample(Tensor logits, int group, SamplingState state, Tensor tokens);

    /**
     * Runs {@code step} (a sequence of this backend's ops) once, and records it for replay: on a device a CUDA graph,
     * launched with one call per replay; on the CPU the step simply runs again. Everything the step reads or writes
     * must outlive the graph; its ops must not read host values that change between replays (that is what
     * {@link #appendRowsAt}, {@link #attentionDecode} and {@link #addInt} are for). Memory the step allocates belongs
     * to the graph until it is closed.
     *
     * @param step the ops of one step
     * @return the graph, after the step ran once
     */
    StepGraph capture(Runnable step);

    /** A recorded step ({@link #capture}). */
    interface StepGraph extends AutoCloseable {
        /** Runs the recorded step once more, asynchronously on the backend. */
        void replay();

        /** {@return true when the step was captured as a device graph (false on the CPU: it is re-run)} */
        boolean isDeviceGraph();

        @Override
        void close();
    }

    // ---- optimizer ----

    /**
     * One AdamW update over flat F32 buffers (param is the fp32 master copy): the gradient is multiplied by the
     * device-resident {@code clipScale} (F32 (1), or null = 1), weight decay applies to elements
     * {@code [0, decayEnd)} only, and when {@code computeCopy} (BF16, same element count) is given the updated
     * parameters are also written there.
     *
     * @param param       F32 (n)
     * @param grad        F32 (n)
     * @param m           F32 (n)
     * @param v           F32 (n)
     * @param computeCopy BF16 (n) or null
     * @param decayEnd    elements before this index get weight decay
     * @param p           hyper-parameters of this step
     * @param clipScale   F32 (1) or null
     */
    void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor computeCopy, long decayEnd, AdamWParams p,
               Tensor clipScale);

    /** Releases backend-wide resources (thread pools, streams); tensors must be closed by their owners. */
    @Override
    default void close() {}

    // ---- encoder (BERT) ops, forward only ----

    /**
     * LayerNorm over the last dim D = w.numel(): {@code out = (x - mean) * rstd * w + b}, biased variance, as
     * torch.nn.LayerNorm. out may alias x.
     *
     * @param x   (rows, D) act
     * @param w   (D) act
     * @param b   (D) act
     * @param eps epsilon
     * @param out (rows, D) act
     */
    void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out);

    /**
     * {@code out = x * 0.5 * (1 + erf(x / sqrt(2)))}, the exact GELU (HF "gelu"); out may alias x.
     *
     * @param x   act
     * @param out act
     */
    void gelu(Tensor x, Tensor out);

    /**
     * Bidirectional (non-causal) softmax attention as in BERT: every query sees every key whose mask is 1 (layouts
     * of {@link AttentionShape}; {@code qOffset} must be 0 and {@code qLen == kLen}). A row with no visible key
     * outputs zeros.
     *
     * @param q       act
     * @param k       act
     * @param v       act
     * @param out     act
     * @param s       geometry
     * @param keyMask I32 (B, kStride) or null
     */
    void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, Tensor keyMask);

    /**
     * {@code pooled (B,C)} = mean of {@code x (B,T,C)} over the positions whose mask is 1 (the count clamped at
     * 1e-9 like sentence-transformers, so an all-padding row gives zeros).
     *
     * @param x      (B,T,C) act
     * @param mask   I32 (B,T) or null for all positions
     * @param pooled (B,C) act
     */
    void meanPool(Tensor x, Tensor mask, Tensor pooled);

    /**
     * In place: every row of {@code x (R,W)} divided by {@code max(||row||, eps)} (torch F.normalize).
     *
     * @param x   act
     * @param eps epsilon
     */
    void l2NormalizeRows(Tensor x, float eps);

    // ---- advantages ----

    /**
     * GRPO's group-normalised advantages: for {@code rewards (P,G)} F32 (G = {@code groupSize}, the responses of one
     * prompt contiguous), {@code out[p,g] = (r[p,g] - mean_p) / (std_p + eps)} with the SAMPLE standard deviation
     * (divisor G-1), or {@code r[p,g] - mean_p} when {@code scaleByStd} is false (Dr. GRPO). G = 1 gives 0; a group of
     * equal rewards gives exactly 0. Statistics in fp32 on a GPU, in double on the CPU.
     *
     * <p>The default implementation reads the rewards to the host and runs the kernels module's
     * {@code GroupAdvantagesReference} (what the CPU backend does); a device backend launches its kernel instead.
     *
     * @param rewards    F32, P*G elements, contiguous
     * @param groupSize  G, &gt; 0, dividing the number of rewards
     * @param scaleByStd divide by the group's std plus eps (GRPO), or only subtract the mean (Dr. GRPO)
     * @param eps        added to the std, finite and &gt;= 0
     * @param out        F32, as many elements as rewards, distinct from them
     */
    default void groupAdvantages(Tensor rewards, int groupSize, boolean scaleByStd, float eps, Tensor out) {
        int p = advantageGroups(rewards, groupSize, eps, out);
        upload(GroupAdvantagesReference.compute(download(rewards), p, groupSize, scaleByStd, eps), out);
    }

    /**
     * Checks the operands of {@link #groupAdvantages} and returns the number of groups.
     *
     * @param rewards   F32 (P*G)
     * @param groupSize G
     * @param eps       added to the std
     * @param out       F32 (P*G)
     * @return P
     * @throws IllegalArgumentException naming the operand that does not fit
     */
    static int advantageGroups(Tensor rewards, int groupSize, float eps, Tensor out) {
        if (rewards.dtype() != DType.F32 || out.dtype() != DType.F32) {
            throw new IllegalArgumentException("groupAdvantages: rewards " + rewards + " and out " + out
                    + " must both be F32");
        }
        if (groupSize <= 0 || rewards.numel() == 0 || rewards.numel() % groupSize != 0) {
            throw new IllegalArgumentException("groupAdvantages: rewards " + rewards + " must hold a positive"
                    + " multiple of the group size " + groupSize + " values");
        }
        if (out.numel() != rewards.numel()) {
            throw new IllegalArgumentException("groupAdvantages: out " + out + " must hold one value per reward ("
                    + rewards.numel() + ")");
        }
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException("groupAdvantages: eps must be finite and >= 0, got " + eps);
        }
        return Math.toIntExact(rewards.numel() / groupSize);
    }

    // ---- reward ----

    /**
     * Cosine similarity of embedding rows against references, the RLSR reward's batched cosine: for {@code ref (P,D)}
     * and {@code x (P*G,D)}, {@code out[p*G+g] = cos(ref[p], x[p*G+g])} with {@code cos = a.b / max(|a| |b|, eps)}
     * and eps {@code CosineSimilarity.DEFAULT_EPS} (a zero row gives 0); G is {@code rows(x) / rows(ref)}, so
     * {@code G = 1} pairs row i with row i. fp32 accumulation (double on the CPU), output always F32.
     *
     * <p>The default implementation reads both inputs to the host and runs the kernels module's
     * {@code CosineSimilarityReference} (what the CPU backend does); a device backend launches its kernel instead.
     *
     * @param ref (P,D) act
     * @param x   (P*G,D), the same dtype as ref
     * @param out F32 (P*G), distinct from the inputs
     */
    default void cosineSimilarity(Tensor ref, Tensor x, Tensor out) {
        int[] pgd = cosineDims(ref, x, out);
        float[] c = CosineSimilarityReference.againstReference(download(ref), download(x), pgd[0], pgd[1], pgd[2]);
        upload(c, out);
    }

    /**
     * Checks the operands of {@link #cosineSimilarity} and returns their sizes.
     *
     * @param ref (P,D)
     * @param x   (P*G,D)
     * @param out F32 (P*G)
     * @return {P, G, D}
     * @throws IllegalArgumentException naming the operand whose shape or dtype does not fit
     */
    static int[] cosineDims(Tensor ref, Tensor x, Tensor out) {
        if (ref.dtype() != x.dtype() || (x.dtype() != DType.F32 && x.dtype() != DType.BF16)) {
            throw new IllegalArgumentException("cosineSimilarity: ref " + ref + " and x " + x
                    + " must both be F32 or both BF16");
        }
        if (out.dtype() != DType.F32) {
            throw new IllegalArgumentException("cosineSimilarity: out " + out + " must be F32");
        }
        long d = x.rank() == 0 ? 0 : x.dim(-1);
        if (d <= 0 || ref.rank() == 0 || ref.dim(-1) != d) {
            throw new IllegalArgumentException("cosineSimilarity: ref " + ref + " and x " + x
                    + " need the same non-zero last dimension D");
        }
        long p = ref.numel() / d, rows = x.numel() / d;
        if (p == 0 || rows == 0 || rows % p != 0) {
            throw new IllegalArgumentException("cosineSimilarity: x " + x + " has " + rows + " rows, not a positive"
                    + " multiple of the " + p + " rows of ref " + ref);
        }
        if (out.numel() != rows) {
            throw new IllegalArgumentException("cosineSimilarity: out " + out + " must hold one value per row of x ("
                    + rows + ")");
        }
        return new int[]{Math.toIntExact(p), Math.toIntExact(rows / p), Math.toIntExact(d)};
    }
}
