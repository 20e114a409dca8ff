package dev.rlsr.kernels;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.KernelArgs;

/**
 * Softmax attention with grouped-query heads on the GPU ({@code native/cuda/attention.cu}): the causal forward for
 * training and prefill, decode against a KV cache (flash-decoding), the backward, and the bidirectional forward of
 * BERT. {@link AttentionReference} is the CPU twin and defines the results.
 *
 * <p>Geometry, the trailing size arguments of every method in the order of the engine's {@code AttentionShape}:
 * {@code batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale}. Layouts (row-major, dense):
 * queries, output and their gradients {@code (batch, qLen, heads*headDim)}; keys, values and their gradients
 * {@code (batch, kStride, kvHeads*headDim)} of which rows {@code [0, kLen)} are valid (rows past kLen are never
 * read); lse {@code (batch, heads, qLen)} F32; key mask {@code (batch, kStride)} I32, 1 = attend, 0 = padding, or 0
 * (null) for all keys. Query {@code i} sits at key position {@code qOffset + i} and sees keys
 * {@code j <= qOffset + i} (causal); query head {@code h} reads kv head {@code h / (heads / kvHeads)}. A query row
 * with no visible key outputs zeros and gets lse = +inf, and the backward gives it no gradient.
 *
 * <p>Activations (q, k, v, out, dOut, dq, dk, dv) are {@link DType#F32} or {@link DType#BF16} (all of one call the
 * same); accumulation is fp32; head dims up to {@value #MAX_HEAD_DIM}. bf16 forward, bidirectional and backward run
 * on tensor cores (mma.sync m16n8k16, fp32 accumulation; P and dS are rounded to bf16 to enter their second
 * product, as in FlashAttention); F32 and decode run on fp32 FMA units. {@code -Drlsr.attention.tensorCores=false}
 * sends bf16 to the fp32 kernels as well. Everything is asynchronous on {@code stream};
 * nothing is allocated: {@link #decode} takes a caller-owned workspace of {@link #decodeWorkspaceBytes} bytes.
 * {@link #decodeAt} is the decode step of a CUDA graph: its cache length is device data, its launches the same at
 * every step.
 * The backward is deterministic: every dq, dk, dv element has one owner thread that adds its terms in a fixed order
 * (the query heads sharing a kv head are looped over inside one block), no float atomics.
 */
public final class Attention {
    /** Largest supported head dimension. */
    public static final int MAX_HEAD_DIM = 128;
    /** Most key splits of one {@link #decode} call; sizes {@link #decodeWorkspaceBytes}. */
    public static final int MAX_DECODE_SPLITS = 32;

    static final String FILE = "attention";
    private static final int THREADS = 128;
    private static final int[] DMAX = {32, 64, 96, 128};
    /** Blocks a decode launch aims for: a few per SM of an H100/H200 (132 SMs), so the cache is read in parallel. */
    private static final int DECODE_TARGET_BLOCKS = 512;
    /** Fewest keys per decode split: two 32-key tiles, below which a split costs more than it saves. */
    private static final int DECODE_MIN_KEYS_PER_SPLIT = 64;
    private static final int DEFAULT_SHARED_LIMIT = 48 * 1024;
    /** bf16 on tensor cores unless -Drlsr.attention.tensorCores=false. */
    static final boolean TENSOR_CORES = !"false".equalsIgnoreCase(System.getProperty("rlsr.attention.tensorCores"));

    /** A kernel and its dynamic shared memory, opted in above 48 KiB once per loaded function. */
    private static final class Launch {
        final Kernel kernel;
        final int sharedBytes;
        private volatile long configured;

        Launch(String name, int sharedBytes) {
            this.kernel = Kernel.of(FILE, name);
            this.sharedBytes = sharedBytes;
        }

        void run(int gx, int gy, int gz, long stream, KernelArgs args) {
            long fn = kernel.function();
            if (sharedBytes > DEFAULT_SHARED_LIMIT && configured != fn) {
                CudaDriver.funcSetAttribute(fn, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        sharedBytes);
                configured = fn;
            }
            CudaDriver.launchKernel(fn, gx, gy, gz, THREADS, 1, 1, sharedBytes, stream, args);
        }
    }

    // [dtype: 0 f32, 1 bf16][DMAX index]; shared sizes as in attention.cu's entry-point comment
    private static final Launch[][] FORWARD = table("forward", d -> fwdShared(d, 64));
    private static final Launch[][] DECODE = table("decode", d -> fwdShared(d, 16));
    private static final Launch[][] BACKWARD_DQ = table("backward_dq", Attention::dqShared);
    private static final Launch[][] BACKWARD_DKDV = table("backward_dkdv", Attention::dkdvShared);
    private static final Launch[] FORWARD_MMA = mmaTable("forward", d -> 2 * (128 * (d + 8) + d * 72) + 256);
    private static final Launch[] BACKWARD_DQ_MMA = mmaTable("backward_dq",
            d -> 2 * ((128 + 2 * mmaTile(d)) * (d + 8) + d * (mmaTile(d) + 8)) + 4 * mmaTile(d));
    private static final Launch[] BACKWARD_DKDV_MMA = mmaTable("backward_dkdv",
            d -> 2 * ((128 + 2 * mmaTile(d)) * (d + 8) + 2 * d * (mmaTile(d) + 8)) + 8 * mmaTile(d));
    private static final Launch[] COMBINE = {new Launch("attention_decode_combine_f32_kernel", 0),
            new Launch("attention_decode_combine_bf16_kernel", 0)};

    private Attention() {
    }

    private static Launch[][] table(String kind, java.util.function.IntUnaryOperator shared) {
        Launch[][] t = new Launch[2][DMAX.length];
        for (int di = 0; di < DMAX.length; di++) {
            t[0][di] = new Launch("attention_" + kind + "_d" + DMAX[di] + "_f32_kernel", shared.applyAsInt(DMAX[di]));
            t[1][di] = new Launch("attention_" + kind + "_d" + DMAX[di] + "_bf16_kernel", shared.applyAsInt(DMAX[di]));
        }
        return t;
    }

    private static Launch[] mmaTable(String kind, java.util.function.IntUnaryOperator shared) {
        Launch[] t = new Launch[DMAX.length];
        for (int di = 0; di < DMAX.length; di++) {
            t[di] = new Launch("attention_" + kind + "_mma_d" + DMAX[di] + "_bf16_kernel", shared.applyAsInt(DMAX[di]));
        }
        return t;
    }

    /** Key tile of the tensor-core dq kernel and query tile of its dk/dv kernel (AM_BWD_TILE in attention.cu). */
    private static int mmaTile(int dmax) {
        return dmax <= 64 ? 64 : 32;
    }

    private static int fwdShared(int dmax, int rows) {
        return 4 * (rows * dmax + 32 * (dmax + 4) + 32 * dmax + 32 * (rows + 4));
    }

    private static int dqShared(int dmax) {
        return 4 * (2 * dqRows(dmax) * dmax + 2 * 32 * (dmax + 4) + 32 * (dqRows(dmax) + 4));
    }

    private static int dqRows(int dmax) {
        return dmax <= 64 ? 64 : 32;
    }

    private static int dkdvShared(int dmax) {
        return 4 * (2 * 32 * dmax + 2 * 32 * (dmax + 4) + 2 * 32 * 36 + 2 * 32);
    }

    private static int dmaxIndex(int headDim) {
        for (int i = 0; i < DMAX.length; i++) {
            if (headDim <= DMAX[i]) {
                return i;
            }
        }
        throw new IllegalStateException("headDim " + headDim + " passed the checks");
    }

    /**
     * Causal forward for training and prefill (also into a cache: {@code kStride > kLen}, {@code qOffset > 0}):
     * flash-attention tiling with an online softmax; writes out and lse.
     *
     * @param q       queries (batch, qLen, heads*headDim)
     * @param k       keys (batch, kStride, kvHeads*headDim)
     * @param v       values, layout of k
     * @param out     output, layout of q (overwritten)
     * @param lse     log-sum-exp (batch, heads, qLen) F32 (overwritten; +inf on rows with no visible key)
     * @param keyMask key mask (batch, kStride) I32, or 0 for all keys
     * @param dtype   F32 or BF16, the type of q, k, v, out
     * @param batch   batch size
     * @param qLen    query rows per batch entry
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in k and v
     * @param qOffset key position of query 0
     * @param heads   query heads
     * @param kvHeads key/value heads (divides heads)
     * @param headDim head dimension, at most {@value #MAX_HEAD_DIM}
     * @param scale   score scale, usually 1/sqrt(headDim)
     * @param stream  a CUstream, 0 for the legacy default stream
     */
    public static void forward(long q, long k, long v, long out, long lse, long keyMask, DType dtype, int batch,
            int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads, int headDim, float scale,
            long stream) {
        String op = "Attention.forward";
        checkForward(op, q, k, v, out, lse, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads, kvHeads,
                headDim, scale, false);
        launchForward(q, k, v, out, lse, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim,
                scale, true, dtype == DType.BF16 && TENSOR_CORES, stream);
    }

    /**
     * Bidirectional forward (BERT): every query sees every valid key whose mask is 1; {@code qOffset} must be 0 and
     * {@code qLen == kLen}. No lse is written.
     *
     * @param q       queries (batch, qLen, heads*headDim)
     * @param k       keys (batch, kStride, kvHeads*headDim)
     * @param v       values, layout of k
     * @param out     output, layout of q (overwritten)
     * @param keyMask key mask (batch, kStride) I32, or 0 for all keys
     * @param dtype   F32 or BF16
     * @param batch   batch size
     * @param qLen    query rows per batch entry (= kLen)
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry in k and v
     * @param qOffset must be 0
     * @param heads   query heads
     * @param kvHeads key/value heads
     * @param headDim head dimension
     * @param scale   score scale
     * @param stream  a CUstream
     */
    public static void bidirectional(long q, long k, long v, long out, long keyMask, DType dtype, int batch, int qLen,
            int kLen, int kStride, int qOffset, int heads, int kvHeads, int headDim, float scale, long stream) {
        String op = "Attention.bidirectional";
        checkForward(op, q, k, v, out, 0, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads, kvHeads,
                headDim, scale, true);
        launchForward(q, k, v, out, 0, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim,
                scale, false, dtype == DType.BF16 && TENSOR_CORES, stream);
    }

    /** {@link #forward} (causal) or {@link #bidirectional} on the kernel family chosen by {@code mma} (bf16 only). */
    static void forward(long q, long k, long v, long out, long lse, long keyMask, DType dtype, int batch, int qLen,
            int kLen, int kStride, int qOffset, int heads, int kvHeads, int headDim, float scale, boolean causal,
            boolean mma, long stream) {
        checkForward("Attention.forward", q, k, v, out, lse, keyMask, dtype, batch, qLen, kLen, kStride, qOffset,
                heads, kvHeads, headDim, scale, !causal);
        launchForward(q, k, v, out, lse, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim,
                scale, causal, mma && dtype == DType.BF16, stream);
    }

    private static void launchForward(long q, long k, long v, long out, long lse, long keyMask, DType dtype,
            int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads, int headDim, float scale,
            boolean causal, boolean mma, long stream) {
        int di = dmaxIndex(headDim);
        Launch l = mma ? FORWARD_MMA[di] : FORWARD[dtype == DType.F32 ? 0 : 1][di];
        KernelArgs args = KernelArgs.local().ptr(q).ptr(k).ptr(v).ptr(keyMask).ptr(out).ptr(lse).i32(qLen).i32(kLen)
                .i32(kStride).i32(qOffset).i32(heads).i32(kvHeads).i32(headDim).f32(scale).i32(causal ? 1 : 0);
        l.run((qLen + 63) / 64, heads, batch, stream, args);
    }

    /**
     * Bytes of the workspace {@link #decode} needs for this geometry: room for {@link #MAX_DECODE_SPLITS} partial
     * results (max, sum, unnormalised output row) per query row, so one allocation serves every cache length.
     *
     * @param batch   batch size
     * @param qLen    query rows per batch entry
     * @param heads   query heads
     * @param headDim head dimension
     * @return workspace bytes
     */
    public static long decodeWorkspaceBytes(int batch, int qLen, int heads, int headDim) {
        Checks.positive("Attention.decodeWorkspaceBytes", "batch", batch);
        Checks.positive("Attention.decodeWorkspaceBytes", "qLen", qLen);
        Checks.positive("Attention.decodeWorkspaceBytes", "heads", heads);
        Checks.positive("Attention.decodeWorkspaceBytes", "headDim", headDim);
        return 4L * batch * qLen * heads * MAX_DECODE_SPLITS * (headDim + 2L);
    }

    /**
     * Causal attention of a few new queries against a KV cache ({@code kStride} = capacity, {@code qOffset} = cached
     * positions before the first query), flash-decoding style: the keys are cut into splits read by separate blocks,
     * each block serving all query heads of one kv head (the cache is read once per kv head, not once per query
     * head), then a combine step merges the splits' (max, sum, output) into out and lse. Same results as
     * {@link #forward} for any geometry; meant for {@code qLen * heads / kvHeads <= 16} (one row group per kv head).
     *
     * @param q              queries (batch, qLen, heads*headDim)
     * @param k              key cache (batch, kStride, kvHeads*headDim)
     * @param v              value cache, layout of k
     * @param out            output, layout of q (overwritten)
     * @param lse            log-sum-exp (batch, heads, qLen) F32 (overwritten)
     * @param keyMask        key mask (batch, kStride) I32, or 0 for all keys
     * @param workspace      F32 scratch of at least {@link #decodeWorkspaceBytes} bytes, not overlapping anything
     * @param workspaceBytes size of the workspace
     * @param dtype          F32 or BF16
     * @param batch          batch size
     * @param qLen           query rows per batch entry
     * @param kLen           valid cache rows per batch entry (qOffset + qLen)
     * @param kStride        cache rows per batch entry
     * @param qOffset        key position of query 0
     * @param heads          query heads
     * @param kvHeads        key/value heads
     * @param headDim        head dimension
     * @param scale          score scale
     * @param stream         a CUstream
     */
    public static void decode(long q, long k, long v, long out, long lse, long keyMask, long workspace,
            long workspaceBytes, DType dtype, int batch, int qLen, int kLen, int kStride, int qOffset, int heads,
            int kvHeads, int headDim, float scale, long stream) {
        String op = "Attention.decode";
        checkForward(op, q, k, v, out, lse, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads, kvHeads,
                headDim, scale, false);
        launchDecode(op, q, k, v, out, lse, keyMask, workspace, workspaceBytes, dtype, batch, qLen, kLen, kStride,
                qOffset, heads, kvHeads, headDim, scale, Math.min(kLen, qOffset + qLen), 0, stream);
    }

    /**
     * One decode step whose cache length is read from device memory, for a CUDA graph captured once and replayed
     * every step: exactly {@link #decode} with {@code qLen = 1}, {@code kLen = L} and {@code qOffset = L - 1}, where
     * {@code L = *cacheLen} is the number of valid cache rows, the new token's own key included
     * ({@code 1 <= L <= kStride}). The grid depends on {@code kStride} only (the key splits are sized from it; a split
     * that starts at or past L reads nothing and the combine skips it), so the launches, and their arguments, are the
     * same at every step. An L the host did not keep in range cannot read out of bounds: the kernel clamps it to
     * {@code [0, kStride]}, and {@code L = 0} gives every row zeros and lse = +inf (no visible key).
     *
     * <p>Workspace: {@link #decodeWorkspaceBytes decodeWorkspaceBytes(batch, 1, heads, headDim)} bytes serve every
     * kStride; the launches of one stream may share one workspace (each step's combine reads it before the next
     * launch writes it).
     *
     * @param q              queries of the new token (batch, 1, heads*headDim)
     * @param k              key cache (batch, kStride, kvHeads*headDim), rows [0, L) valid
     * @param v              value cache, layout of k
     * @param out            output, layout of q (overwritten)
     * @param lse            log-sum-exp (batch, heads) F32 (overwritten)
     * @param keyMask        key mask (batch, kStride) I32, or 0 for all keys; rows at or past L are not read
     * @param workspace      F32 scratch of at least {@code decodeWorkspaceBytes(batch, 1, heads, headDim)} bytes, not
     *                       overlapping anything
     * @param workspaceBytes size of the workspace
     * @param dtype          F32 or BF16
     * @param batch          batch size
     * @param kStride        cache rows per batch entry (the capacity)
     * @param heads          query heads
     * @param kvHeads        key/value heads
     * @param headDim        head dimension
     * @param scale          score scale
     * @param cacheLen       device address of one I32: L, read when the launch runs (not when it is enqueued)
     * @param stream         a CUstream; graphs are captured on a stream other than the legacy default one
     */
    public static void decodeAt(long q, long k, long v, long out, long lse, long keyMask, long workspace,
            long workspaceBytes, DType dtype, int batch, int kStride, int heads, int kvHeads, int headDim, float scale,
            long cacheLen, long stream) {
        String op = "Attention.decodeAt";
        if (kStride < 1) {
            throw new IllegalArgumentException(op + ": kStride (cache rows per batch entry) must be positive, got "
                    + kStride);
        }
        // the host checks take the largest length, L = kStride: every smaller one fits wherever it fits
        checkForward(op, q, k, v, out, lse, keyMask, dtype, batch, 1, kStride, kStride, kStride - 1, heads, kvHeads,
                headDim, scale, false);
        Checks.pointer(op, "cacheLen", cacheLen, Integer.BYTES);
        long qBytes = (long) batch * heads * headDim * dtype.bytes();
        Checks.disjoint(op, "out", out, qBytes, "cacheLen", cacheLen, Integer.BYTES);
        Checks.disjoint(op, "lse", lse, 4L * batch * heads, "cacheLen", cacheLen, Integer.BYTES);
        launchDecode(op, q, k, v, out, lse, keyMask, workspace, workspaceBytes, dtype, batch, 1, kStride, kStride,
                kStride - 1, heads, kvHeads, headDim, scale, kStride, cacheLen, stream);
    }

    /**
     * The decode launches: key splits sized for {@code kAll} keys, then the combine (more than one split).
     * {@code kLenDev} 0: kLen and qOffset as given; else the kernel reads the length there (see {@link #decodeAt}).
     */
    private static void launchDecode(String op, long q, long k, long v, long out, long lse, long keyMask,
            long workspace, long workspaceBytes, DType dtype, int batch, int qLen, int kLen, int kStride, int qOffset,
            int heads, int kvHeads, int headDim, float scale, int kAll, long kLenDev, long stream) {
        int rep = heads / kvHeads;
        long rowGroups = ((long) rep * qLen + 15) / 16;
        if (rowGroups * kvHeads > 65535) {
            throw new IllegalArgumentException(op + ": qLen " + qLen + " x " + rep + " heads per kv head is too many "
                    + "query rows for decode; use Attention.forward");
        }
        long blocks = (long) batch * kvHeads * rowGroups;
        int splits = (int) Math.max(1, Math.min((DECODE_TARGET_BLOCKS + blocks - 1) / blocks,
                Math.min(MAX_DECODE_SPLITS, (kAll + DECODE_MIN_KEYS_PER_SPLIT - 1) / DECODE_MIN_KEYS_PER_SPLIT)));
        int splitLen = ((kAll + splits - 1) / splits + 31) / 32 * 32;
        splits = (kAll + splitLen - 1) / splitLen;
        int di = dmaxIndex(headDim), t = dtype == DType.F32 ? 0 : 1;
        if (splits == 1) {
            KernelArgs args = KernelArgs.local().ptr(q).ptr(k).ptr(v).ptr(keyMask).ptr(out).ptr(lse).ptr(0).ptr(0)
                    .i32(qLen).i32(kLen).i32(kStride).i32(qOffset).i32(heads).i32(kvHeads).i32(headDim).f32(scale)
                    .i32(splitLen).ptr(kLenDev);
            DECODE[t][di].run(1, (int) (kvHeads * rowGroups), batch, stream, args);
            return;
        }
        long rows = (long) batch * heads * qLen;
        long need = 4L * rows * splits * (headDim + 2L);
        Checks.pointer(op, "workspace", workspace, Float.BYTES);
        if (workspaceBytes < need) {
            throw new IllegalArgumentException(op + ": workspace of " + workspaceBytes + " bytes is smaller than the "
                    + need + " this call needs; size it with Attention.decodeWorkspaceBytes");
        }
        long qBytes = (long) batch * qLen * heads * headDim * dtype.bytes();
        long kBytes = (long) batch * kStride * kvHeads * headDim * dtype.bytes();
        Checks.disjoint(op, "workspace", workspace, need, "q", q, qBytes);
        Checks.disjoint(op, "workspace", workspace, need, "k", k, kBytes);
        Checks.disjoint(op, "workspace", workspace, need, "v", v, kBytes);
        Checks.disjoint(op, "workspace", workspace, need, "out", out, qBytes);
        Checks.disjoint(op, "workspace", workspace, need, "lse", lse, 4L * rows);
        if (kLenDev != 0) {
            Checks.disjoint(op, "workspace", workspace, need, "cacheLen", kLenDev, Integer.BYTES);
        }
        long ml = workspace, acc = workspace + 8L * rows * splits;
        KernelArgs args = KernelArgs.local().ptr(q).ptr(k).ptr(v).ptr(keyMask).ptr(out).ptr(lse).ptr(ml).ptr(acc)
                .i32(qLen).i32(kLen).i32(kStride).i32(qOffset).i32(heads).i32(kvHeads).i32(headDim).f32(scale)
                .i32(splitLen).ptr(kLenDev);
        DECODE[t][di].run(splits, (int) (kvHeads * rowGroups), batch, stream, args);
        KernelArgs comb = KernelArgs.local().ptr(ml).ptr(acc).ptr(out).ptr(lse).i32((int) rows).i32(qLen).i32(heads)
                .i32(headDim).i32(splits);
        COMBINE[t].run((int) ((rows + 3) / 4), 1, 1, stream, comb);
    }

    /**
     * Gradients of {@link #forward}: overwrites dq (layout of q) and dk, dv (layout of k, all kStride rows; rows no
     * query sees get zeros), recomputing the probabilities from lse (FlashAttention-2 style, {@code Di =
     * rowsum(dOut*out)} per query row). Two launches: dq per (query tile, head), then dk/dv per (key tile, kv head)
     * looping over the query heads that share it.
     *
     * @param q       queries
     * @param k       keys
     * @param v       values
     * @param out     the forward's output
     * @param lse     the forward's log-sum-exp (F32)
     * @param dOut    gradient of the output, layout of q
     * @param dq      gradient of q (overwritten)
     * @param dk      gradient of k (overwritten)
     * @param dv      gradient of v (overwritten)
     * @param keyMask key mask (batch, kStride) I32, or 0 for all keys
     * @param dtype   F32 or BF16, the type of every activation and gradient here
     * @param batch   batch size
     * @param qLen    query rows per batch entry
     * @param kLen    valid key rows per batch entry
     * @param kStride key rows per batch entry
     * @param qOffset key position of query 0
     * @param heads   query heads
     * @param kvHeads key/value heads
     * @param headDim head dimension
     * @param scale   score scale
     * @param stream  a CUstream
     */
    public static void backward(long q, long k, long v, long out, long lse, long dOut, long dq, long dk, long dv,
            long keyMask, DType dtype, int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads,
            int headDim, float scale, long stream) {
        backward(q, k, v, out, lse, dOut, dq, dk, dv, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads,
                kvHeads, headDim, scale, dtype == DType.BF16 && TENSOR_CORES, stream);
    }

    /** {@link #backward} on the kernel family chosen by {@code mma} (bf16 only). */
    static void backward(long q, long k, long v, long out, long lse, long dOut, long dq, long dk, long dv,
            long keyMask, DType dtype, int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads,
            int headDim, float scale, boolean mma, long stream) {
        String op = "Attention.backward";
        checkForward(op, q, k, v, out, lse, keyMask, dtype, batch, qLen, kLen, kStride, qOffset, heads, kvHeads,
                headDim, scale, false);
        int e = dtype.bytes();
        Checks.pointer(op, "dOut", dOut, e);
        Checks.pointer(op, "dq", dq, e);
        Checks.pointer(op, "dk", dk, e);
        Checks.pointer(op, "dv", dv, e);
        long qBytes = (long) batch * qLen * heads * headDim * e;
        long kBytes = (long) batch * kStride * kvHeads * headDim * e;
        long lBytes = 4L * batch * heads * qLen;
        long[] in = {q, k, v, out, lse, dOut};
        long[] inBytes = {qBytes, kBytes, kBytes, qBytes, lBytes, qBytes};
        String[] inNames = {"q", "k", "v", "out", "lse", "dOut"};
        long[] outs = {dq, dk, dv};
        long[] outBytes = {qBytes, kBytes, kBytes};
        String[] outNames = {"dq", "dk", "dv"};
        for (int a = 0; a < outs.length; a++) {
            for (int b = 0; b < in.length; b++) {
                Checks.disjoint(op, outNames[a], outs[a], outBytes[a], inNames[b], in[b], inBytes[b]);
            }
            for (int b = a + 1; b < outs.length; b++) {
                Checks.disjoint(op, outNames[a], outs[a], outBytes[a], outNames[b], outs[b], outBytes[b]);
            }
        }
        int di = dmaxIndex(headDim), t = dtype == DType.F32 ? 0 : 1;
        if (mma && dtype == DType.BF16) {
            KernelArgs a1 = KernelArgs.local().ptr(q).ptr(k).ptr(v).ptr(out).ptr(lse).ptr(dOut).ptr(keyMask).ptr(dq)
                    .i32(qLen).i32(kLen).i32(kStride).i32(qOffset).i32(heads).i32(kvHeads).i32(headDim).f32(scale);
            BACKWARD_DQ_MMA[di].run((qLen + 63) / 64, heads, batch, stream, a1);
            KernelArgs a2 = KernelArgs.local().ptr(q).ptr(k).ptr(v).ptr(out).ptr(lse).ptr(dOut).ptr(keyMask).ptr(dk)
                    .ptr(dv).i32(qLen).i32(kLen).i32(kStride).i32(qOffset).i32(heads).i32(kvHeads).i32(headDim)
                    .f32(scale);
            BACKWARD_DKDV_MMA[di].run((kStride + 63) / 64, kvHeads, batch, stream, a2);
            return;
        }
        int rows = dqRows(DMAX[di]);
        KernelArgs a1 = KernelArgs.local().ptr(q).ptr(k).ptr(v).ptr(out).ptr(lse).ptr(dOut).ptr(keyMask).ptr(dq)
                .i32(qLen).i32(kLen).i32(kStride).i32(qOffset).i32(heads).i32(kvHeads).i32(headDim).f32(scale);
        BACKWARD_DQ[t][di].run((qLen + rows - 1) / rows, heads, batch, stream, a1);
        KernelArgs a2 = KernelArgs.local().ptr(q).ptr(k).ptr(v).ptr(out).ptr(lse).ptr(dOut).ptr(keyMask).ptr(dk)
                .ptr(dv).i32(qLen).i32(kLen).i32(kStride).i32(qOffset).i32(heads).i32(kvHeads).i32(headDim)
                .f32(scale);
        BACKWARD_DKDV[t][di].run((kStride + 31) / 32, kvHeads, batch, stream, a2);
    }

    private static void checkForward(String op, long q, long k, long v, long out, long lse, long keyMask, DType dtype,
            int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads, int headDim, float scale,
            boolean bidirectional) {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": dtype must be F32 or BF16, got " + dtype);
        }
        try {
            AttentionReference.checkGeometry(batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale,
                    bidirectional);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(op + ": " + e.getMessage(), e);
        }
        if (headDim > MAX_HEAD_DIM) {
            throw new IllegalArgumentException(op + ": headDim " + headDim + " exceeds the supported "
                    + MAX_HEAD_DIM);
        }
        if (batch > 65535 || heads > 65535) {
            throw new IllegalArgumentException(op + ": batch (" + batch + ") and heads (" + heads
                    + ") must be at most 65535 (grid dimensions)");
        }
        long qElems = (long) batch * qLen * heads * headDim, kElems = (long) batch * kStride * kvHeads * headDim;
        int e = dtype.bytes();
        Checks.pointer(op, "q", q, e);
        Checks.pointer(op, "k", k, e);
        Checks.pointer(op, "v", v, e);
        Checks.pointer(op, "out", out, e);
        if (!bidirectional) {
            Checks.pointer(op, "lse", lse, Float.BYTES);
        }
        if (keyMask != 0) {
            Checks.pointer(op, "keyMask", keyMask, Integer.BYTES);
        }
        long qBytes = qElems * e, kBytes = kElems * e;
        Checks.disjoint(op, "out", out, qBytes, "q", q, qBytes);
        Checks.disjoint(op, "out", out, qBytes, "k", k, kBytes);
        Checks.disjoint(op, "out", out, qBytes, "v", v, kBytes);
        if (!bidirectional) {
            Checks.disjoint(op, "lse", lse, 4L * batch * heads * qLen, "out", out, qBytes);
        }
    }
}
