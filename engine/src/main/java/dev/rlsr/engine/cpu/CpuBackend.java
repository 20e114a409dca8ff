package dev.rlsr.engine.cpu;

import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.GrpoSpec;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;
import dev.rlsr.kernels.cpu.Sgemm;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

/**
 * fp32 backend on the Java heap. Matrix products go through {@link Sgemm}; row-wise ops run in parallel over rows
 * on {@link CpuParallel} ({@code rlsr.threads}); attention runs in parallel over (batch, head) forward and
 * (batch, kv-head) backward, so that the GQA heads sharing a key/value head write their dk/dv without races.
 * Tensors may be views (an element offset into a larger array): every op addresses its arrays through the offsets.
 * BF16 and I32 tensors are stored ({@code short[]} bits, {@code int[]}) but the ops compute in fp32 only.
 *
 * <p>Attention keeps no probabilities: the forward saves the log-sum-exp per query row and the backward recomputes
 * {@code p = exp(score - lse)} (flash-attention style), so memory is O(B*H*T), not O(B*H*T^2).
 */
public final class CpuBackend implements Backend {

    /** A shared instance; the backend itself is stateless. */
    public static final CpuBackend INSTANCE = new CpuBackend();

    private static final int ROW_GRAIN = 16;

    private final ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[256]);

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
        float[] s = a(src), d = a(dst);
        int so = o(src), dOff = o(dst);
        int[] rows = ints(rowsT);
        int ro = o(rowsT), nr = n(rowsT);
        int w = div(n(dst), nr, "gatherRows dst");
        int r = div(n(src), w, "gatherRows src");
        for (int i = 0; i < nr; i++) {
            int row = rows[ro + i];
            if (row < 0 || row >= r) {
                throw new IllegalArgumentException("gatherRows: row " + row + " outside [0, " + r + ")");
            }
            System.arraycopy(s, so + row * w, d, dOff + i * w, w);
        }
    }

    // ------------------------------------------------------------------ elementwise

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        float[] x = a(a), y = a(b), z = a(out);
        int xo = o(a), yo = o(b), zo = o(out), n = n(a);
        same(n, n(b), "add");
        same(n, n(out), "add out");
        CpuParallel.forRange(n, 1 << 14, (lo, hi) -> {
            int i = lo;
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector.fromArray(S, x, xo + i).add(FloatVector.fromArray(S, y, yo + i)).intoArray(z, zo + i);
            }
            for (; i < hi; i++) {
                z[zo + i] = x[xo + i] + y[yo + i];
            }
        });
    }

    @Override
    public void scale(Tensor t, float s) {
        float[] x = a(t);
        int xo = o(t);
        CpuParallel.forRange(n(t), 1 << 14, (lo, hi) -> CpuVec.scaleInto(s, x, xo + lo, x, xo + lo, hi - lo));
    }

    @Override
    public void clipScale(Tensor grad, float maxNorm, Tensor sumSq, Tensor scale) {
        float[] x = a(grad);
        int xo = o(grad), n = n(grad);
        double ss = 0;
        // float lanes per block of 4096 keep the rounding error tiny; blocks are summed in double
        for (int i = 0; i < n; i += 4096) {
            ss += CpuVec.sumSquares(x, xo + i, Math.min(4096, n - i));
        }
        float total = (float) Math.sqrt(ss);
        a(sumSq)[o(sumSq)] = (float) ss;
        double coef = maxNorm > 0 ? maxNorm / (total + 1e-6) : 1.0;
        // the NaN of a non-finite norm passes through, so the update is visibly non-finite rather than silently 1
        a(scale)[o(scale)] = Double.isNaN(coef) ? Float.NaN : coef < 1.0 ? (float) coef : 1f;
    }

    @Override
    public void argmaxRows(Tensor x, Tensor out) {
        int w = (int) x.dim(-1);
        float[] d = a(x);
        int xo = o(x);
        int rows = div(n(x), w, "argmaxRows");
        same(n(out), rows, "argmaxRows out");
        int[] res = ints(out);
        int ro = o(out);
        for (int r = 0; r < rows; r++) {
            int best = 0;
            float bv = d[xo + r * w];
            for (int j = 1; j < w; j++) {
                float v = d[xo + r * w + j];
                if (v > bv || (Float.isNaN(v) && !Float.isNaN(bv))) {
                    bv = v;
                    best = j;
                }
            }
            res[ro + r] = best;
        }
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
            CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
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
        float[] g = a(dy);
        int go = o(dy);
        Sgemm.sgemm(true, false, out, in, rows, 1f, g, go, out, a(x), o(x), in, 1f, a(dw), o(dw), in);
        if (dBias != null) {
            float[] db = a(dBias);
            int dbo = o(dBias);
            same(n(dBias), out, "linearBackwardWeight bias");
            int chunk = Math.max(L, ((out / CpuParallel.THREADS) + L - 1) / L * L);
            CpuParallel.forRange((out + chunk - 1) / chunk, 1, (lo, hi) -> {
                for (int c = lo; c < hi; c++) {
                    int j0 = c * chunk, len = Math.min(out, j0 + chunk) - j0;
                    for (int r = 0; r < rows; r++) {
                        CpuVec.axpy(1f, g, go + r * out + j0, db, dbo + j0, len);
                    }
                }
            });
        }
    }

    // ------------------------------------------------------------------ embedding

    @Override
    public void embedding(Tensor idsT, Tensor table, Tensor out) {
        float[] t = a(table), od = a(out);
        int to = o(table), oo = o(out);
        int[] ids = ints(idsT);
        int io = o(idsT), ni = n(idsT);
        int c = div(n(out), ni, "embedding out");
        int v = div(n(table), c, "embedding table");
        for (int i = 0; i < ni; i++) {
            int id = ids[io + i];
            if (id < 0 || id >= v) {
                throw new IllegalArgumentException("token id " + id + " at position " + i
                        + " is outside the vocabulary [0, " + v + ")");
            }
        }
        CpuParallel.forRange(ni, ROW_GRAIN, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                System.arraycopy(t, to + ids[io + i] * c, od, oo + i * c, c);
            }
        });
    }

    @Override
    public void embeddingBackward(Tensor idsT, Tensor dOut, Tensor dTable) {
        float[] g = a(dOut), t = a(dTable);
        int go = o(dOut), to = o(dTable);
        int[] ids = ints(idsT);
        int io = o(idsT), ni = n(idsT);
        int c = div(n(dOut), ni, "embeddingBackward dOut");
        div(n(dTable), c, "embeddingBackward dTable");
        // split the columns, not the rows: repeated ids then never race
        int chunk = Math.max(L, ((c / CpuParallel.THREADS) + L - 1) / L * L);
        int chunks = (c + chunk - 1) / chunk;
        CpuParallel.forEach(chunks, k -> {
            int j0 = k * chunk, len = Math.min(c, j0 + chunk) - j0;
            for (int i = 0; i < ni; i++) {
                CpuVec.axpy(1f, g, go + i * c + j0, t, to + ids[io + i] * c + j0, len);
            }
        });
    }

    // ------------------------------------------------------------------ rmsnorm

    @Override
    public void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd) {
        float[] xd = a(x), wd = a(w), od = a(out), rd = a(rstd);
        int xo = o(x), wo = o(w), oo = o(out), ro = o(rstd);
        int dim = n(w);
        int rows = div(n(x), dim, "rmsNorm input " + x + " vs weight " + w);
        same(n(out), n(x), "rmsNorm out");
        same(n(rstd), rows, "rmsNorm rstd");
        CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int xr = xo + r * dim, or = oo + r * dim;
                float var = CpuVec.sumSquares(xd, xr, dim) / dim;
                float rs = (float) (1.0 / Math.sqrt(var + eps));
                rd[ro + r] = rs;
                int i = 0;
                FloatVector vr = FloatVector.broadcast(S, rs);
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector.fromArray(S, xd, xr + i).mul(vr).mul(FloatVector.fromArray(S, wd, wo + i))
                            .intoArray(od, or + i);
                }
                for (; i < dim; i++) {
                    od[or + i] = wd[wo + i] * (xd[xr + i] * rs);
                }
            }
        });
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw,
                                boolean accumulateDx) {
        float[] g = a(dOut), xd = a(x), wd = a(w), rd = a(rstd), dxd = a(dx), dwd = a(dw);
        int go = o(dOut), xo = o(x), wo = o(w), ro = o(rstd), dxo = o(dx), dwo = o(dw);
        int dim = n(w);
        int rows = div(n(x), dim, "rmsNormBackward");
        same(n(dOut), n(x), "rmsNormBackward dOut");
        same(n(dx), n(x), "rmsNormBackward dx");
        same(n(rstd), rows, "rmsNormBackward rstd");
        same(n(dw), dim, "rmsNormBackward dw");
        int chunks = Math.min(rows, CpuParallel.THREADS * 4);
        int per = (rows + chunks - 1) / chunks;
        int count = (rows + per - 1) / per;
        float[][] partial = new float[count][];
        CpuParallel.forEach(count, c -> {
            float[] pw = new float[dim];
            partial[c] = pw;
            for (int r = c * per, end = Math.min(rows, (c + 1) * per); r < end; r++) {
                int gr = go + r * dim, xr = xo + r * dim, dr = dxo + r * dim;
                float rs = rd[ro + r];
                // sum_i w_i * g_i * x_i, needed before dx overwrites g when they alias
                FloatVector vrs = FloatVector.broadcast(S, rs);
                FloatVector acc = FloatVector.zero(S);
                int i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector gx = FloatVector.fromArray(S, g, gr + i).mul(FloatVector.fromArray(S, xd, xr + i));
                    acc = gx.fma(FloatVector.fromArray(S, wd, wo + i), acc);
                    gx.fma(vrs, FloatVector.fromArray(S, pw, i)).intoArray(pw, i);
                }
                float sum = acc.reduceLanes(VectorOperators.ADD);
                for (; i < dim; i++) {
                    float gx = g[gr + i] * xd[xr + i];
                    sum += wd[wo + i] * gx;
                    pw[i] += gx * rs;
                }
                float k = sum * rs * rs * rs / dim;
                FloatVector vk = FloatVector.broadcast(S, k);
                i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector val = FloatVector.fromArray(S, g, gr + i).mul(FloatVector.fromArray(S, wd, wo + i))
                            .mul(vrs).sub(FloatVector.fromArray(S, xd, xr + i).mul(vk));
                    if (accumulateDx) {
                        val = val.add(FloatVector.fromArray(S, dxd, dr + i));
                    }
                    val.intoArray(dxd, dr + i);
                }
                for (; i < dim; i++) {
                    float val = rs * wd[wo + i] * g[gr + i] - k * xd[xr + i];
                    dxd[dr + i] = accumulateDx ? dxd[dr + i] + val : val;
                }
            }
        });
        for (float[] pw : partial) {
            for (int i = 0; i < dim; i++) {
                dwd[dwo + i] += pw[i];
            }
        }
    }

    // ------------------------------------------------------------------ rope

    @Override
    public void ropeTable(Tensor positionsT, Tensor invFreq, Tensor table) {
        float[] inv = a(invFreq), t = a(table);
        int io = o(invFreq), to = o(table);
        int[] positions = ints(positionsT);
        int po = o(positionsT), np = n(positionsT);
        int half = n(invFreq), dim = 2 * half;
        same(n(table), np * dim, "ropeTable table size vs positions*headDim");
        CpuParallel.forRange(np, 64, (lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                float pos = positions[po + n];
                for (int i = 0; i < half; i++) {
                    float f = pos * inv[io + i]; // fp32 product, as HF's inv_freq @ position_ids
                    t[to + n * dim + i] = (float) Math.cos(f);
                    t[to + n * dim + half + i] = (float) Math.sin(f);
                }
            }
        });
    }

    @Override
    public void rope(Tensor x, Tensor table, int heads, boolean inverse) {
        float[] xd = a(x), t = a(table);
        int xo = o(x), to = o(table);
        int dim = (int) table.dim(-1);
        int n = div(n(table), dim, "rope table");
        same(n(x), n * heads * dim, "rope x size vs table rows*heads*headDim");
        int half = dim / 2;
        float sgn = inverse ? -1f : 1f;
        CpuParallel.forRange(n, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int tb = to + r * dim;
                for (int h = 0; h < heads; h++) {
                    int base = xo + (r * heads + h) * dim;
                    int i = 0;
                    for (int ub = S.loopBound(half); i < ub; i += L) {
                        FloatVector c = FloatVector.fromArray(S, t, tb + i);
                        FloatVector sn = FloatVector.fromArray(S, t, tb + half + i);
                        if (inverse) {
                            sn = sn.neg();
                        }
                        FloatVector x1 = FloatVector.fromArray(S, xd, base + i);
                        FloatVector x2 = FloatVector.fromArray(S, xd, base + half + i);
                        x1.mul(c).sub(x2.mul(sn)).intoArray(xd, base + i);
                        x2.mul(c).add(x1.mul(sn)).intoArray(xd, base + half + i);
                    }
                    for (; i < half; i++) {
                        float c = t[tb + i], sn = sgn * t[tb + half + i];
                        float x1 = xd[base + i], x2 = xd[base + half + i];
                        xd[base + i] = x1 * c - x2 * sn;
                        xd[base + half + i] = x2 * c + x1 * sn;
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------ attention

    private float[] scratch(int n) {
        float[] s = scratch.get();
        if (s.length < n) {
            s = new float[Math.max(n, s.length * 2)];
            scratch.set(s);
        }
        return s;
    }

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

    /** Query rows per attention block: scores for a block live in a (QB, kLen) scratch, never (T, T). */
    private static final int QB = 64;

    /**
     * Scaled, masked scores of one query block: {@code p[r, j] = scale * q_r·k_j} for visible keys, -inf for keys
     * that are padding or in the causal future of row r.
     */
    private static void blockScores(float[] qd, int qOff, int qw, float[] kd, int kOff, int kw, int nq, int kEnd,
                                    int D, float scale, float[] p, int firstPos, int[] keyMask, int maskOff) {
        Sgemm.sgemm(false, true, nq, kEnd, D, scale, qd, qOff, qw, kd, kOff, kw, 0f, p, 0, kEnd);
        for (int r = 0; r < nq; r++) {
            int last = firstPos + r, ro = r * kEnd;
            if (last + 1 < kEnd) {
                Arrays.fill(p, ro + last + 1, ro + kEnd, Float.NEGATIVE_INFINITY);
            }
            if (keyMask != null) {
                for (int j = 0, e = Math.min(last + 1, kEnd); j < e; j++) {
                    if (keyMask[maskOff + j] == 0) {
                        p[ro + j] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
        }
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor keyMaskT) {
        checkAttention(s, q, k, v, out, lse, keyMaskT);
        float[] qd = a(q), kd = a(k), vd = a(v), od = a(out), ld = a(lse);
        int qo0 = o(q), ko0 = o(k), vo0 = o(v), oo0 = o(out), lo0 = o(lse);
        int[] keyMask = keyMaskT == null ? null : ints(keyMaskT);
        int mo0 = keyMaskT == null ? 0 : o(keyMaskT);
        int B = s.batch(), H = s.heads(), D = s.headDim(), Tq = s.qLen(), ks = s.kStride();
        int qw = H * D, kw = s.kvHeads() * D, rep = H / s.kvHeads();
        float scale = s.scale();
        int blocks = (Tq + QB - 1) / QB;
        // one task per (batch, head, query block): causal blocks differ in cost, the shared counter balances them
        CpuParallel.forEach(B * H * blocks, task -> {
            int bh = task / blocks, blk = task % blocks;
            int b = bh / H, h = bh % H, kh = h / rep;
            int i0 = blk * QB, nq = Math.min(Tq, i0 + QB) - i0;
            int kEnd = Math.min(s.kLen(), s.qOffset() + i0 + nq);
            float[] p = scratch(nq * kEnd);
            int qOff = (b * Tq + i0) * qw + h * D, kOff = b * ks * kw + kh * D;
            blockScores(qd, qo0 + qOff, qw, kd, ko0 + kOff, kw, nq, kEnd, D, scale, p, s.qOffset() + i0, keyMask,
                    mo0 + b * ks);
            for (int r = 0; r < nq; r++) {
                int ro = r * kEnd;
                float mx = CpuVec.max(p, ro, kEnd);
                int li = lo0 + (b * H + h) * Tq + i0 + r;
                if (mx == Float.NEGATIVE_INFINITY) {
                    // a padding query with no visible key: zero output, no gradient (lse = +inf)
                    Arrays.fill(p, ro, ro + kEnd, 0f);
                    ld[li] = Float.POSITIVE_INFINITY;
                    continue;
                }
                double sum = CpuVec.sumExp(p, ro, kEnd, mx);
                CpuVec.expScaled(p, ro, p, ro, kEnd, mx, (float) (1.0 / sum));
                ld[li] = mx + (float) Math.log(sum);
            }
            Sgemm.sgemm(false, false, nq, D, kEnd, 1f, p, 0, kEnd, vd, vo0 + kOff, kw, 0f, od, oo0 + qOff, qw);
        });
    }

    @Override
    public void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                  Tensor dk, Tensor dv, AttentionShape s, Tensor keyMaskT) {
        checkAttention(s, q, k, v, out, lse, keyMaskT);
        same(n(dOut), n(out), "attentionBackward dOut");
        same(n(dq), n(q), "attentionBackward dq");
        same(n(dk), n(k), "attentionBackward dk");
        same(n(dv), n(v), "attentionBackward dv");
        float[] qd = a(q), kd = a(k), vd = a(v), od = a(out), ld = a(lse), go = a(dOut);
        float[] gq = a(dq), gk = a(dk), gv = a(dv);
        int qo0 = o(q), ko0 = o(k), vo0 = o(v), oo0 = o(out), lo0 = o(lse), go0 = o(dOut);
        int gqo = o(dq), gko = o(dk), gvo = o(dv);
        int[] keyMask = keyMaskT == null ? null : ints(keyMaskT);
        int mo0 = keyMaskT == null ? 0 : o(keyMaskT);
        int B = s.batch(), H = s.heads(), KH = s.kvHeads(), D = s.headDim(), Tq = s.qLen(), ks = s.kStride();
        int qw = H * D, kw = KH * D, rep = H / KH;
        float scale = s.scale();
        // one task per (batch, kv head): the query heads sharing it accumulate into its dk/dv without races
        CpuParallel.forEach(B * KH, bk -> {
            int b = bk / KH, kh = bk % KH;
            int kOff = b * ks * kw + kh * D;
            for (int j = 0; j < ks; j++) {
                Arrays.fill(gk, gko + kOff + j * kw, gko + kOff + j * kw + D, 0f);
                Arrays.fill(gv, gvo + kOff + j * kw, gvo + kOff + j * kw + D, 0f);
            }
            for (int h = kh * rep; h < (kh + 1) * rep; h++) {
                for (int i0 = 0; i0 < Tq; i0 += QB) {
                    int nq = Math.min(Tq, i0 + QB) - i0;
                    int kEnd = Math.min(s.kLen(), s.qOffset() + i0 + nq);
                    float[] buf = scratch(2 * nq * kEnd);
                    int dpo = nq * kEnd;
                    int qOff = (b * Tq + i0) * qw + h * D;
                    // recompute P = exp(S - lse) instead of having stored it
                    blockScores(qd, qo0 + qOff, qw, kd, ko0 + kOff, kw, nq, kEnd, D, scale, buf, s.qOffset() + i0,
                            keyMask, mo0 + b * ks);
                    // dP = dO · Vᵀ
                    Sgemm.sgemm(false, true, nq, kEnd, D, 1f, go, go0 + qOff, qw, vd, vo0 + kOff, kw, 0f, buf, dpo,
                            kEnd);
                    for (int r = 0; r < nq; r++) {
                        int ro = r * kEnd, qo = qOff + r * qw;
                        float lsei = ld[lo0 + (b * H + h) * Tq + i0 + r];
                        if (lsei == Float.POSITIVE_INFINITY) {
                            Arrays.fill(buf, ro, ro + kEnd, 0f);
                            Arrays.fill(buf, dpo + ro, dpo + ro + kEnd, 0f);
                            continue;
                        }
                        CpuVec.expScaled(buf, ro, buf, ro, kEnd, lsei, 1f);
                        float di = CpuVec.dot(go, go0 + qo, od, oo0 + qo, D);
                        // dS = P * (dP - rowsum(dO*O)) * scale, written over dP
                        softmaxGrad(buf, ro, buf, dpo + ro, kEnd, di, scale);
                    }
                    // dQ = dS · K ; dK += dSᵀ · Q ; dV += Pᵀ · dO
                    Sgemm.sgemm(false, false, nq, D, kEnd, 1f, buf, dpo, kEnd, kd, ko0 + kOff, kw, 0f, gq, gqo + qOff,
                            qw);
                    Sgemm.sgemm(true, false, kEnd, D, nq, 1f, buf, dpo, kEnd, qd, qo0 + qOff, qw, 1f, gk, gko + kOff,
                            kw);
                    Sgemm.sgemm(true, false, kEnd, D, nq, 1f, buf, 0, kEnd, go, go0 + qOff, qw, 1f, gv, gvo + kOff,
                            kw);
                }
            }
        });
    }

    /** ds = p * (dp - di) * scale, in place over dp. */
    private static void softmaxGrad(float[] p, int po, float[] dp, int dpo, int n, float di, float scale) {
        int i = 0;
        FloatVector vd = FloatVector.broadcast(S, di), vs = FloatVector.broadcast(S, scale);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            FloatVector.fromArray(S, dp, dpo + i).sub(vd).mul(FloatVector.fromArray(S, p, po + i)).mul(vs)
                    .intoArray(dp, dpo + i);
        }
        for (; i < n; i++) {
            dp[dpo + i] = p[po + i] * (dp[dpo + i] - di) * scale;
        }
    }

    // ------------------------------------------------------------------ swiglu

    @Override
    public void swiglu(Tensor g, Tensor u, Tensor h) {
        float[] gd = a(g), ud = a(u), hd = a(h);
        int gof = o(g), uof = o(u), hof = o(h), n = n(g);
        same(n, n(u), "swiglu");
        same(n, n(h), "swiglu out");
        CpuParallel.forRange(n, 1 << 13, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector x = FloatVector.fromArray(S, gd, gof + i);
                FloatVector sig = one.div(one.add(x.neg().lanewise(VectorOperators.EXP)));
                x.mul(sig).mul(FloatVector.fromArray(S, ud, uof + i)).intoArray(hd, hof + i);
            }
            for (; i < hi; i++) {
                float x = gd[gof + i];
                float sig = 1f / (1f + (float) Math.exp(-x));
                hd[hof + i] = x * sig * ud[uof + i];
            }
        });
    }

    @Override
    public void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du) {
        float[] gd = a(g), ud = a(u), hh = a(dh), dgd = a(dg), dud = a(du);
        int gof = o(g), uof = o(u), hof = o(dh), dgo = o(dg), duo = o(du), n = n(g);
        same(n, n(u), "swigluBackward");
        same(n, n(dh), "swigluBackward dh");
        same(n, n(dg), "swigluBackward dg");
        same(n, n(du), "swigluBackward du");
        CpuParallel.forRange(n, 1 << 13, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector x = FloatVector.fromArray(S, gd, gof + i);
                FloatVector up = FloatVector.fromArray(S, ud, uof + i);
                FloatVector d = FloatVector.fromArray(S, hh, hof + i);
                FloatVector sig = one.div(one.add(x.neg().lanewise(VectorOperators.EXP)));
                FloatVector silu = x.mul(sig);
                d.mul(silu).intoArray(dud, duo + i);
                // d silu/dx = sig * (1 + x * (1 - sig))
                d.mul(up).mul(sig.mul(one.add(x.mul(one.sub(sig))))).intoArray(dgd, dgo + i);
            }
            for (; i < hi; i++) {
                float x = gd[gof + i];
                float sig = 1f / (1f + (float) Math.exp(-x));
                dud[duo + i] = hh[hof + i] * x * sig;
                dgd[dgo + i] = hh[hof + i] * ud[uof + i] * sig * (1f + x * (1f - sig));
            }
        });
    }

    // ------------------------------------------------------------------ losses

    private static int vocab(Tensor logits, int rows) {
        return div(n(logits), rows, "logits " + logits + " vs " + rows + " targets");
    }

    @Override
    public void crossEntropy(Tensor logits, Tensor targetsT, float gradScale, Tensor dLogits, Tensor lossSum) {
        float[] x = a(logits), gx = a(dLogits);
        int xo = o(logits), gxo = o(dLogits);
        int[] targets = ints(targetsT);
        int to = o(targetsT), rows = n(targetsT), V = vocab(logits, rows);
        same(n(dLogits), n(logits), "crossEntropy dLogits");
        double[] partial = new double[rows];
        CpuParallel.forRange(rows, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = xo + r * V, goff = gxo + r * V, t = targets[to + r];
                if (t < 0) {
                    Arrays.fill(gx, goff, goff + V, 0f);
                    continue;
                }
                if (t >= V) {
                    throw new IllegalArgumentException("target " + t + " at row " + r + " outside [0, " + V + ")");
                }
                float mx = CpuVec.max(x, off, V);
                float lse = mx + (float) Math.log(CpuVec.sumExp(x, off, V, mx));
                partial[r] = lse - x[off + t];
                CpuVec.expScaled(x, off, gx, goff, V, lse, gradScale);
                gx[goff + t] -= gradScale;
            }
        });
        double sum = 0;
        for (double p : partial) {
            sum += p;
        }
        a(lossSum)[o(lossSum)] += (float) sum;
    }

    @Override
    public void logProbGather(Tensor logits, Tensor targetsT, float temperature, Tensor logp, Tensor lse) {
        checkTemperature(temperature);
        float[] x = a(logits), lp = a(logp), ls = a(lse);
        int xo = o(logits), lpo = o(logp), lso = o(lse);
        int[] targets = ints(targetsT);
        int to = o(targetsT), rows = n(targetsT), V = vocab(logits, rows);
        same(n(logp), rows, "logProbGather logp");
        same(n(lse), rows, "logProbGather lse");
        double invT = 1.0 / temperature;
        CpuParallel.forRange(rows, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = xo + r * V, t = targets[to + r];
                if (t >= V) {
                    throw new IllegalArgumentException("target " + t + " at row " + r + " outside [0, " + V + ")");
                }
                float l;
                if (temperature == 1f) {
                    float mx = CpuVec.max(x, off, V);
                    l = mx + (float) Math.log(CpuVec.sumExp(x, off, V, mx));
                    ls[lso + r] = l;
                    lp[lpo + r] = t < 0 ? 0f : x[off + t] - l;
                } else {
                    // logits / T in double: lse and logp of the tempered distribution
                    float mx = CpuVec.max(x, off, V);
                    double sum = 0;
                    for (int i = 0; i < V; i++) {
                        sum += Math.exp((x[off + i] - (double) mx) * invT);
                    }
                    double lt = mx * invT + Math.log(sum);
                    ls[lso + r] = (float) lt;
                    lp[lpo + r] = t < 0 ? 0f : (float) (x[off + t] * invT - lt);
                }
            }
        });
    }

    @Override
    public void logProbGatherBackward(Tensor logits, Tensor targetsT, Tensor lse, Tensor dLogp, float temperature,
                                      Tensor dLogits) {
        checkTemperature(temperature);
        float[] x = a(logits), ls = a(lse), g = a(dLogp), gx = a(dLogits);
        int xo = o(logits), lso = o(lse), go = o(dLogp), gxo = o(dLogits);
        int[] targets = ints(targetsT);
        int to = o(targetsT), rows = n(targetsT), V = vocab(logits, rows);
        same(n(dLogits), n(logits), "logProbGatherBackward dLogits");
        same(n(dLogp), rows, "logProbGatherBackward dLogp");
        float invT = 1f / temperature;
        CpuParallel.forRange(rows, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = xo + r * V, goff = gxo + r * V, t = targets[to + r];
                float gr = g[go + r];
                if (t < 0 || gr == 0f) {
                    Arrays.fill(gx, goff, goff + V, 0f);
                    continue;
                }
                if (temperature == 1f) {
                    CpuVec.expScaled(x, off, gx, goff, V, ls[lso + r], -gr);
                    gx[goff + t] += gr;
                } else {
                    double l = ls[lso + r];
                    for (int i = 0; i < V; i++) {
                        gx[goff + i] = (float) (-gr * invT * Math.exp(x[off + i] * (double) invT - l));
                    }
                    gx[goff + t] += gr * invT;
                }
            }
        });
    }

    private static void checkTemperature(float temperature) {
        if (!(temperature > 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and > 0, got " + temperature);
        }
    }

    @Override
    public void grpoLoss(GrpoSpec spec, Tensor logp, Tensor oldLogp, Tensor refLogp, Tensor advantages, Tensor mask,
                         Tensor dLogp, Tensor stats) {
        int batch = n(advantages);
        int len = div(n(logp), batch, "grpoLoss logp vs advantages");
        float[] lp = download(logp);
        float[] old = oldLogp == null ? lp : download(oldLogp);
        float[] ref = refLogp == null ? null : download(refLogp);
        dev.rlsr.engine.model.GrpoLoss loss = new dev.rlsr.engine.model.GrpoLoss(spec.clipLow(), spec.clipHigh(),
                spec.beta(), dev.rlsr.engine.model.GrpoLoss.Level.valueOf(spec.aggregation().name()),
                spec.maxCompletionLength());
        int[] m = downloadInts(mask);
        float[] mf = new float[m.length];
        for (int i = 0; i < m.length; i++) {
            mf[i] = m[i];
        }
        dev.rlsr.engine.model.GrpoLoss.Result r = loss.compute(lp, old, ref, download(advantages), mf, batch, len);
        upload(r.dLogp(), dLogp);
        upload(new float[]{(float) r.loss(), (float) r.meanRatio(), (float) r.clipFraction(), (float) r.meanKl()},
                stats);
    }

    // ------------------------------------------------------------------ optimizer

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor computeCopy, long decayEnd,
                      AdamWParams hp, Tensor clipScale) {
        float[] p = a(param), g = a(grad), md = a(m), vd = a(v);
        int po = o(param), go = o(grad), mo = o(m), vo = o(v), n = n(param);
        same(n, n(grad), "adamW grad");
        same(n, n(m), "adamW m");
        same(n, n(v), "adamW v");
        short[] copy = computeCopy == null ? null : c(computeCopy).bf16Array();
        int co = computeCopy == null ? 0 : o(computeCopy);
        if (computeCopy != null) {
            same(n, n(computeCopy), "adamW compute copy");
        }
        float gs = clipScale == null ? 1f : a(clipScale)[o(clipScale)];
        int split = (int) Math.max(0, Math.min(n, decayEnd));
        float b1 = hp.beta1(), b2 = hp.beta2(), eps = hp.eps();
        float stepSize = (float) (hp.lr() / hp.biasCorrection1());
        float bc2Sqrt = (float) Math.sqrt(hp.biasCorrection2());
        float decay = 1f - hp.lr() * hp.weightDecay();
        CpuParallel.forRange(n, 1 << 14, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                float gi = clipScale == null ? g[go + i] : g[go + i] * gs;
                float pi = i < split ? p[po + i] * decay : p[po + i];
                float mi = md[mo + i] + (gi - md[mo + i]) * (1f - b1);
                float vi = vd[vo + i] * b2 + (1f - b2) * gi * gi;
                md[mo + i] = mi;
                vd[vo + i] = vi;
                float np = pi - stepSize * (mi / ((float) Math.sqrt(vi) / bc2Sqrt + eps));
                p[po + i] = np;
                if (copy != null) {
                    copy[co + i] = BF16.fromFloat(np);
                }
            }
        });
    }

    // ------------------------------------------------------------------ encoder (BERT) ops

    @Override
    public void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
        float[] xd = a(x), wd = a(w), bd = a(b), od = a(out);
        int xo = o(x), wo = o(w), bo = o(b), oo = o(out);
        int dim = n(w);
        same(n(b), dim, "layerNorm bias vs weight");
        int rows = div(n(x), dim, "layerNorm input " + x + " vs weight " + w);
        same(n(out), n(x), "layerNorm out");
        CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int xr = xo + r * dim, or = oo + r * dim;
                float mean = sum(xd, xr, dim) / dim;
                // two passes (mean, then squared deviations) as torch: no cancellation from E[x^2] - E[x]^2
                FloatVector vm = FloatVector.broadcast(S, mean);
                FloatVector acc = FloatVector.zero(S);
                int i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector d = FloatVector.fromArray(S, xd, xr + i).sub(vm);
                    acc = d.fma(d, acc);
                }
                float ss = acc.reduceLanes(VectorOperators.ADD);
                for (; i < dim; i++) {
                    float d = xd[xr + i] - mean;
                    ss += d * d;
                }
                float rs = (float) (1.0 / Math.sqrt(ss / dim + eps));
                FloatVector vr = FloatVector.broadcast(S, rs);
                i = 0;
                for (int ub = S.loopBound(dim); i < ub; i += L) {
                    FloatVector.fromArray(S, xd, xr + i).sub(vm).mul(vr).fma(FloatVector.fromArray(S, wd, wo + i),
                            FloatVector.fromArray(S, bd, bo + i)).intoArray(od, or + i);
                }
                for (; i < dim; i++) {
                    od[or + i] = (xd[xr + i] - mean) * rs * wd[wo + i] + bd[bo + i];
                }
            }
        });
    }

    private static float sum(float[] x, int off, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            acc = acc.add(FloatVector.fromArray(S, x, off + i));
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += x[off + i];
        }
        return s;
    }

    // erfc(z), z >= 0, by the Chebyshev fit of Numerical Recipes (erfcc): fractional error < 1.2e-7 for every z,
    // which keeps GELU within fp32 rounding of torch's erf; it vectorises (one exp), unlike a branchy erf.
    private static final float[] ERFC_P = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
            0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
    private static final float INV_SQRT2 = (float) (1.0 / Math.sqrt(2.0));

    private static float erfc(float z) {
        float t = 1f / (1f + 0.5f * z);
        float p = ERFC_P[9];
        for (int j = 8; j >= 0; j--) {
            p = p * t + ERFC_P[j];
        }
        return t * (float) Math.exp(-z * z + p);
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        float[] xd = a(x), od = a(out);
        int xo = o(x), oo = o(out), n = n(x);
        same(n, n(out), "gelu out");
        CpuParallel.forRange(n, 1 << 13, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f), half = FloatVector.broadcast(S, 0.5f);
            FloatVector rs2 = FloatVector.broadcast(S, INV_SQRT2);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector v = FloatVector.fromArray(S, xd, xo + i);
                FloatVector z = v.abs().mul(rs2);
                FloatVector t = one.div(z.fma(half, one));
                FloatVector p = FloatVector.broadcast(S, ERFC_P[9]);
                for (int j = 8; j >= 0; j--) {
                    p = p.fma(t, FloatVector.broadcast(S, ERFC_P[j]));
                }
                // Phi(x) = 1 - erfc(z)/2 for x >= 0 and erfc(z)/2 below: no cancellation on the negative side
                FloatVector he = t.mul(z.mul(z).neg().add(p).lanewise(VectorOperators.EXP)).mul(half);
                FloatVector phi = one.sub(he).blend(he, v.compare(VectorOperators.LT, 0f));
                v.mul(phi).intoArray(od, oo + i);
            }
            for (; i < hi; i++) {
                float v = xd[xo + i];
                float he = 0.5f * erfc(Math.abs(v) * INV_SQRT2);
                od[oo + i] = v * (v < 0f ? he : 1f - he);
            }
        });
    }

    @Override
    public void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape s, Tensor keyMaskT) {
        if (s.qOffset() != 0 || s.qLen() != s.kLen()) {
            throw new IllegalArgumentException("bidirectional attention is self-attention over one sequence: qOffset "
                    + s.qOffset() + " must be 0 and qLen " + s.qLen() + " must equal kLen " + s.kLen());
        }
        checkAttention(s, q, k, v, out, null, keyMaskT);
        float[] qd = a(q), kd = a(k), vd = a(v), od = a(out);
        int qo0 = o(q), ko0 = o(k), vo0 = o(v), oo0 = o(out);
        int[] keyMask = keyMaskT == null ? null : ints(keyMaskT);
        int mo0 = keyMaskT == null ? 0 : o(keyMaskT);
        int B = s.batch(), H = s.heads(), D = s.headDim(), T = s.qLen(), ks = s.kStride();
        int qw = H * D, kw = s.kvHeads() * D, rep = H / s.kvHeads();
        float scale = s.scale();
        // keys past a row's last real token are padding: scoring them would only add exact zeros, so skip them
        int[] kValid = new int[B];
        for (int b = 0; b < B; b++) {
            int e = s.kLen();
            if (keyMask != null) {
                while (e > 0 && keyMask[mo0 + b * ks + e - 1] == 0) {
                    e--;
                }
            }
            kValid[b] = e;
        }
        int blocks = (T + QB - 1) / QB;
        CpuParallel.forEach(B * H * blocks, task -> {
            int bh = task / blocks, blk = task % blocks;
            int b = bh / H, h = bh % H, kh = h / rep;
            int i0 = blk * QB, nq = Math.min(T, i0 + QB) - i0;
            int kEnd = kValid[b];
            int qOff = (b * T + i0) * qw + h * D, kOff = b * ks * kw + kh * D;
            if (kEnd == 0) {
                for (int r = 0; r < nq; r++) {
                    Arrays.fill(od, oo0 + qOff + r * qw, oo0 + qOff + r * qw + D, 0f);
                }
                return;
            }
            float[] p = scratch(nq * kEnd);
            Sgemm.sgemm(false, true, nq, kEnd, D, scale, qd, qo0 + qOff, qw, kd, ko0 + kOff, kw, 0f, p, 0, kEnd);
            for (int r = 0; r < nq; r++) {
                int ro = r * kEnd;
                if (keyMask != null) {
                    for (int j = 0; j < kEnd; j++) {
                        if (keyMask[mo0 + b * ks + j] == 0) {
                            p[ro + j] = Float.NEGATIVE_INFINITY;
                        }
                    }
                }
                float mx = CpuVec.max(p, ro, kEnd);
                if (mx == Float.NEGATIVE_INFINITY) {
                    Arrays.fill(p, ro, ro + kEnd, 0f);
                    continue;
                }
                double sumExp = CpuVec.sumExp(p, ro, kEnd, mx);
                CpuVec.expScaled(p, ro, p, ro, kEnd, mx, (float) (1.0 / sumExp));
            }
            Sgemm.sgemm(false, false, nq, D, kEnd, 1f, p, 0, kEnd, vd, vo0 + kOff, kw, 0f, od, oo0 + qOff, qw);
        });
    }

    @Override
    public void meanPool(Tensor x, Tensor maskT, Tensor pooled) {
        float[] xd = a(x), pd = a(pooled);
        int xo = o(x), po = o(pooled);
        int c = (int) pooled.dim(-1);
        int rowsB = div(n(pooled), c, "meanPool pooled");
        int t = div(div(n(x), c, "meanPool input " + x + " vs pooled " + pooled), rowsB, "meanPool batch");
        int[] mask = maskT == null ? null : ints(maskT);
        int mo = maskT == null ? 0 : o(maskT);
        if (maskT != null) {
            same(n(maskT), rowsB * t, "meanPool mask length vs B*T");
        }
        CpuParallel.forEach(rowsB, b -> {
            Arrays.fill(pd, po + b * c, po + (b + 1) * c, 0f);
            int count = 0;
            for (int j = 0; j < t; j++) {
                if (mask == null || mask[mo + b * t + j] != 0) {
                    count++;
                    CpuVec.axpy(1f, xd, xo + (b * t + j) * c, pd, po + b * c, c);
                }
            }
            CpuVec.scaleInto((float) (1.0 / Math.max(count, 1e-9)), pd, po + b * c, pd, po + b * c, c);
        });
    }

    @Override
    public void l2NormalizeRows(Tensor x, float eps) {
        float[] xd = a(x);
        int xo = o(x);
        int w = (int) x.dim(-1);
        int rows = div(n(x), w, "l2NormalizeRows");
        CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                float norm = (float) Math.sqrt(CpuVec.sumSquares(xd, xo + r * w, w));
                CpuVec.scaleInto(1f / Math.max(norm, eps), xd, xo + r * w, xd, xo + r * w, w);
            }
        });
    }
}
