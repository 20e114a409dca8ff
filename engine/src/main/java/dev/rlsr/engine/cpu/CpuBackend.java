package dev.rlsr.engine.cpu;

import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.GrpoSpec;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.SamplingState;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.AdamWReference;
import dev.rlsr.kernels.ArgmaxReference;
import dev.rlsr.kernels.AttentionReference;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.CopyRowsReference;
import dev.rlsr.kernels.CrossEntropyReference;
import dev.rlsr.kernels.ElementwiseReference;
import dev.rlsr.kernels.EmbeddingReference;
import dev.rlsr.kernels.GeluReference;
import dev.rlsr.kernels.GlobalNormReference;
import dev.rlsr.kernels.GrpoLevel;
import dev.rlsr.kernels.GrpoLossReference;
import dev.rlsr.kernels.LayerNormReference;
import dev.rlsr.kernels.LogprobGatherReference;
import dev.rlsr.kernels.PoolingReference;
import dev.rlsr.kernels.RmsNormReference;
import dev.rlsr.kernels.RopeReference;
import dev.rlsr.kernels.SamplingReference;
import dev.rlsr.kernels.SwigluReference;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;
import dev.rlsr.kernels.cpu.Sgemm;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;


/**
 * fp32 backend on the Java heap. Every op is the plain-Java reference of its CUDA kernel
 * ({@code dev.rlsr.kernels.*Reference}: the same contract, multithreaded on {@code CpuParallel}, {@code rlsr.threads},
 * Vector API where it pays), so the CPU and the GPU run one definition of each op; the linear layers go through the
 * CPU GEMM ({@link Sgemm}). Tensors may be views (an element offset into a larger array): every op addresses its
 * arrays through the offsets. BF16 and I32 tensors are stored ({@code short[]} bits, {@code int[]}) but the ops
 * compute in fp32 only.
 */
public final class CpuBackend implements Backend {

    /** A shared instance; the backend itself is stateless. */
    public static final CpuBackend INSTANCE = new CpuBackend();

    private static final int ROW_GRAIN = 16;

    /** A backend; {@link #INSTANCE} is the usual one (it holds no state). */
    public CpuBackend() {}

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Precision defaultPrecision() {
        return Precision.FP32;
    }

    @Override
    public boolean computes(DType act) {
        return act == DType.F32;
    }

    // ------------------------------------------------------------------ tensor access

    static CpuTensor c(Tensor t) {
        if (t instanceof CpuTensor c) {
            return c;
        }
        throw new IllegalArgumentException("tensor " + t + " does not belong to the CPU backend");
    }

    /** The F32 array of t (its elements start at {@link #o(Tensor)}). */
    static float[] a(Tensor t) {
        return c(t).array();
    }

    /** t's element offset in its array. */
    static int o(Tensor t) {
        return c(t).off();
    }

    /** t's element count. */
    private static int n(Tensor t) {
        return c(t).size();
    }

    private static int[] ints(Tensor t) {
        return c(t).intArray();
    }

    private static int div(int total, int width, String what) {
        if (width <= 0 || total % width != 0) {
            throw new IllegalArgumentException(what + ": " + total + " elements are not a whole number of rows of "
                    + width);
        }
        return total / width;
    }

    private static void same(int x, int y, String what) {
        if (x != y) {
            throw new IllegalArgumentException(what + ": " + x + " != " + y);
        }
    }

    // ------------------------------------------------------------------ memory

    @Override
    public Tensor alloc(DType dtype, long... shape) {
        return zeros(dtype, shape);
    }

    @Override
    public Tensor zeros(DType dtype, long... shape) {
        long n = Tensor.count(shape);
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("shape " + Tensor.describe(shape) + " has " + n
                    + " elements; the CPU backend holds at most 2^31-9 per tensor");
        }
        int len = (int) n;
        Object array = switch (dtype) {
            case F32 -> new float[len];
            case BF16 -> new short[len];
            case I32 -> new int[len];
            default -> throw new IllegalArgumentException("the CPU backend stores F32, BF16 and I32 tensors, not "
                    + dtype);
        };
        return new CpuTensor(this, dtype, shape, array);
    }

    @Override
    public Tensor upload(float[] data, DType dtype, long... shape) {
        if (Tensor.count(shape) != data.length) {
            throw new IllegalArgumentException("upload: " + data.length + " values for shape " + Tensor.describe(shape));
        }
        Tensor t = zeros(dtype, shape);
        upload(data, t);
        return t;
    }

    @Override
    public Tensor upload(int[] data, long... shape) {
        if (Tensor.count(shape) != data.length) {
            throw new IllegalArgumentException("upload: " + data.length + " ints for shape " + Tensor.describe(shape));
        }
        return new CpuTensor(this, DType.I32, shape, data.clone());
    }

    @Override
    public float[] download(Tensor t) {
        CpuTensor c = c(t);
        return switch (c.dtype()) {
            case F32 -> Arrays.copyOfRange(c.array(), c.off(), c.off() + c.size());
            case BF16 -> BF16.toFloat(Arrays.copyOfRange(c.bf16Array(), c.off(), c.off() + c.size()));
            default -> throw new IllegalArgumentException("download: " + t + " is not a floating tensor; use "
                    + "downloadInts");
        };
    }

    @Override
    public int[] downloadInts(Tensor t) {
        CpuTensor c = c(t);
        return Arrays.copyOfRange(c.intArray(), c.off(), c.off() + c.size());
    }

    @Override
    public void upload(float[] data, Tensor dst) {
        CpuTensor d = c(dst);
        same(data.length, d.size(), "upload into " + dst);
        switch (d.dtype()) {
            case F32 -> System.arraycopy(data, 0, d.array(), d.off(), data.length);
            case BF16 -> {
                short[] s = d.bf16Array();
                for (int i = 0; i < data.length; i++) {
                    s[d.off() + i] = BF16.fromFloat(data[i]);
                }
            }
            default -> throw new IllegalArgumentException("upload of floats into " + dst);
        }
    }

    @Override
    public void upload(int[] data, Tensor dst) {
        CpuTensor d = c(dst);
        same(data.length, d.size(), "upload into " + dst);
        System.arraycopy(data, 0, d.intArray(), d.off(), data.length);
    }

    private static final ValueLayout.OfFloat LE_F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Override
    public void uploadRaw(MemorySegment src, DType srcType, long count, Tensor dst, long dstOffset) {
        CpuTensor d = c(dst);
        if (dstOffset < 0 || dstOffset + count > d.size()) {
            throw new IllegalArgumentException("uploadRaw: " + count + " elements at " + dstOffset + " do not fit "
                    + dst);
        }
        if (src.byteSize() < count * srcType.bytes()) {
            throw new IllegalArgumentException("uploadRaw: the source holds " + src.byteSize() + " bytes, "
                    + count + " " + srcType + " elements need " + count * srcType.bytes());
        }
        int base = d.off() + (int) dstOffset, n = (int) count;
        if (d.dtype() == DType.F32) {
            float[] f = d.array();
            for (int i = 0; i < n; i++) {
                f[base + i] = readFloat(src, srcType, i);
            }
        } else if (d.dtype() == DType.BF16) {
            short[] s = d.bf16Array();
            for (int i = 0; i < n; i++) {
                s[base + i] = srcType == DType.BF16 ? src.getAtIndex(LE_16, i) : BF16.fromFloat(readFloat(src, srcType, i));
            }
        } else {
            throw new IllegalArgumentException("uploadRaw into " + dst + ": F32 or BF16 destinations only");
        }
    }

    private static float readFloat(MemorySegment src, DType t, long i) {
        return switch (t) {
            case F32 -> src.getAtIndex(LE_F32, i);
            case BF16 -> Float.intBitsToFloat((src.getAtIndex(LE_16, i) & 0xffff) << 16);
            case F16 -> Float.float16ToFloat(src.getAtIndex(LE_16, i));
            default -> throw new IllegalArgumentException("uploadRaw: source elements must be F32, BF16 or F16, not " + t);
        };
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        CpuTensor s = c(src), d = c(dst);
        same(s.size(), d.size(), "copy " + src + " -> " + dst);
        if (s.dtype() == d.dtype()) {
            Object sa = s.dtype() == DType.F32 ? s.array() : s.dtype() == DType.BF16 ? s.bf16Array() : s.intArray();
            Object da = d.dtype() == DType.F32 ? d.array() : d.dtype() == DType.BF16 ? d.bf16Array() : d.intArray();
            System.arraycopy(sa, s.off(), da, d.off(), s.size());
        } else if (s.dtype() == DType.F32 && d.dtype() == DType.BF16) {
            float[] f = s.array();
            short[] b = d.bf16Array();
            for (int i = 0; i < s.size(); i++) {
                b[d.off() + i] = BF16.fromFloat(f[s.off() + i]);
            }
        } else if (s.dtype() == DType.BF16 && d.dtype() == DType.F32) {
            short[] b = s.bf16Array();
            float[] f = d.array();
            for (int i = 0; i < s.size(); i++) {
                f[d.off() + i] = BF16.toFloat(b[s.off() + i]);
            }
        } else {
            throw new IllegalArgumentException("copy " + src + " -> " + dst + ": only F32 <-> BF16 conversions");
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        CpuTensor c = c(t);
        switch (c.dtype()) {
            case F32 -> Arrays.fill(c.array(), c.off(), c.off() + c.size(), value);
            case BF16 -> Arrays.fill(c.bf16Array(), c.off(), c.off() + c.size(), BF16.fromFloat(value));
            case I32 -> Arrays.fill(c.intArray(), c.off(), c.off() + c.size(), (int) value);
            default -> throw new IllegalArgumentException("fill " + t);
        }
    }

    @Override
    public void copyRows(Tensor src, int srcStride, int srcRow0, Tensor dst, int dstStride, int dstRow0, int batch,
                         int rows, int width) {
        CpuTensor s = c(src), d = c(dst);
        if (s.dtype() != d.dtype()) {
            throw new IllegalArgumentException("copyRows " + src + " -> " + dst + ": dtypes differ");
        }
        if ((long) batch * srcStride * width > s.size() || (long) batch * dstStride * width > d.size()
                || srcRow0 + rows > srcStride || dstRow0 + rows > dstStride) {
            throw new IllegalArgumentException("copyRows out of bounds: batch=" + batch + " rows=" + rows + " width="
                    + width + " src " + src + " stride " + srcStride + "@" + srcRow0 + ", dst " + dst + " stride "
                    + dstStride + "@" + dstRow0);
        }
        Object sa = s.dtype() == DType.F32 ? s.array() : s.dtype() == DType.BF16 ? s.bf16Array() : s.intArray();
        Object da = d.dtype() == DType.F32 ? d.array() : d.dtype() == DType.BF16 ? d.bf16Array() : d.intArray();
        for (int b = 0; b < batch; b++) {
            System.arraycopy(sa, s.off() + (b * srcStride + srcRow0) * width, da,
                    d.off() + (b * dstStride + dstRow0) * width, rows * width);
        }
    }

    @Override
    public void gatherRows(Tensor src, Tensor rowsT, Tensor dst) {
        CpuTensor sc = c(src), dc = c(dst);
        if (sc.dtype() != dc.dtype()) {
            throw new IllegalArgumentException("gatherRows " + src + " -> " + dst + ": dtypes differ");
        }
        int nr = n(rowsT);
        int w = div(n(dst), nr, "gatherRows dst");
        int r = div(n(src), w, "gatherRows src");
        int[] rows = ints(rowsT);
        for (int i = 0; i < nr; i++) {
            int row = rows[o(rowsT) + i];
            if (row < 0 || row >= r) {
                throw new IllegalArgumentException("gatherRows: row " + row + " outside [0, " + r + ")");
            }
        }
        CopyRowsReference.gatherRows(storage(sc), sc.off(), r, rows, o(rowsT), nr, storage(dc), dc.off(), w);
    }

    private static Object storage(CpuTensor t) {
        return switch (t.dtype()) {
            case F32 -> t.array();
            case BF16 -> t.bf16Array();
            default -> t.intArray();
        };
    }

    // ------------------------------------------------------------------ compute: every op is its kernel's reference
    // (dev.rlsr.kernels.*Reference), the same contract as the CUDA kernel, on (array, offset) views

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        same(n(a), n(b), "add");
        same(n(a), n(out), "add out");
        ElementwiseReference.add(a(a), o(a), a(b), o(b), a(out), o(out), n(a));
    }

    @Override
    public void scale(Tensor t, float s) {
        ElementwiseReference.scale(a(t), o(t), n(t), s);
    }

    @Override
    public void clipScale(Tensor grad, float maxNorm, Tensor sumSq, Tensor scale) {
        double ss = GlobalNormReference.sumOfSquares(a(grad), o(grad), n(grad));
        a(sumSq)[o(sumSq)] = (float) ss;
        a(scale)[o(scale)] = GlobalNormReference.clipScale(ss, maxNorm);
    }

    @Override
    public void argmaxRows(Tensor x, Tensor out) {
        int w = (int) x.dim(-1);
        int rows = div(n(x), w, "argmaxRows");
        same(n(out), rows, "argmaxRows out");
        ArgmaxReference.rows(a(x), o(x), rows, w, ints(out), o(out));
    }

    // ------------------------------------------------------------------ linear

    private static int[] linearDims(Tensor x, Tensor w, Tensor y, String op) {
        long[] ws = w.shape();
        if (ws.length != 2) {
            throw new IllegalArgumentException(op + ": weight must be (out,in), got " + w);
        }
        int out = (int) ws[0], in = (int) ws[1];
        int rows = div(n(x), in, op + " input " + x + " vs weight " + w);
        same(n(y), rows * out, op + " output " + y + " size vs rows*out");
        return new int[]{rows, in, out};
    }

    // The linear layers call the CPU GEMM (Sgemm) directly and add the bias row by row, in the order the CPU results
    // have always had; GemmReference describes the cuBLASLt contract (one rounding of D) for the device tests.
    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor residual, Tensor y) {
        int[] d = linearDims(x, w, y, "linear");
        int rows = d[0], in = d[1], out = d[2];
        float[] yd = a(y);
        int yo = o(y);
        if (residual != null && residual != y) {
            same(n(residual), n(y), "linear residual");
            copy(residual, y);
        }
        Sgemm.sgemm(false, true, rows, out, in, 1f, a(x), o(x), in, a(w), o(w), in, residual != null ? 1f : 0f, yd,
                yo, out);
        if (bias != null) {
            float[] bd = a(bias);
            int bo = o(bias);
            same(n(bias), out, "linear bias");
            CpuParallel.forRange(rows, CpuParallel.grain(out, ROW_GRAIN), (lo, hi) -> {
                for (int r = lo; r < hi; r++) {
                    CpuVec.axpy(1f, bd, bo, yd, yo + r * out, out);
                }
            });
        }
    }

    @Override
    public void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate) {
        int[] d = linearDims(dx, w, dy, "linearBackwardInput");
        int rows = d[0], in = d[1], out = d[2];
        Sgemm.sgemm(false, false, rows, in, out, 1f, a(dy), o(dy), out, a(w), o(w), in, accumulate ? 1f : 0f, a(dx),
                o(dx), in);
    }

    @Override
    public void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias) {
        int[] d = linearDims(x, dw, dy, "linearBackwardWeight");
        int rows = d[0], in = d[1], out = d[2];
        Sgemm.sgemm(true, false, out, in, rows, 1f, a(dy), o(dy), out, a(x), o(x), in, 1f, a(dw), o(dw), in);
        if (dBias != null) {
            same(n(dBias), out, "linearBackwardWeight bias");
            ElementwiseReference.biasGrad(a(dy), o(dy), rows, out, a(dBias), o(dBias));
        }
    }

    // ------------------------------------------------------------------ embedding, norms, rope, swiglu

    @Override
    public void embedding(Tensor idsT, Tensor table, Tensor out) {
        int ni = n(idsT);
        int c = div(n(out), ni, "embedding out");
        int v = div(n(table), c, "embedding table");
        int[] ids = ints(idsT);
        for (int i = 0; i < ni; i++) {
            int id = ids[o(idsT) + i];
            if (id < 0 || id >= v) {
                throw new IllegalArgumentException("token id " + id + " at position " + i
                        + " is outside the vocabulary [0, " + v + ")");
            }
        }
        EmbeddingReference.forward(ids, o(idsT), ni, a(table), o(table), v, c, a(out), o(out));
    }

    @Override
    public void embeddingBackward(Tensor idsT, Tensor dOut, Tensor dTable) {
        int ni = n(idsT);
        int c = div(n(dOut), ni, "embeddingBackward dOut");
        int v = div(n(dTable), c, "embeddingBackward dTable");
        EmbeddingReference.backward(ints(idsT), o(idsT), ni, a(dOut), o(dOut), c, a(dTable), o(dTable), v);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd) {
        int dim = n(w);
        int rows = div(n(x), dim, "rmsNorm input " + x + " vs weight " + w);
        same(n(out), n(x), "rmsNorm out");
        same(n(rstd), rows, "rmsNorm rstd");
        RmsNormReference.forward(a(x), o(x), a(w), o(w), eps, a(out), o(out), a(rstd), o(rstd), rows, dim);
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw,
                                boolean accumulateDx) {
        int dim = n(w);
        int rows = div(n(x), dim, "rmsNormBackward");
        same(n(dOut), n(x), "rmsNormBackward dOut");
        same(n(dx), n(x), "rmsNormBackward dx");
        same(n(rstd), rows, "rmsNormBackward rstd");
        same(n(dw), dim, "rmsNormBackward dw");
        RmsNormReference.backward(a(dOut), o(dOut), a(x), o(x), a(w), o(w), a(rstd), o(rstd), a(dx), o(dx), a(dw),
                o(dw), rows, dim, accumulateDx);
    }

    @Override
    public void ropeTable(Tensor positions, Tensor invFreq, Tensor table) {
        int np = n(positions), half = n(invFreq);
        same(n(table), np * 2 * half, "ropeTable table size vs positions*headDim");
        RopeReference.table(ints(positions), o(positions), np, a(invFreq), o(invFreq), half, a(table), o(table));
    }

    @Override
    public void rope(Tensor x, Tensor table, int heads, boolean inverse) {
        int dim = (int) table.dim(-1);
        int n = div(n(table), dim, "rope table");
        same(n(x), n * heads * dim, "rope x size vs table rows*heads*headDim");
        RopeReference.apply(a(x), o(x), heads * dim, a(table), o(table), n, heads, dim, inverse);
    }

    @Override
    public void swiglu(Tensor g, Tensor u, Tensor h) {
        same(n(g), n(u), "swiglu");
        same(n(g), n(h), "swiglu out");
        SwigluReference.forward(a(g), o(g), a(u), o(u), a(h), o(h), n(g));
    }

    @Override
    public void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du) {
        same(n(g), n(u), "swigluBackward");
        same(n(g), n(dh), "swigluBackward dh");
        same(n(g), n(dg), "swigluBackward dg");
        same(n(g), n(du), "swigluBackward du");
        SwigluReference.backward(a(g), o(g), a(u), o(u), a(dh), o(dh), a(dg), o(dg), a(du), o(du), n(g));
    }

    // ------------------------------------------------------------------ attention

    private static void checkAttention(AttentionShape s, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                                       Tensor keyMask) {
        int qw = s.heads() * s.headDim(), kw = s.kvHeads() * s.headDim();
        same(n(q), s.batch() * s.qLen() * qw, "attention q " + q + " vs " + s);
        same(n(out), s.batch() * s.qLen() * qw, "attention out " + out + " vs " + s);
        same(n(k), s.batch() * s.kStride() * kw, "attention k " + k + " vs " + s);
        same(n(v), s.batch() * s.kStride() * kw, "attention v " + v + " vs " + s);
        if (lse != null) {
            same(n(lse), s.batch() * s.heads() * s.qLen(), "attention lse " + lse + " vs " + s);
        }
        if (keyMask != null) {
            same(n(keyMask), s.batch() * s.kStride(), "attention key mask length vs batch*kStride");
        }
    }

    private static int[] maskArray(Tensor keyMask) {
        return keyMask == null ? null : ints(keyMask);
    }

    private static int maskOffset(Tensor keyMask) {
        return keyMask == null ? 0 : o(keyMask);
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor keyMask) {
        checkAttention(s, q, k, v, out, lse, keyMask);
        AttentionReference.forward(a(q), o(q), a(k), o(k), a(v), o(v), a(out), o(out), a(lse), o(lse),
                maskArray(keyMask), maskOffset(keyMask), s.batch(), s.qLen(), s.kLen(), s.kStride(), s.qOffset(),
                s.heads(), s.kvHeads(), s.headDim(), s.scale());
    }

    @Override
    public void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                  Tensor dk, Tensor dv, AttentionShape s, Tensor keyMask) {
        checkAttention(s, q, k, v, out, lse, keyMask);
        same(n(dOut), n(out), "attentionBackward dOut");
        same(n(dq), n(q), "attentionBackward dq");
        same(n(dk), n(k), "attentionBackward dk");
        same(n(dv), n(v), "attentionBackward dv");
        AttentionReference.backward(a(q), o(q), a(k), o(k), a(v), o(v), a(out), o(out), a(lse), o(lse), a(dOut),
                o(dOut), a(dq), o(dq), a(dk), o(dk), a(dv), o(dv), maskArray(keyMask), maskOffset(keyMask),
                s.batch(), s.qLen(), s.kLen(), s.kStride(), s.qOffset(), s.heads(), s.kvHeads(), s.headDim(),
                s.scale());
    }

    @Override
    public void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, Tensor keyMask) {
        if (s.qOffset() != 0 || s.qLen() != s.kLen()) {
            throw new IllegalArgumentException("bidirectional attention is self-attention over one sequence: qOffset "
                    + s.qOffset() + " must be 0 and qLen " + s.qLen() + " must equal kLen " + s.kLen());
        }
        checkAttention(s, q, k, v, out, null, keyMask);
        AttentionReference.bidirectional(a(q), o(q), a(k), o(k), a(v), o(v), a(out), o(out), maskArray(keyMask),
                maskOffset(keyMask), s.batch(), s.qLen(), s.kLen(), s.kStride(), s.qOffset(), s.heads(), s.kvHeads(),
                s.headDim(), s.scale());
    }

    // ------------------------------------------------------------------ losses

    private static int vocab(Tensor logits, int rows) {
        return div(n(logits), rows, "logits " + logits + " vs " + rows + " targets");
    }

    private static void checkTargets(Tensor targets, int v) {
        int[] t = ints(targets);
        for (int r = 0, off = o(targets); r < n(targets); r++) {
            if (t[off + r] >= v) {
                throw new IllegalArgumentException("target " + t[off + r] + " at row " + r + " outside [0, " + v
                        + ")");
            }
        }
    }

    @Override
    public void crossEntropy(Tensor logits, Tensor targets, float gradScale, Tensor dLogits, Tensor lossSum) {
        int rows = n(targets), v = vocab(logits, rows);
        same(n(dLogits), n(logits), "crossEntropy dLogits");
        checkTargets(targets, v);
        double sum = CrossEntropyReference.forwardBackward(a(logits), o(logits), ints(targets), o(targets), rows, v,
                gradScale, a(dLogits), o(dLogits), null, 0);
        a(lossSum)[o(lossSum)] += (float) sum;
    }

    @Override
    public void logProbGather(Tensor logits, Tensor targets, float temperature, Tensor logp, Tensor lse) {
        int rows = n(targets), v = vocab(logits, rows);
        same(n(logp), rows, "logProbGather logp");
        same(n(lse), rows, "logProbGather lse");
        LogprobGatherReference.forward(a(logits), o(logits), ints(targets), o(targets), rows, v, temperature, a(logp),
                o(logp), a(lse), o(lse));
    }

    @Override
    public void logProbGatherBackward(Tensor logits, Tensor targets, Tensor lse, Tensor dLogp, float temperature,
                                      Tensor dLogits) {
        int rows = n(targets), v = vocab(logits, rows);
        same(n(dLogits), n(logits), "logProbGatherBackward dLogits");
        same(n(dLogp), rows, "logProbGatherBackward dLogp");
        LogprobGatherReference.backward(a(logits), o(logits), ints(targets), o(targets), a(lse), o(lse), a(dLogp),
                o(dLogp), rows, v, temperature, a(dLogits), o(dLogits));
    }

    @Override
    public void grpoLoss(GrpoSpec spec, Tensor logp, Tensor oldLogp, Tensor refLogp, Tensor advantages, Tensor mask,
                         Tensor dLogp, Tensor stats) {
        int batch = n(advantages);
        int len = div(n(logp), batch, "grpoLoss logp vs advantages");
        float[] lp = download(logp);
        int[] m = downloadInts(mask);
        float[] mf = new float[m.length];
        for (int i = 0; i < m.length; i++) {
            mf[i] = m[i];
        }
        GrpoLossReference.Result r = GrpoLossReference.compute(spec.clipLow(), spec.clipHigh(), spec.beta(),
                GrpoLevel.valueOf(spec.aggregation().name()), spec.maxCompletionLength(), lp,
                oldLogp == null ? lp : download(oldLogp), refLogp == null ? null : download(refLogp),
                download(advantages), mf, batch, len);
        upload(r.dLogp(), dLogp);
        upload(new float[]{(float) r.loss(), (float) r.meanRatio(), (float) r.clipFraction(), (float) r.meanKl()},
                stats);
    }

    // ------------------------------------------------------------------ decoding from device-resident state

    @Override
    public void appendRowsAt(Tensor src, Tensor dst, int dstStride, Tensor row) {
        CpuTensor sc = c(src), dc = c(dst);
        if (sc.dtype() != dc.dtype()) {
            throw new IllegalArgumentException("appendRowsAt " + src + " -> " + dst + ": dtypes differ");
        }
        int r = ints(row)[o(row)];
        int width = (int) src.dim(-1);
        int batch = div(n(src), width, "appendRowsAt src");
        same(n(dst), batch * dstStride * width, "appendRowsAt dst vs batch*stride*width");
        if (r < 0 || r >= dstStride) {
            throw new IllegalArgumentException("appendRowsAt: row " + r + " outside [0, " + dstStride + ")");
        }
        CopyRowsReference.copyRows(storage(sc), sc.off(), 1, 0, storage(dc), dc.off(), dstStride, r, batch, 1, width);
    }

    @Override
    public void attentionDecode(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s,
                                Tensor cacheLen, Tensor keyMask) {
        int len = ints(cacheLen)[o(cacheLen)];
        if (len < 1 || len > s.kStride()) {
            throw new IllegalArgumentException("attentionDecode: cache length " + len + " outside [1, " + s.kStride()
                    + "]");
        }
        attention(q, k, v, out, lse, new AttentionShape(s.batch(), 1, len, s.kStride(), len - 1, s.heads(),
                s.kvHeads(), s.headDim(), s.scale()), keyMask);
    }

    @Override
    public void addInt(Tensor t, int delta) {
        int[] a = ints(t);
        for (int i = o(t), end = o(t) + n(t); i < end; i++) {
            a[i] += delta;
        }
    }

    @Override
    public void samplingReset(SamplingState st, long seed) {
        SamplingReference.reset(ints(st.counters()), ints(st.finished()), ints(st.steps()), st.rows(), seed);
    }

    @Override
    public void sample(Tensor logits, int group, SamplingState st, Tensor tokens) {
        for (Tensor t : new Tensor[]{st.counters(), st.finished(), st.steps(), st.tokenHistory(), st.logprobHistory(),
                st.logprobs(), st.temperature(), st.topK(), st.topP(), tokens}) {
            if (o(t) != 0 || t.isView()) {
                throw new IllegalArgumentException("sample: the CPU backend samples into whole tensors, not views: " + t);
            }
        }
        int vocab = (int) logits.dim(-1);
        SamplingReference.sample(a(logits), o(logits), st.rows(), vocab, group, a(st.temperature()), ints(st.topK()),
                a(st.topP()), st.stopIds() == null ? new int[0] : ints(st.stopIds()), st.padId(), ints(st.counters()),
                ints(st.finished()), ints(st.steps()), ints(tokens), a(st.logprobs()), ints(st.tokenHistory()),
                a(st.logprobHistory()), st.maxSteps());
    }

    @Override
    public StepGraph capture(Runnable step) {
        step.run();
        return new StepGraph() {
            @Override
            public void replay() {
                step.run();
            }

            @Override
            public boolean isDeviceGraph() {
                return false;
            }

            @Override
            public void close() {
            }
        };
    }

    // ------------------------------------------------------------------ optimizer

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor computeCopy, long decayEnd,
                      AdamWParams hp, Tensor clipScale) {
        int n = n(param);
        same(n, n(grad), "adamW grad");
        same(n, n(m), "adamW m");
        same(n, n(v), "adamW v");
        if (computeCopy != null) {
            same(n, n(computeCopy), "adamW compute copy");
        }
        AdamWReference.step(a(param), o(param), a(grad), o(grad), a(m), o(m), a(v), o(v),
                computeCopy == null ? null : c(computeCopy).bf16Array(), computeCopy == null ? 0 : o(computeCopy), n,
                decayEnd, clipScale == null ? 1f : a(clipScale)[o(clipScale)], hp.lr(), hp.beta1(), hp.beta2(),
                hp.eps(), hp.weightDecay(), hp.biasCorrection1(), hp.biasCorrection2());
    }

    // ------------------------------------------------------------------ encoder (BERT) ops

    @Override
    public void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
        int dim = n(w);
        same(n(b), dim, "layerNorm bias vs weight");
        int rows = div(n(x), dim, "layerNorm input " + x + " vs weight " + w);
        same(n(out), n(x), "layerNorm out");
        LayerNormReference.forward(a(x), o(x), a(w), o(w), a(b), o(b), eps, a(out), o(out), rows, dim);
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        same(n(x), n(out), "gelu out");
        GeluReference.forward(a(x), o(x), a(out), o(out), n(x));
    }

    @Override
    public void meanPool(Tensor x, Tensor mask, Tensor pooled) {
        int c = (int) pooled.dim(-1);
        int rowsB = div(n(pooled), c, "meanPool pooled");
        int t = div(div(n(x), c, "meanPool input " + x + " vs pooled " + pooled), rowsB, "meanPool batch");
        if (mask != null) {
            same(n(mask), rowsB * t, "meanPool mask length vs B*T");
        }
        PoolingReference.meanPool(a(x), o(x), mask == null ? null : ints(mask), mask == null ? 0 : o(mask), a(pooled),
                o(pooled), rowsB, t, c);
    }

    @Override
    public void l2NormalizeRows(Tensor x, float eps) {
        int w = (int) x.dim(-1);
        PoolingReference.l2NormalizeRows(a(x), o(x), div(n(x), w, "l2NormalizeRows"), w, eps);
    }
}
