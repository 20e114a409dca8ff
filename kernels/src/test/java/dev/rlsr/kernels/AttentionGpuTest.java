package dev.rlsr.kernels;

import static dev.rlsr.kernels.GpuSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.rlsr.bindings.CudaDriver;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * attention.cu vs {@link AttentionReference}: causal forward, decode, backward and the bidirectional forward over odd
 * sequence lengths (1, 3, 17, 65, 130: partial 64-row and 32-key tiles), GQA ratios 1/2/3/7, head dims 16/64/80/96/128
 * (each padded to its kernel's 32/64/96/128), left padding with one batch entry fully padded (no visible key: zero
 * output, lse +inf, zero gradients), a cache with kStride > kLen whose rows past kLen hold NaN (they must never be
 * read), decode with qOffset > 0 over several key splits, both dtypes, every output NaN-poisoned before the launch,
 * and the backward run twice to check it is bitwise deterministic.
 *
 * <p>bf16 runs both kernel families: the tensor-core kernels (the default) and the fp32-FMA ones.
 *
 * <p>Tolerances, |gpu - ref| <= atol + rtol |ref|, inputs ~N(0,1): both sides accumulate in fp32 in different orders
 * (the GPU's online softmax rescales running sums per key tile, the reference takes the row max first), which
 * leaves ~1e-6 on outputs of magnitude ~1 (measured on the emulator: out 1.4e-6, lse 1.9e-6, gradients 1e-5 at
 * most; a GPU's ex2.approx adds ~2^-22 relative per exponential): out, lse F32 atol 2e-6 rtol 2e-6; gradients sum
 * over up to 7 heads x 130 queries: atol 1e-5 rtol 1e-5. bf16 outputs are rounded
 * from fp32 values that differ by that much, so the two sides may land one bf16 ulp apart (2^-8..2^-7 relative):
 * rtol 2^-7 on top of the fp32 atol. lse is F32 in both dtypes. The tensor-core kernels also round P (for P·V and
 * Pᵀ·dO) and dS (for dS·K and dSᵀ·Q) to bf16, an error of at most 2^-9 |p| (|dS|) per term, so each element gets
 * 2^-8 (twice that) times its own bound, computed here in double from the inputs: out_id: sum_j p_ij |v_jd|;
 * dv_jd: sum_i p_ij |dO_id|; dk_jd: sum_i |dS_ij| |q_id|; dq_id: sum_j |dS_ij| |k_jd|.
 */
@Tag("gpu")
class AttentionGpuTest {
    private static final double OUT_ATOL = 2e-6, OUT_RTOL = 2e-6;
    private static final double GRAD_ATOL = 1e-5, GRAD_RTOL = 1e-5;
    private static final double BF16_RTOL = 1.0 / 128;
    /** Twice the bf16 unit roundoff: the factor on the per-element bound of the tensor-core kernels' P/dS rounding. */
    private static final double MMA_BOUND = 1.0 / 256;

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    /** One geometry; padded: batch 1 has no visible key at all, batches >= 2 a random left pad. */
    private record Shape(int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads, int headDim,
            boolean padded) {
        float scale() {
            return (float) (1.0 / Math.sqrt(headDim));
        }

        int qn() {
            return batch * qLen * heads * headDim;
        }

        int kn() {
            return batch * kStride * kvHeads * headDim;
        }

        int ln() {
            return batch * heads * qLen;
        }

        @Override
        public String toString() {
            return "B=" + batch + " qLen=" + qLen + " kLen=" + kLen + " kStride=" + kStride + " qOffset=" + qOffset
                    + " H=" + heads + " Hkv=" + kvHeads + " D=" + headDim + (padded ? " left-padded" : "");
        }
    }

    /** Training shapes: every odd length, every GQA ratio and head dim appears at least once. */
    private static final Shape[] TRAINING = {
        new Shape(2, 1, 1, 1, 0, 2, 2, 16, false),
        new Shape(3, 3, 3, 3, 0, 4, 2, 64, true),
        new Shape(3, 17, 17, 17, 0, 3, 1, 96, true),
        new Shape(2, 65, 65, 65, 0, 7, 1, 128, false),
        new Shape(3, 130, 130, 130, 0, 6, 3, 16, true),
        new Shape(2, 65, 65, 65, 0, 4, 2, 80, true),
    };

    /** Prefill into a cache (kStride > kLen) and decode steps after qOffset cached positions. */
    private static final Shape[] CACHED = {
        new Shape(2, 17, 17, 40, 0, 4, 2, 32, true),
        new Shape(3, 1, 33, 40, 32, 7, 1, 16, true),
        new Shape(2, 3, 300, 320, 297, 14, 2, 64, true),
        new Shape(1, 1, 130, 131, 129, 2, 2, 128, false),
        new Shape(2, 2, 70, 96, 68, 6, 2, 96, false),
    };

    private record Data(long seed, float[] q, float[] k, float[] v, float[] dOut, int[] mask) {
    }

    private static Data data(Shape s, long seed, DType dtype) {
        Random r = new Random(seed);
        float[] q = GpuSupport.randn(r, s.qn(), 1f), k = GpuSupport.randn(r, s.kn(), 1f);
        float[] v = GpuSupport.randn(r, s.kn(), 1f), dOut = GpuSupport.randn(r, s.qn(), 1f);
        int kw = s.kvHeads() * s.headDim();
        for (int b = 0; b < s.batch(); b++) {
            // cache rows past kLen: never written by the model, must never be read
            Arrays.fill(k, (b * s.kStride() + s.kLen()) * kw, (b + 1) * s.kStride() * kw, Float.NaN);
            Arrays.fill(v, (b * s.kStride() + s.kLen()) * kw, (b + 1) * s.kStride() * kw, Float.NaN);
        }
        int[] mask = null;
        if (s.padded()) {
            mask = new int[s.batch() * s.kStride()];
            for (int b = 0; b < s.batch(); b++) {
                int pad = b == 0 ? 0 : b == 1 ? s.kStride() : r.nextInt(s.kLen());
                for (int j = 0; j < s.kStride(); j++) {
                    mask[b * s.kStride() + j] = j >= pad ? 1 : 0;
                }
            }
        }
        if (dtype == DType.BF16) {
            q = BF16.round(q);
            k = BF16.round(k);
            v = BF16.round(v);
            dOut = BF16.round(dOut);
        }
        return new Data(seed, q, k, v, dOut, mask);
    }

    private static long upload(GpuSupport.Mem m, float[] x, DType dtype, int shiftElements) {
        long bytes = (long) x.length * dtype.bytes();
        long p = m.alloc(bytes + 16) + (long) shiftElements * dtype.bytes();
        if (dtype == DType.F32) {
            GpuSupport.put(p, x);
        } else {
            GpuSupport.put(p, BF16.fromFloat(x));
        }
        return p;
    }

    /** An activation output of n elements filled with NaN (0xff bytes are NaN in fp32 and bf16). */
    private static long poisoned(GpuSupport.Mem m, int n, DType dtype) {
        long p = m.alloc((long) n * dtype.bytes());
        CudaDriver.memsetD8(p, (byte) 0xff, (long) n * dtype.bytes());
        return p;
    }

    private static float[] get(long p, int n, DType dtype) {
        return dtype == DType.F32 ? GpuSupport.getF32(p, n) : BF16.toFloat(GpuSupport.getBf16(p, n));
    }

    private static double rtol(DType dtype, double f32) {
        return dtype == DType.F32 ? f32 : BF16_RTOL;
    }

    /** The reference's outputs, rounded to what a tensor of the dtype holds. */
    private record Ref(float[] out, float[] lse) {
    }

    private static Ref referenceForward(Shape s, Data d, DType dtype) {
        float[] out = new float[s.qn()], lse = new float[s.ln()];
        AttentionReference.forward(d.q(), 0, d.k(), 0, d.v(), 0, out, 0, lse, 0, d.mask(), 0, s.batch(), s.qLen(),
                s.kLen(), s.kStride(), s.qOffset(), s.heads(), s.kvHeads(), s.headDim(), s.scale());
        return new Ref(dtype == DType.BF16 ? BF16.round(out) : out, lse);
    }

    private static void forwardAndBackward(Shape s, long seed, DType dtype, boolean mma) {
        Data d = data(s, seed, dtype);
        String tag = dtype + (mma ? " tensor cores " : " ") + s;
        Ref ref = referenceForward(s, d, dtype);
        Bounds bounds = mma ? bounds(s, d, true) : null;
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            // every other case shifts q by one element: no kernel may assume 16-byte aligned rows, and the tensor-core
            // kernels take their element-wise staging path instead of the 16-byte one
            long q = upload(m, d.q(), dtype, (int) (seed & 1)), k = upload(m, d.k(), dtype, 0);
            long v = upload(m, d.v(), dtype, 0);
            long mask = d.mask() == null ? 0 : m.upload(d.mask());
            long out = poisoned(m, s.qn(), dtype), lse = m.poisonedF32(s.ln());
            Attention.forward(q, k, v, out, lse, mask, dtype, s.batch(), s.qLen(), s.kLen(), s.kStride(), s.qOffset(),
                    s.heads(), s.kvHeads(), s.headDim(), s.scale(), true, mma, 0);
            check("forward out " + tag, seed, ref.out(), get(out, s.qn(), dtype), OUT_ATOL, rtol(dtype, OUT_RTOL),
                    bounds == null ? null : bounds.out());
            assertClose("forward lse " + tag, seed, ref.lse(), GpuSupport.getF32(lse, s.ln()), OUT_ATOL, OUT_RTOL);

            // the backward from the reference's out and lse, so it is checked on its own
            float[] gq = new float[s.qn()], gk = new float[s.kn()], gv = new float[s.kn()];
            AttentionReference.backward(d.q(), 0, d.k(), 0, d.v(), 0, ref.out(), 0, ref.lse(), 0, d.dOut(), 0, gq, 0,
                    gk, 0, gv, 0, d.mask(), 0, s.batch(), s.qLen(), s.kLen(), s.kStride(), s.qOffset(), s.heads(),
                    s.kvHeads(), s.headDim(), s.scale());
            if (dtype == DType.BF16) {
                gq = BF16.round(gq);
                gk = BF16.round(gk);
                gv = BF16.round(gv);
            }
            long refOut = upload(m, ref.out(), dtype, 0), refLse = m.upload(ref.lse());
            long dOut = upload(m, d.dOut(), dtype, 0);
            float[][] first = null;
            for (int run = 0; run < 2; run++) {
                long dq = poisoned(m, s.qn(), dtype), dk = poisoned(m, s.kn(), dtype), dv = poisoned(m, s.kn(), dtype);
                Attention.backward(q, k, v, refOut, refLse, dOut, dq, dk, dv, mask, dtype, s.batch(), s.qLen(),
                        s.kLen(), s.kStride(), s.qOffset(), s.heads(), s.kvHeads(), s.headDim(), s.scale(), mma, 0);
                float[][] got = {get(dq, s.qn(), dtype), get(dk, s.kn(), dtype), get(dv, s.kn(), dtype)};
                if (first == null) {
                    double rt = rtol(dtype, GRAD_RTOL);
                    check("backward dq " + tag, seed, gq, got[0], GRAD_ATOL, rt, bounds == null ? null : bounds.dq());
                    check("backward dk " + tag, seed, gk, got[1], GRAD_ATOL, rt, bounds == null ? null : bounds.dk());
                    check("backward dv " + tag, seed, gv, got[2], GRAD_ATOL, rt, bounds == null ? null : bounds.dv());
                    first = got;
                } else {
                    for (int t = 0; t < 3; t++) {
                        assertArrayEquals(first[t], got[t], "backward " + "qkv".charAt(t) + " gradient differs between"
                                + " two runs (" + tag + ")");
                    }
                }
            }
        }
    }

    private static void decode(Shape s, long seed, DType dtype) {
        Data d = data(s, seed, dtype);
        String tag = "decode " + dtype + " " + s;
        Ref ref = referenceForward(s, d, dtype);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long q = upload(m, d.q(), dtype, 0), k = upload(m, d.k(), dtype, 1), v = upload(m, d.v(), dtype, 0);
            long mask = d.mask() == null ? 0 : m.upload(d.mask());
            long out = poisoned(m, s.qn(), dtype), lse = m.poisonedF32(s.ln());
            long wsBytes = Attention.decodeWorkspaceBytes(s.batch(), s.qLen(), s.heads(), s.headDim());
            long ws = m.alloc(wsBytes);
            CudaDriver.memsetD8(ws, (byte) 0xff, wsBytes);
            Attention.decode(q, k, v, out, lse, mask, ws, wsBytes, dtype, s.batch(), s.qLen(), s.kLen(), s.kStride(),
                    s.qOffset(), s.heads(), s.kvHeads(), s.headDim(), s.scale(), 0);
            assertClose("out " + tag, seed, ref.out(), get(out, s.qn(), dtype), OUT_ATOL, rtol(dtype, OUT_RTOL));
            assertClose("lse " + tag, seed, ref.lse(), GpuSupport.getF32(lse, s.ln()), OUT_ATOL, OUT_RTOL);
        }
    }

    private static void bidirectional(Shape s, long seed, DType dtype, boolean mma) {
        Data d = data(s, seed, dtype);
        String tag = "bidirectional " + dtype + (mma ? " tensor cores " : " ") + s;
        float[] ref = new float[s.qn()];
        AttentionReference.bidirectional(d.q(), 0, d.k(), 0, d.v(), 0, ref, 0, d.mask(), 0, s.batch(), s.qLen(),
                s.kLen(), s.kStride(), 0, s.heads(), s.kvHeads(), s.headDim(), s.scale());
        if (dtype == DType.BF16) {
            ref = BF16.round(ref);
        }
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long q = upload(m, d.q(), dtype, 0), k = upload(m, d.k(), dtype, 0);
            long v = upload(m, d.v(), dtype, (int) (seed & 1));
            long mask = d.mask() == null ? 0 : m.upload(d.mask());
            long out = poisoned(m, s.qn(), dtype);
            Attention.forward(q, k, v, out, 0, mask, dtype, s.batch(), s.qLen(), s.kLen(), s.kStride(), 0, s.heads(),
                    s.kvHeads(), s.headDim(), s.scale(), false, mma, 0);
            check(tag, seed, ref, get(out, s.qn(), dtype), OUT_ATOL, rtol(dtype, OUT_RTOL),
                    mma ? bounds(s, d, false).out() : null);
        }
    }

    @Test
    void trainingForwardAndBackwardF32() {
        long seed = 1000;
        for (Shape s : TRAINING) {
            forwardAndBackward(s, seed++, DType.F32, false);
        }
    }

    @Test
    void trainingForwardAndBackwardBf16TensorCores() {
        long seed = 2000;
        for (Shape s : TRAINING) {
            forwardAndBackward(s, seed++, DType.BF16, true);
        }
    }

    @Test
    void trainingForwardAndBackwardBf16Fma() {
        long seed = 2500;
        for (Shape s : TRAINING) {
            forwardAndBackward(s, seed++, DType.BF16, false);
        }
    }

    @Test
    void cachedPrefillAndDecodeSteps() {
        long seed = 3000;
        for (Shape s : CACHED) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                forwardAndBackward(s, seed, dtype, dtype == DType.BF16);
                decode(s, seed, dtype);
                seed++;
            }
        }
        // decode on a training geometry (qOffset 0, many query rows per kv head: several row groups)
        decode(TRAINING[2], seed++, DType.F32);
        decode(TRAINING[1], seed, DType.BF16);
    }

    @Test
    void bidirectionalBothDtypes() {
        long seed = 4000;
        for (Shape s : new Shape[] {TRAINING[0], TRAINING[2], TRAINING[4], TRAINING[5],
                new Shape(3, 65, 65, 70, 0, 4, 4, 32, true)}) {
            bidirectional(s, seed++, DType.F32, false);
            bidirectional(s, seed++, DType.BF16, true);
            bidirectional(s, seed++, DType.BF16, false);
        }
    }

    /**
     * decodeAt, whose cache length L is read from device memory and whose grid is sized from kStride, against decode
     * at the same host values (qLen 1, kLen L, qOffset L - 1) and against the reference: L = 1, 2, 17 (one live key
     * split, the others empty and skipped by the combine, or decode's single split) and kStride (every split); an
     * odd kStride of 131 (three 64-key splits, the last partial), GQA ratios 1, 2, 7, head dims 64 and 128, both
     * dtypes, left padding with one batch entry fully padded, cache rows past L holding NaN, outputs and workspace
     * poisoned. At L = kStride both calls run the same split plan, so they must agree bit for bit; otherwise the
     * splits differ and so does the fp32 summation order: the tolerances of the reference comparison.
     */
    @Test
    void decodeAtDeviceLengthMatchesDecode() {
        long seed = 6000;
        int kStride = 131;
        int[][] heads = {{2, 2, 64}, {4, 2, 128}, {14, 2, 64}, {7, 1, 128}};  // H, Hkv, D
        for (int[] g : heads) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                for (int L : new int[] {1, 2, 17, kStride}) {
                    Shape s = new Shape(3, 1, L, kStride, L - 1, g[0], g[1], g[2], true);
                    decodeAt(s, seed++, dtype);
                }
            }
        }
    }

    private static void decodeAt(Shape s, long seed, DType dtype) {
        Data d = data(s, seed, dtype);
        String tag = "decodeAt " + dtype + " " + s;
        Ref ref = referenceForward(s, d, dtype);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long q = upload(m, d.q(), dtype, 0), k = upload(m, d.k(), dtype, 0), v = upload(m, d.v(), dtype, 0);
            long mask = m.upload(d.mask()), len = m.upload(new int[] {s.kLen()});
            long wsBytes = Attention.decodeWorkspaceBytes(s.batch(), 1, s.heads(), s.headDim());
            long ws = m.alloc(wsBytes);
            CudaDriver.memsetD8(ws, (byte) 0xff, wsBytes);
            long out = poisoned(m, s.qn(), dtype), lse = m.poisonedF32(s.ln());
            Attention.decode(q, k, v, out, lse, mask, ws, wsBytes, dtype, s.batch(), 1, s.kLen(), s.kStride(),
                    s.qOffset(), s.heads(), s.kvHeads(), s.headDim(), s.scale(), 0);
            float[] decOut = get(out, s.qn(), dtype), decLse = GpuSupport.getF32(lse, s.ln());

            CudaDriver.memsetD8(ws, (byte) 0xff, wsBytes);
            long out2 = poisoned(m, s.qn(), dtype), lse2 = m.poisonedF32(s.ln());
            Attention.decodeAt(q, k, v, out2, lse2, mask, ws, wsBytes, dtype, s.batch(), s.kStride(), s.heads(),
                    s.kvHeads(), s.headDim(), s.scale(), len, 0);
            float[] atOut = get(out2, s.qn(), dtype), atLse = GpuSupport.getF32(lse2, s.ln());
            if (s.kLen() == s.kStride()) {
                assertArrayEquals(decOut, atOut, "out " + tag + ": same split plan as decode, same bits");
                assertArrayEquals(decLse, atLse, "lse " + tag + ": same split plan as decode, same bits");
            } else {
                assertClose("out vs decode " + tag, seed, decOut, atOut, OUT_ATOL, rtol(dtype, OUT_RTOL));
                assertClose("lse vs decode " + tag, seed, decLse, atLse, OUT_ATOL, OUT_RTOL);
            }
            assertClose("out " + tag, seed, ref.out(), atOut, OUT_ATOL, rtol(dtype, OUT_RTOL));
            assertClose("lse " + tag, seed, ref.lse(), atLse, OUT_ATOL, OUT_RTOL);
        }
    }

    /**
     * A device length the host did not keep in [1, kStride] reads nothing out of bounds: above kStride it is
     * clamped to kStride (the same bits as L = kStride), at 0 or below no key is visible (zeros, lse +inf).
     */
    @Test
    void decodeAtClampsAnOutOfRangeLength() {
        Shape s = new Shape(2, 1, 131, 131, 130, 14, 2, 64, false);
        long seed = 6100;
        DType dtype = DType.F32;
        Data d = data(s, seed, dtype);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long q = upload(m, d.q(), dtype, 0), k = upload(m, d.k(), dtype, 0), v = upload(m, d.v(), dtype, 0);
            long wsBytes = Attention.decodeWorkspaceBytes(s.batch(), 1, s.heads(), s.headDim());
            long ws = m.alloc(wsBytes);
            float[][] outs = new float[4][];
            float[][] lses = new float[4][];
            int[] lengths = {s.kStride(), s.kStride() + 1, 0, Integer.MIN_VALUE};
            for (int i = 0; i < lengths.length; i++) {
                long len = m.upload(new int[] {lengths[i]});
                long out = poisoned(m, s.qn(), dtype), lse = m.poisonedF32(s.ln());
                CudaDriver.memsetD8(ws, (byte) 0xff, wsBytes);
                Attention.decodeAt(q, k, v, out, lse, 0, ws, wsBytes, dtype, s.batch(), s.kStride(), s.heads(),
                        s.kvHeads(), s.headDim(), s.scale(), len, 0);
                outs[i] = get(out, s.qn(), dtype);
                lses[i] = GpuSupport.getF32(lse, s.ln());
            }
            assertArrayEquals(outs[0], outs[1], "L = kStride + 1 reads as kStride: out");
            assertArrayEquals(lses[0], lses[1], "L = kStride + 1 reads as kStride: lse");
            float[] zeros = new float[s.qn()], inf = new float[s.ln()];
            Arrays.fill(inf, Float.POSITIVE_INFINITY);
            for (int i = 2; i < 4; i++) {
                assertArrayEquals(zeros, outs[i], "L = " + lengths[i] + ": no visible key, zero output");
                assertArrayEquals(inf, lses[i], "L = " + lengths[i] + ": no visible key, lse +inf");
            }
        }
    }

    /** The public entry points route bf16 to the tensor-core kernels unless -Drlsr.attention.tensorCores=false. */
    @Test
    void publicEntryPointsUseTheDefaultKernels() {
        Shape s = TRAINING[2];
        long seed = 5000;
        Data d = data(s, seed, DType.BF16);
        Ref ref = referenceForward(s, d, DType.BF16);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long q = upload(m, d.q(), DType.BF16, 0), k = upload(m, d.k(), DType.BF16, 0);
            long v = upload(m, d.v(), DType.BF16, 0), mask = m.upload(d.mask());
            long out = poisoned(m, s.qn(), DType.BF16), lse = m.poisonedF32(s.ln());
            Attention.forward(q, k, v, out, lse, mask, DType.BF16, s.batch(), s.qLen(), s.kLen(), s.kStride(),
                    s.qOffset(), s.heads(), s.kvHeads(), s.headDim(), s.scale(), 0);
            check("public forward bf16 " + s, seed, ref.out(), get(out, s.qn(), DType.BF16), OUT_ATOL, BF16_RTOL,
                    Attention.TENSOR_CORES ? bounds(s, d, true).out() : null);
            assertClose("public forward lse " + s, seed, ref.lse(), GpuSupport.getF32(lse, s.ln()), OUT_ATOL,
                    OUT_RTOL);
        }
    }

    // ---- element-wise bounds of the tensor-core kernels' bf16 rounding of P and dS

    private record Bounds(float[] out, float[] dq, float[] dk, float[] dv) {
    }

    /** The bounds of the class comment, in double from the inputs (dS from its definition P (dP - sum P dP)). */
    private static Bounds bounds(Shape s, Data d, boolean causal) {
        int B = s.batch(), Tq = s.qLen(), H = s.heads(), D = s.headDim(), ks = s.kStride(), kLen = s.kLen();
        int qw = H * D, kw = s.kvHeads() * D, rep = H / s.kvHeads();
        double scale = s.scale();
        float[] bo = new float[s.qn()], bq = new float[s.qn()], bk = new float[s.kn()], bv = new float[s.kn()];
        double[] p = new double[kLen], dp = new double[kLen];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                int kh = h / rep;
                for (int i = 0; i < Tq; i++) {
                    int qo = (b * Tq + i) * qw + h * D;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < kLen; j++) {
                        boolean visible = (!causal || j <= s.qOffset() + i)
                                && (d.mask() == null || d.mask()[b * ks + j] != 0);
                        p[j] = Double.NEGATIVE_INFINITY;
                        if (visible) {
                            int ko = (b * ks + j) * kw + kh * D;
                            double dot = 0;
                            for (int c = 0; c < D; c++) {
                                dot += (double) d.q()[qo + c] * d.k()[ko + c];
                            }
                            p[j] = scale * dot;
                            max = Math.max(max, p[j]);
                        }
                    }
                    if (max == Double.NEGATIVE_INFINITY) {
                        continue;
                    }
                    double sum = 0, pdp = 0;
                    for (int j = 0; j < kLen; j++) {
                        p[j] = Math.exp(p[j] - max);
                        sum += p[j];
                    }
                    for (int j = 0; j < kLen; j++) {
                        p[j] /= sum;
                        int ko = (b * ks + j) * kw + kh * D;
                        double x = 0;
                        for (int c = 0; c < D; c++) {
                            x += (double) d.dOut()[qo + c] * d.v()[ko + c];
                        }
                        dp[j] = x;
                        pdp += p[j] * x;
                    }
                    for (int j = 0; j < kLen; j++) {
                        if (p[j] == 0) {
                            continue;
                        }
                        int ko = (b * ks + j) * kw + kh * D;
                        double ds = Math.abs(p[j] * (dp[j] - pdp) * scale);
                        for (int c = 0; c < D; c++) {
                            bo[qo + c] += (float) (p[j] * Math.abs(d.v()[ko + c]));
                            bv[ko + c] += (float) (p[j] * Math.abs(d.dOut()[qo + c]));
                            bk[ko + c] += (float) (ds * Math.abs(d.q()[qo + c]));
                            bq[qo + c] += (float) (ds * Math.abs(d.k()[ko + c]));
                        }
                    }
                }
            }
        }
        return new Bounds(bo, bq, bk, bv);
    }

    /**
     * {@code |actual - expected| <= atol + rtol |expected| (+ MMA_BOUND * bound[i] where bound is given)}; NaN never
     * passes, equal values (infinities included) always do; prints the seed and the first mismatches.
     */
    private static void check(String what, long seed, float[] expected, float[] actual, double atol, double rtol,
            float[] bound) {
        if (bound == null) {
            assertClose(what, seed, expected, actual, atol, rtol);
            return;
        }
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[i];
            double tol = atol + rtol * Math.abs(e) + MMA_BOUND * bound[i];
            if (!(a == e || Math.abs(a - e) <= tol)) {
                if (bad++ < 10) {
                    first.append(String.format("%n  [%d] expected %.9g got %.9g (|diff| %.3g, tolerance %.3g)", i, e,
                            a, Math.abs(a - e), tol));
                }
            }
        }
        if (bad > 0) {
            org.junit.jupiter.api.Assertions.fail(what + " (seed " + seed + "): " + bad + " of " + expected.length
                    + " outside the tolerance; first mismatches:" + first);
        }
    }
}
