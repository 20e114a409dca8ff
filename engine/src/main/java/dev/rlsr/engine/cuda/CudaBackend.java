package dev.rlsr.engine.cuda;

import dev.rlsr.bindings.CudaContext;
import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.GrpoSpec;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.SamplingState;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.AdamWKernel;
import dev.rlsr.kernels.Argmax;
import dev.rlsr.kernels.Attention;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.Cast;
import dev.rlsr.kernels.CopyRows;
import dev.rlsr.kernels.CosineSimilarity;
import dev.rlsr.kernels.GroupAdvantages;
import dev.rlsr.kernels.CrossEntropy;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.Elementwise;
import dev.rlsr.kernels.Embedding;
import dev.rlsr.kernels.Gelu;
import dev.rlsr.kernels.Gemm;
import dev.rlsr.kernels.GlobalNorm;
import dev.rlsr.kernels.GrpoLevel;
import dev.rlsr.kernels.GrpoLossKernel;
import dev.rlsr.kernels.LayerNorm;
import dev.rlsr.kernels.LogprobGather;
import dev.rlsr.kernels.Pooling;
import dev.rlsr.kernels.RmsNorm;
import dev.rlsr.kernels.Rope;
import dev.rlsr.kernels.Sampling;
import dev.rlsr.kernels.Swiglu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The CUDA backend: every {@link Backend} op as one or a few launches of this project's kernels (native/cuda) and
 * cuBLASLt GEMMs, on one stream of one device, in the bf16 or fp32 {@link Precision}.
 *
 * <p>Memory comes from a caching allocator ({@link CudaAllocator}), so a loop whose shapes repeat does not call
 * {@code cuMemAlloc} after its first iteration; op scratch buffers come from the same cache. Everything is
 * asynchronous on the backend's stream; {@link #download}/{@link #downloadInts} and {@link #synchronize} wait. The
 * context is made current on whichever thread calls the backend (once per thread). Not thread-safe: one caller at a
 * time, as the models are.
 *
 * <p>Runs unchanged on the CUDA emulator ({@code -Drlsr.cuda.emulator=DIR}), which CI uses: same kernels, same
 * launches, CPU speed.
 */
public final class CudaBackend implements Backend {
    private static final long STAGING = 16L << 20;
    private static final ValueLayout.OfFloat LE_F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final CudaContext ctx;
    private final long stream;
    private final CudaAllocator allocator = new CudaAllocator();
    private final Gemm gemm;
    private final Precision precision;
    private final ThreadLocal<Boolean> current = ThreadLocal.withInitial(() -> false);
    private boolean closed;

    private CudaBackend(CudaContext ctx, Precision precision) {
        this.ctx = ctx;
        this.precision = precision;
        this.stream = CudaDriver.streamCreate(CudaDriver.CU_STREAM_NON_BLOCKING);
        this.gemm = Gemm.create(stream);
        current.set(true);
    }

    /**
     * What keeps this backend from running here, or "" when a device and every library it needs are usable: the
     * driver (libcuda and a device), NVRTC (kernels compile at run time) and cuBLASLt (every GEMM). Never throws.
     *
     * @return the reasons, joined; "" when usable
     */
    public static String unavailableReason() {
        java.util.List<String> missing = new java.util.ArrayList<>();
        String driver = CudaDriver.unavailableReason();
        if (!driver.isEmpty()) {
            missing.add(driver);
        }
        String nvrtc = dev.rlsr.bindings.Nvrtc.unavailableReason();
        if (!nvrtc.isEmpty()) {
            missing.add("NVRTC: " + nvrtc);
        }
        if (!dev.rlsr.bindings.CublasLt.isAvailable()) {
            missing.add("cuBLASLt (libcublasLt.so.13 or .12) is not loadable; set -Drlsr.lib.cublaslt=PATH if it is"
                    + " installed elsewhere");
        }
        return String.join("; ", missing);
    }

    /** {@return true when the CUDA libraries are the project's CPU emulator, not a GPU} */
    public static boolean isEmulator() {
        return CudaDriver.isEmulator();
    }

    /**
     * Opens device {@code ordinal} (its primary context) with its own stream and cuBLASLt handle.
     *
     * @param ordinal   the device
     * @param precision the precision models get by default
     * @return the backend
     * @throws IllegalStateException naming what is missing when no CUDA device or library is usable
     */
    public static CudaBackend open(int ordinal, Precision precision) {
        String why = unavailableReason();
        if (!why.isEmpty()) {
            throw new IllegalStateException("no usable CUDA device: " + why);
        }
        return new CudaBackend(CudaContext.open(ordinal), precision);
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public Precision defaultPrecision() {
        return precision;
    }

    @Override
    public boolean computes(DType act) {
        return act == DType.F32 || act == DType.BF16;
    }

    /** {@return the device's name, e.g. "NVIDIA H100 80GB HBM3"} */
    public String deviceName() {
        return ctx.name();
    }

    /** {@return the stream every op of this backend is queued on ({@code CUstream})} */
    public long stream() {
        return stream;
    }

    /** {@return device memory held by live tensors, in bytes (size classes)} */
    public long memoryInUse() {
        return allocator.inUse();
    }

    /** {@return the highest {@link #memoryInUse()} so far} */
    public long peakMemory() {
        return allocator.peak();
    }

    /** Restarts {@link #peakMemory()} from the current use. */
    public void resetPeakMemory() {
        allocator.resetPeak();
    }

    /** {@return how many times the allocator has called {@code cuMemAlloc}} */
    public long driverAllocations() {
        return allocator.driverAllocations();
    }

    /** Returns the allocator's cached (free) blocks to the driver. */
    public void emptyCache() {
        enter();
        synchronize();
        allocator.emptyCache();
    }

    private void enter() {
        if (closed) {
            throw new IllegalStateException("the CUDA backend is closed");
        }
        if (!current.get()) {
            ctx.makeCurrent();
            current.set(true);
        }
    }

    static CudaTensor c(Tensor t) {
        if (t instanceof CudaTensor c) {
            return c;
        }
        throw new IllegalArgumentException("tensor " + t + " does not belong to the CUDA backend");
    }

    private static long a(Tensor t) {
        return c(t).address();
    }

    private static long addrOrZero(Tensor t) {
        return t == null ? 0L : a(t);
    }

    private static int n(Tensor t) {
        return Math.toIntExact(t.numel());
    }

    private static int div(long total, long width, String what) {
        if (width <= 0 || total % width != 0) {
            throw new IllegalArgumentException(what + ": " + total + " elements are not a whole number of rows of "
                    + width);
        }
        return Math.toIntExact(total / width);
    }

    private static void same(long x, long y, String what) {
        if (x != y) {
            throw new IllegalArgumentException(what + ": " + x + " != " + y);
        }
    }

    private static DType act(Tensor t, String op) {
        DType d = t.dtype();
        if (d != DType.F32 && d != DType.BF16) {
            throw new IllegalArgumentException(op + ": " + t + " must be F32 or BF16");
        }
        return d;
    }

    private static void sameDtype(String op, Tensor... ts) {
        DType d = null;
        for (Tensor t : ts) {
            if (t == null) {
                continue;
            }
            if (d == null) {
                d = t.dtype();
            } else if (t.dtype() != d) {
                throw new IllegalArgumentException(op + ": " + t + " is " + t.dtype() + ", expected " + d);
            }
        }
    }

    // ------------------------------------------------------------------ memory

    void free(CudaTensor.Storage s) {
        if (!closed) {
            allocator.release(s.base, s.sizeClass);
        }
    }

    @Override
    public Tensor alloc(DType dtype, long... shape) {
        enter();
        long bytes = Tensor.count(shape) * dtype.bytes();
        if (capturing && allocator.wouldAllocate(bytes)) {
            // cuMemAlloc would invalidate the capture: the step must have run once eagerly with the same shapes
            throw new IllegalStateException("a captured step allocates " + bytes + " bytes that the allocator has not"
                    + " cached: run the step once before capturing it (CudaBackend.capture)");
        }
        long size = CudaAllocator.sizeClass(bytes);
        long base = allocator.allocate(bytes);
        return new CudaTensor(this, new CudaTensor.Storage(base, size), dtype, shape, 0, false);
    }

    @Override
    public Tensor zeros(DType dtype, long... shape) {
        Tensor t = alloc(dtype, shape);
        if (t.byteSize() > 0) {
            CudaDriver.memsetD8Async(a(t), (byte) 0, t.byteSize(), stream);
        }
        return t;
    }

    /** Scratch memory for one op, returned to the cache when closed (stream order keeps it safe). */
    private Tensor scratch(long bytes) {
        return alloc(DType.U8, Math.max(bytes, 16));
    }

    @Override
    public Tensor upload(float[] data, DType dtype, long... shape) {
        if (Tensor.count(shape) != data.length) {
            throw new IllegalArgumentException("upload: " + data.length + " values for shape " + Tensor.describe(shape));
        }
        Tensor t = alloc(dtype, shape);
        upload(data, t);
        return t;
    }

    @Override
    public Tensor upload(int[] data, long... shape) {
        if (Tensor.count(shape) != data.length) {
            throw new IllegalArgumentException("upload: " + data.length + " ints for shape " + Tensor.describe(shape));
        }
        Tensor t = alloc(DType.I32, shape);
        upload(data, t);
        return t;
    }

    // Host buffers of uploads are pageable native memory: cuMemcpyHtoDAsync from pageable memory returns once the
    // source has been staged by the driver, so the buffer may be freed right after the call; the copy stays ordered
    // on the stream.
    @Override
    public void upload(float[] data, Tensor dst) {
        enter();
        same(data.length, dst.numel(), "upload into " + dst);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host;
            if (dst.dtype() == DType.F32) {
                host = arena.allocate(4L * data.length, 16);
                MemorySegment.copy(data, 0, host, ValueLayout.JAVA_FLOAT, 0, data.length);
            } else if (dst.dtype() == DType.BF16) {
                host = arena.allocate(2L * data.length, 16);
                short[] bits = BF16.fromFloat(data);
                MemorySegment.copy(bits, 0, host, ValueLayout.JAVA_SHORT, 0, bits.length);
            } else {
                throw new IllegalArgumentException("upload of floats into " + dst);
            }
            if (host.byteSize() > 0) {
                CudaDriver.memcpyHtoDAsync(a(dst), host, host.byteSize(), stream);
            }
        }
    }

    @Override
    public void upload(int[] data, Tensor dst) {
        enter();
        same(data.length, dst.numel(), "upload into " + dst);
        if (dst.dtype() != DType.I32) {
            throw new IllegalArgumentException("upload of ints into " + dst);
        }
        if (data.length == 0) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(4L * data.length, 16);
            MemorySegment.copy(data, 0, host, ValueLayout.JAVA_INT, 0, data.length);
            CudaDriver.memcpyHtoDAsync(a(dst), host, host.byteSize(), stream);
        }
    }

    @Override
    public void uploadRaw(MemorySegment src, DType srcType, long count, Tensor dst, long dstOffset) {
        enter();
        DType dt = dst.dtype();
        if (dstOffset < 0 || dstOffset + count > dst.numel()) {
            throw new IllegalArgumentException("uploadRaw: " + count + " elements at " + dstOffset + " do not fit "
                    + dst);
        }
        if (src.byteSize() < count * srcType.bytes()) {
            throw new IllegalArgumentException("uploadRaw: the source holds " + src.byteSize() + " bytes, " + count
                    + " " + srcType + " elements need " + count * srcType.bytes());
        }
        if (dt != DType.F32 && dt != DType.BF16) {
            throw new IllegalArgumentException("uploadRaw into " + dst + ": F32 or BF16 destinations only");
        }
        long base = a(dst) + dstOffset * dt.bytes();
        if (srcType == dt) {
            // same type: straight from the (memory-mapped) source, in chunks
            long bytes = count * dt.bytes();
            for (long off = 0; off < bytes; off += STAGING) {
                long len = Math.min(STAGING, bytes - off);
                CudaDriver.memcpyHtoDAsync(base + off, src.asSlice(off, len), len, stream);
            }
            return;
        }
        long per = STAGING / 4;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(per * dt.bytes(), 16);
            for (long i0 = 0; i0 < count; i0 += per) {
                long len = Math.min(per, count - i0);
                for (long i = 0; i < len; i++) {
                    float f = switch (srcType) {
                        case F32 -> src.getAtIndex(LE_F32, i0 + i);
                        case BF16 -> Float.intBitsToFloat((src.getAtIndex(LE_16, i0 + i) & 0xffff) << 16);
                        case F16 -> Float.float16ToFloat(src.getAtIndex(LE_16, i0 + i));
                        default -> throw new IllegalArgumentException("uploadRaw: source elements must be F32, BF16 "
                                + "or F16, not " + srcType);
                    };
                    if (dt == DType.F32) {
                        buf.setAtIndex(ValueLayout.JAVA_FLOAT, i, f);
                    } else {
                        buf.setAtIndex(ValueLayout.JAVA_SHORT, i, BF16.fromFloat(f));
                    }
                }
                CudaDriver.memcpyHtoDAsync(base + i0 * dt.bytes(), buf, len * dt.bytes(), stream);
                // the next chunk reuses the buffer: the driver has staged pageable memory when the call returns
            }
        }
    }

    @Override
    public float[] download(Tensor t) {
        enter();
        int n = n(t);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(1, t.byteSize()), 16);
            if (n > 0) {
                CudaDriver.memcpyDtoHAsync(host, a(t), t.byteSize(), stream);
            }
            CudaDriver.streamSynchronize(stream);
            return switch (t.dtype()) {
                case F32 -> host.asSlice(0, 4L * n).toArray(ValueLayout.JAVA_FLOAT);
                case BF16 -> BF16.toFloat(host.asSlice(0, 2L * n).toArray(ValueLayout.JAVA_SHORT));
                default -> throw new IllegalArgumentException("download: " + t + " is not a floating tensor; use "
                        + "downloadInts");
            };
        }
    }

    @Override
    public int[] downloadInts(Tensor t) {
        enter();
        if (t.dtype() != DType.I32) {
            throw new IllegalArgumentException("downloadInts: " + t + " is not I32");
        }
        int n = n(t);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(4, 4L * n), 16);
            if (n > 0) {
                CudaDriver.memcpyDtoHAsync(host, a(t), 4L * n, stream);
            }
            CudaDriver.streamSynchronize(stream);
            return host.asSlice(0, 4L * n).toArray(ValueLayout.JAVA_INT);
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        enter();
        same(src.numel(), dst.numel(), "copy " + src + " -> " + dst);
        if (src.numel() == 0) {
            return;
        }
        if (src.dtype() == dst.dtype()) {
            CudaDriver.memcpyDtoDAsync(a(dst), a(src), src.byteSize(), stream);
        } else if (src.dtype() == DType.F32 && dst.dtype() == DType.BF16) {
            Cast.f32ToBf16(a(src), a(dst), src.numel(), stream);
        } else if (src.dtype() == DType.BF16 && dst.dtype() == DType.F32) {
            Cast.bf16ToF32(a(src), a(dst), src.numel(), stream);
        } else {
            throw new IllegalArgumentException("copy " + src + " -> " + dst + ": only F32 <-> BF16 conversions");
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        enter();
        if (t.numel() == 0) {
            return;
        }
        switch (t.dtype()) {
            case F32 -> CudaDriver.memsetD32Async(a(t), Float.floatToRawIntBits(value), t.numel(), stream);
            case I32 -> CudaDriver.memsetD32Async(a(t), (int) value, t.numel(), stream);
            case BF16 -> Elementwise.fill(a(t), DType.BF16, t.numel(), value, stream);
            default -> throw new IllegalArgumentException("fill " + t);
        }
    }

    @Override
    public void copyRows(Tensor src, int srcStride, int srcRow0, Tensor dst, int dstStride, int dstRow0, int batch,
                         int rows, int width) {
        enter();
        sameDtype("copyRows", src, dst);
        if ((long) batch * srcStride * width > src.numel() || (long) batch * dstStride * width > dst.numel()) {
            throw new IllegalArgumentException("copyRows out of bounds: batch=" + batch + " rows=" + rows + " width="
                    + width + " src " + src + " stride " + srcStride + ", dst " + dst + " stride " + dstStride);
        }
        CopyRows.copyRows(a(src), srcStride, srcRow0, a(dst), dstStride, dstRow0, batch, rows, width, src.dtype(),
                stream);
    }

    @Override
    public void gatherRows(Tensor src, Tensor rows, Tensor dst) {
        enter();
        sameDtype("gatherRows", src, dst);
        int nr = n(rows);
        int w = div(dst.numel(), nr, "gatherRows dst");
        int r = div(src.numel(), w, "gatherRows src");
        CopyRows.gatherRows(a(src), act(src, "gatherRows"), r, a(rows), nr, a(dst), w, stream);
    }

    @Override
    public void synchronize() {
        enter();
        CudaDriver.streamSynchronize(stream);
    }

    // ------------------------------------------------------------------ elementwise

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        enter();
        sameDtype("add", a, b, out);
        same(a.numel(), b.numel(), "add");
        same(a.numel(), out.numel(), "add out");
        Elementwise.add(a(a), a(b), a(out), act(a, "add"), a.numel(), stream);
    }

    @Override
    public void scale(Tensor t, float s) {
        enter();
        Elementwise.scale(a(t), act(t, "scale"), t.numel(), s, stream);
    }

    @Override
    public void clipScale(Tensor grad, float maxNorm, Tensor sumSq, Tensor scale) {
        enter();
        if (grad.dtype() != DType.F32) {
            throw new IllegalArgumentException("clipScale: the gradient must be F32, got " + grad);
        }
        try (Tensor partials = scratch(GlobalNorm.scratchBytes(grad.numel()))) {
            GlobalNorm.clipScale(a(grad), grad.numel(), a(partials), a(sumSq), maxNorm, a(scale), stream);
        }
    }

    @Override
    public void argmaxRows(Tensor x, Tensor out) {
        enter();
        int w = (int) x.dim(-1);
        int rows = div(x.numel(), w, "argmaxRows");
        same(out.numel(), rows, "argmaxRows out");
        Argmax.rows(a(x), act(x, "argmaxRows"), rows, w, a(out), stream);
    }

    // ------------------------------------------------------------------ linear (cuBLASLt, fp32 accumulation)

    private static int[] linearDims(Tensor x, Tensor w, Tensor y, String op) {
        long[] ws = w.shape();
        if (ws.length != 2) {
            throw new IllegalArgumentException(op + ": weight must be (out,in), got " + w);
        }
        int out = (int) ws[0], in = (int) ws[1];
        int rows = div(x.numel(), in, op + " input " + x + " vs weight " + w);
        same(y.numel(), (long) rows * out, op + " output " + y + " size vs rows*out");
        return new int[]{rows, in, out};
    }

    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor residual, Tensor y) {
        enter();
        int[] d = linearDims(x, w, y, "linear");
        int rows = d[0], in = d[1], out = d[2];
        sameDtype("linear", x, w, bias, residual, y);
        DType t = act(x, "linear");
        float beta = residual != null ? 1f : 0f;
        long c = residual != null ? a(residual) : a(y);
        // y (rows,out) = x (rows,in) . w^T (in,out) [+ residual] [+ bias]
        if (bias != null) {
            same(bias.numel(), out, "linear bias");
            gemm.matmulBias(false, true, rows, out, in, 1f, a(x), in, a(w), in, t, beta, c, out, a(y), out, t,
                    a(bias), t);
        } else {
            gemm.matmul(false, true, rows, out, in, 1f, a(x), in, a(w), in, t, beta, c, out, a(y), out, t);
        }
    }

    @Override
    public void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate) {
        enter();
        int[] d = linearDims(dx, w, dy, "linearBackwardInput");
        int rows = d[0], in = d[1], out = d[2];
        sameDtype("linearBackwardInput", dy, w, dx);
        DType t = act(dy, "linearBackwardInput");
        // dx (rows,in) = dy (rows,out) . w (out,in)
        gemm.matmul(false, false, rows, in, out, 1f, a(dy), out, a(w), in, t, accumulate ? 1f : 0f, a(dx), in,
                a(dx), in, t);
    }

    @Override
    public void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias) {
        enter();
        int[] d = linearDims(x, dw, dy, "linearBackwardWeight");
        int rows = d[0], in = d[1], out = d[2];
        sameDtype("linearBackwardWeight", dy, x);
        if (dw.dtype() != DType.F32 || (dBias != null && dBias.dtype() != DType.F32)) {
            throw new IllegalArgumentException("linearBackwardWeight: gradients must be F32, got " + dw + ", " + dBias);
        }
        DType t = act(dy, "linearBackwardWeight");
        // dW (out,in) += dy^T (out,rows) . x (rows,in), fp32 output accumulated
        gemm.matmul(true, false, out, in, rows, 1f, a(dy), out, a(x), in, t, 1f, a(dw), in, a(dw), in, DType.F32);
        if (dBias != null) {
            same(dBias.numel(), out, "linearBackwardWeight bias");
            long bytes = Elementwise.biasGradScratchBytes(rows, out);
            try (Tensor s = bytes == 0 ? null : scratch(bytes)) {
                Elementwise.biasGrad(a(dy), t, rows, out, a(dBias), addrOrZero(s), stream);
            }
        }
    }

    // ------------------------------------------------------------------ embedding, norms, rope, swiglu

    @Override
    public void embedding(Tensor ids, Tensor table, Tensor out) {
        enter();
        sameDtype("embedding", table, out);
        int ni = n(ids);
        int c = div(out.numel(), ni, "embedding out");
        int v = div(table.numel(), c, "embedding table");
        Embedding.forward(a(ids), ni, a(table), act(table, "embedding"), v, c, a(out), stream);
    }

    @Override
    public void embeddingBackward(Tensor ids, Tensor dOut, Tensor dTable) {
        enter();
        int ni = n(ids);
        int c = div(dOut.numel(), ni, "embeddingBackward dOut");
        int v = div(dTable.numel(), c, "embeddingBackward dTable");
        try (Tensor s = scratch(Embedding.backwardScratchBytes(ni, c))) {
            Embedding.backward(a(ids), ni, a(dOut), act(dOut, "embeddingBackward"), c, a(dTable), v, a(s), stream);
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd) {
        enter();
        sameDtype("rmsNorm", x, w, out);
        int dim = n(w);
        int rows = div(x.numel(), dim, "rmsNorm input " + x + " vs weight " + w);
        same(out.numel(), x.numel(), "rmsNorm out");
        same(rstd.numel(), rows, "rmsNorm rstd");
        RmsNorm.forward(a(x), a(w), a(out), a(rstd), act(x, "rmsNorm"), rows, dim, eps, stream);
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw,
                                boolean accumulateDx) {
        enter();
        sameDtype("rmsNormBackward", dOut, x, w, dx);
        int dim = n(w);
        int rows = div(x.numel(), dim, "rmsNormBackward");
        try (Tensor s = scratch(RmsNorm.backwardScratchBytes(act(x, "rmsNormBackward"), rows, dim))) {
            RmsNorm.backward(a(dOut), a(x), a(w), a(rstd), a(dx), a(dw), a(s), act(x, "rmsNormBackward"), rows, dim,
                    accumulateDx, stream);
        }
    }

    @Override
    public void ropeTable(Tensor positions, Tensor invFreq, Tensor table) {
        enter();
        int np = n(positions), half = n(invFreq);
        same(table.numel(), (long) np * 2 * half, "ropeTable table size vs positions*headDim");
        Rope.table(a(positions), np, a(invFreq), 2 * half, a(table), stream);
    }

    @Override
    public void rope(Tensor x, Tensor table, int heads, boolean inverse) {
        enter();
        int dim = (int) table.dim(-1);
        int n = div(table.numel(), dim, "rope table");
        same(x.numel(), (long) n * heads * dim, "rope x size vs table rows*heads*headDim");
        Rope.apply(a(x), act(x, "rope"), n, heads, dim, a(table), inverse, stream);
    }

    @Override
    public void swiglu(Tensor g, Tensor u, Tensor h) {
        enter();
        sameDtype("swiglu", g, u, h);
        same(g.numel(), u.numel(), "swiglu");
        same(g.numel(), h.numel(), "swiglu out");
        Swiglu.forward(a(g), a(u), a(h), act(g, "swiglu"), g.numel(), stream);
    }

    @Override
    public void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du) {
        enter();
        sameDtype("swigluBackward", g, u, dh, dg, du);
        Swiglu.backward(a(g), a(u), a(dh), a(dg), a(du), act(g, "swigluBackward"), g.numel(), stream);
    }

    // ------------------------------------------------------------------ attention

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor keyMask) {
        enter();
        sameDtype("attention", q, k, v, out);
        DType t = act(q, "attention");
        int rep = s.heads() / s.kvHeads();
        if (s.qOffset() > 0 && (long) s.qLen() * rep <= 16) {
            // decoding a few tokens against a KV cache: split the keys over blocks (flash-decoding)
            long bytes = Attention.decodeWorkspaceBytes(s.batch(), s.qLen(), s.heads(), s.headDim());
            try (Tensor ws = scratch(bytes)) {
                Attention.decode(a(q), a(k), a(v), a(out), a(lse), addrOrZero(keyMask), a(ws), bytes, t, s.batch(),
                        s.qLen(), s.kLen(), s.kStride(), s.qOffset(), s.heads(), s.kvHeads(), s.headDim(), s.scale(),
                        stream);
            }
            return;
        }
        Attention.forward(a(q), a(k), a(v), a(out), a(lse), addrOrZero(keyMask), t, s.batch(), s.qLen(), s.kLen(),
                s.kStride(), s.qOffset(), s.heads(), s.kvHeads(), s.headDim(), s.scale(), stream);
    }

    @Override
    public void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                  Tensor dk, Tensor dv, AttentionShape s, Tensor keyMask) {
        enter();
        sameDtype("attentionBackward", q, k, v, out, dOut, dq, dk, dv);
        Attention.backward(a(q), a(k), a(v), a(out), a(lse), a(dOut), a(dq), a(dk), a(dv), addrOrZero(keyMask),
                act(q, "attentionBackward"), s.batch(), s.qLen(), s.kLen(), s.kStride(), s.qOffset(), s.heads(),
                s.kvHeads(), s.headDim(), s.scale(), stream);
    }

    @Override
    public void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, Tensor keyMask) {
        enter();
        if (s.qOffset() != 0 || s.qLen() != s.kLen()) {
            throw new IllegalArgumentException("bidirectional attention is self-attention over one sequence: qOffset "
                    + s.qOffset() + " must be 0 and qLen " + s.qLen() + " must equal kLen " + s.kLen());
        }
        sameDtype("bidirectionalAttention", q, k, v, out);
        Attention.bidirectional(a(q), a(k), a(v), a(out), addrOrZero(keyMask), act(q, "bidirectionalAttention"),
                s.batch(), s.qLen(), s.kLen(), s.kStride(), s.qOffset(), s.heads(), s.kvHeads(), s.headDim(),
                s.scale(), stream);
    }

    // ------------------------------------------------------------------ losses

    @Override
    public void crossEntropy(Tensor logits, Tensor targets, float gradScale, Tensor dLogits, Tensor lossSum) {
        enter();
        sameDtype("crossEntropy", logits, dLogits);
        int rows = n(targets), v = div(logits.numel(), rows, "crossEntropy logits vs targets");
        try (Tensor rowLoss = alloc(DType.F32, rows)) {
            CrossEntropy.forwardBackward(a(logits), act(logits, "crossEntropy"), a(targets), a(rowLoss), a(lossSum),
                    a(dLogits), rows, v, gradScale, stream);
        }
    }

    @Override
    public void logProbGather(Tensor logits, Tensor targets, float temperature, Tensor logp, Tensor lse) {
        enter();
        int rows = n(targets), v = div(logits.numel(), rows, "logProbGather logits vs targets");
        LogprobGather.forward(a(logits), act(logits, "logProbGather"), a(targets), a(logp), a(lse), rows, v,
                temperature, stream);
    }

    @Override
    public void logProbGatherBackward(Tensor logits, Tensor targets, Tensor lse, Tensor dLogp, float temperature,
                                      Tensor dLogits) {
        enter();
        sameDtype("logProbGatherBackward", logits, dLogits);
        int rows = n(targets), v = div(logits.numel(), rows, "logProbGatherBackward logits vs targets");
        LogprobGather.backward(a(logits), act(logits, "logProbGatherBackward"), a(targets), a(lse), a(dLogp),
                a(dLogits), rows, v, temperature, stream);
    }

    @Override
    public void grpoLoss(GrpoSpec spec, Tensor logp, Tensor oldLogp, Tensor refLogp, Tensor advantages, Tensor mask,
                         Tensor dLogp, Tensor stats) {
        enter();
        int batch = n(advantages);
        int len = div(logp.numel(), batch, "grpoLoss logp vs advantages");
        try (Tensor s = scratch(GrpoLossKernel.scratchBytes(batch))) {
            GrpoLossKernel.compute(a(logp), oldLogp == null ? a(logp) : a(oldLogp), addrOrZero(refLogp), a(mask),
                    a(advantages), a(dLogp), a(s), a(stats), batch, len, spec.clipLow(), spec.clipHigh(), spec.beta(),
                    GrpoLevel.valueOf(spec.aggregation().name()), spec.maxCompletionLength(), stream);
        }
    }

    // ------------------------------------------------------------------ decoding from device-resident state

    @Override
    public void appendRowsAt(Tensor src, Tensor dst, int dstStride, Tensor row) {
        enter();
        sameDtype("appendRowsAt", src, dst);
        int width = (int) src.dim(-1);
        int batch = div(src.numel(), width, "appendRowsAt src");
        same(dst.numel(), (long) batch * dstStride * width, "appendRowsAt dst vs batch*stride*width");
        CopyRows.appendAt(a(src), a(dst), a(row), batch, dstStride, width, src.dtype(), stream);
    }

    @Override
    public void attentionDecode(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s,
                                Tensor cacheLen, Tensor keyMask) {
        enter();
        sameDtype("attentionDecode", q, k, v, out);
        long bytes = Attention.decodeWorkspaceBytes(s.batch(), 1, s.heads(), s.headDim());
        try (Tensor ws = scratch(bytes)) {
            Attention.decodeAt(a(q), a(k), a(v), a(out), a(lse), addrOrZero(keyMask), a(ws), bytes,
                    act(q, "attentionDecode"), s.batch(), s.kStride(), s.heads(), s.kvHeads(), s.headDim(), s.scale(),
                    a(cacheLen), stream);
        }
    }

    @Override
    public void addInt(Tensor t, int delta) {
        enter();
        if (t.dtype() != DType.I32) {
            throw new IllegalArgumentException("addInt: " + t + " is not I32");
        }
        Elementwise.addI32(a(t), t.numel(), delta, stream);
    }

    @Override
    public void samplingReset(SamplingState st, long seed) {
        enter();
        Sampling.reset(a(st.counters()), a(st.finished()), a(st.steps()), st.rows(), seed, stream);
    }

    @Override
    public void sample(Tensor logits, int group, SamplingState st, Tensor tokens) {
        enter();
        int vocab = (int) logits.dim(-1);
        Sampling.sample(a(logits), act(logits, "sample"), st.rows(), vocab, group, a(st.temperature()), a(st.topK()),
                a(st.topP()), addrOrZero(st.stopIds()), st.stopCount(), st.padId(), a(st.counters()), a(st.finished()),
                a(st.steps()), a(tokens), a(st.logprobs()), a(st.tokenHistory()), a(st.logprobHistory()),
                st.maxSteps(), stream);
    }

    private boolean capturing;

    /**
     * Runs {@code step} once and captures it as a CUDA graph on this backend's stream for the replays. The run is
     * eager, with every buffer the step frees kept until it ends, so that each allocation of the step gets a block
     * of its own in the cache: the capture that follows (which may not call cuMemAlloc) then finds one cached block
     * for every allocation it makes, and those blocks stay with the graph until it is closed. Kernels are compiled
     * and loaded by the eager run, never during the capture.
     */
    @Override
    public StepGraph capture(Runnable step) {
        enter();
        allocator.beginCapture();
        try {
            step.run();
        } finally {
            allocator.endCapture().forEach(b -> allocator.release(b[0], b[1]));
        }
        allocator.beginCapture();
        capturing = true;
        long graph;
        try {
            CudaDriver.streamBeginCapture(stream);
            try {
                step.run();
            } finally {
                graph = CudaDriver.streamEndCapture(stream);
            }
        } catch (RuntimeException e) {
            capturing = false;
            allocator.endCapture().forEach(b -> allocator.release(b[0], b[1]));
            throw e;
        }
        capturing = false;
        java.util.List<long[]> owned = allocator.endCapture();
        long exec;
        try {
            exec = CudaDriver.graphInstantiate(graph);
        } finally {
            CudaDriver.graphDestroy(graph);
        }
        return new StepGraph() {
            private boolean closed;

            @Override
            public void replay() {
                if (closed) {
                    throw new IllegalStateException("the graph is closed");
                }
                enter();
                CudaDriver.graphLaunch(exec, stream);
            }

            @Override
            public boolean isDeviceGraph() {
                return true;
            }

            @Override
            public void close() {
                if (closed) {
                    return;
                }
                closed = true;
                if (!CudaBackend.this.closed) {
                    enter();
                    // replays still queued may read the blocks: release them in stream order after the exec is gone
                    CudaDriver.streamSynchronize(stream);
                    CudaDriver.graphExecDestroy(exec);
                    owned.forEach(b -> allocator.release(b[0], b[1]));
                }
            }
        };
    }

    // ------------------------------------------------------------------ optimizer

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor computeCopy, long decayEnd,
                      AdamWParams p, Tensor clipScale) {
        enter();
        same(param.numel(), grad.numel(), "adamW grad");
        same(param.numel(), m.numel(), "adamW m");
        same(param.numel(), v.numel(), "adamW v");
        if (computeCopy != null) {
            same(param.numel(), computeCopy.numel(), "adamW compute copy");
        }
        AdamWKernel.step(a(param), a(grad), a(m), a(v), addrOrZero(computeCopy), addrOrZero(clipScale),
                param.numel(), decayEnd, p.lr(), p.beta1(), p.beta2(), p.eps(), p.weightDecay(), p.biasCorrection1(),
                p.biasCorrection2(), stream);
    }

    // ------------------------------------------------------------------ encoder (BERT) ops

    @Override
    public void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
        enter();
        sameDtype("layerNorm", x, w, b, out);
        int dim = n(w);
        int rows = div(x.numel(), dim, "layerNorm input " + x + " vs weight " + w);
        LayerNorm.forward(a(x), a(w), a(b), a(out), act(x, "layerNorm"), rows, dim, eps, stream);
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        enter();
        sameDtype("gelu", x, out);
        Gelu.forward(a(x), a(out), act(x, "gelu"), x.numel(), stream);
    }

    @Override
    public void meanPool(Tensor x, Tensor mask, Tensor pooled) {
        enter();
        sameDtype("meanPool", x, pooled);
        int c = (int) pooled.dim(-1);
        int rowsB = div(pooled.numel(), c, "meanPool pooled");
        int t = div(div(x.numel(), c, "meanPool input"), rowsB, "meanPool batch");
        Pooling.meanPool(a(x), addrOrZero(mask), a(pooled), act(x, "meanPool"), rowsB, t, c, stream);
    }

    @Override
    public void l2NormalizeRows(Tensor x, float eps) {
        enter();
        int w = (int) x.dim(-1);
        Pooling.l2NormalizeRows(a(x), act(x, "l2NormalizeRows"), div(x.numel(), w, "l2NormalizeRows"), w, eps, stream);
    }

    @Override
    public void groupAdvantages(Tensor rewards, int groupSize, boolean scaleByStd, float eps, Tensor out) {
        enter();
        int p = Backend.advantageGroups(rewards, groupSize, eps, out);
        GroupAdvantages.compute(a(rewards), a(out), p, groupSize, scaleByStd, eps, stream);
    }

    @Override
    public void cosineSimilarity(Tensor ref, Tensor x, Tensor out) {
        enter();
        int[] pgd = Backend.cosineDims(ref, x, out);
        CosineSimilarity.againstReference(a(ref), a(x), x.dtype(), a(out), pgd[0], pgd[1], pgd[2], stream);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        enter();
        CudaDriver.streamSynchronize(stream);
        gemm.close();
        allocator.emptyCache();
        closed = true;
        CudaDriver.streamDestroy(stream);
        ctx.close();
    }
}
