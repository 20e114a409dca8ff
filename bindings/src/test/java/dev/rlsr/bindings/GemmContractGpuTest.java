package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The cuBLAS / cuBLASLt contract, element by element, against a double loop that reads the matrices exactly as the
 * documentation says (column-major, op(A) op(B), leading dimensions, strided batches, bias epilogue): every transpose
 * pair, odd sizes, leading dimensions above the row count, batch strides with gaps, bf16 inputs and outputs, C != D.
 * It runs on the CUDA emulator in every build and on a real GPU in the GPU check.
 *
 * <p>Tolerance per element, from the arithmetic: fp32 accumulation of k products in any order is within
 * gamma_(k+4) = (k+4) u (u = 2^-24) of |alpha| sum|a b| + |beta c| + |bias| (the +4 covers alpha, beta, the bias
 * and the final addition), doubled because GPU tensor cores accumulate without round-to-nearest; a bf16 (fp16) output
 * adds one rounding, 2^-8 (2^-11) of the value, and with a bias epilogue a second one, 2^-8 of the value before the
 * bias (cuBLASLt 13.1 on an H200 may round alpha AB + beta C to bf16 before it adds the bias). Inputs are generated in
 * bf16 where the matrix is bf16, so the reference reads exactly what the device reads.
 */
@Tag("gpu")
class GemmContractGpuTest {
    private static final int F32 = Cublas.CUDA_R_32F;
    private static final int BF16 = Cublas.CUDA_R_16BF;
    private static final int N = Cublas.CUBLAS_OP_N;
    private static final int T = Cublas.CUBLAS_OP_T;

    private static CudaContext ctx;
    private static Cublas blas;
    private static CublasLt lt;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        GpuTestSupport.requireThat(Cublas.isAvailable() && CublasLt.isAvailable(), () -> "libcublas/libcublasLt not found");
        ctx = CudaContext.open(0);
        blas = Cublas.create();
        lt = CublasLt.create();
    }

    @AfterAll
    static void close() {
        if (lt != null) {
            lt.close();
        }
        if (blas != null) {
            blas.close();
        }
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
        blas.setStream(0);
        blas.setMathMode(Cublas.CUBLAS_PEDANTIC_MATH);
    }

    /** A column-major matrix (or a strided batch of them) on the host, values already rounded to its type. */
    private record Mat(int type, int rows, int cols, int ld, int batch, long stride, float[] data) {
        static Mat random(SplittableRandom r, int type, int rows, int cols, int ld, int batch, long stride) {
            float[] d = new float[(int) ((batch - 1) * stride + (long) (cols - 1) * ld + rows)];
            for (int i = 0; i < d.length; i++) {
                float v = (float) (r.nextDouble() * 2 - 1);
                d[i] = type == BF16 ? GpuTestSupport.fromBf16(GpuTestSupport.toBf16(v)) : v;
            }
            return new Mat(type, rows, cols, ld, batch, stride, d);
        }

        float at(int b, int i, int j) {
            return data[(int) (b * stride + (long) j * ld + i)];
        }

        DeviceBuffer upload() {
            return type == BF16 ? DeviceBuffer.of(GpuTestSupport.toBf16(data)) : DeviceBuffer.of(data);
        }

        float[] read(DeviceBuffer d) {
            return type == BF16 ? GpuTestSupport.fromBf16(d.toShortArray()) : d.toFloatArray();
        }
    }

    /** op(M)(i, p) of batch b. */
    private static double op(Mat m, boolean trans, int b, int i, int p) {
        return trans ? m.at(b, p, i) : m.at(b, i, p);
    }

    /**
     * Checks D against alpha op(A) op(B) + beta C (+ bias[i], bias batch stride biasStride); elements of D's storage
     * outside its rows x cols (the ld gap) must hold what they held before ({@code before}).
     */
    private static void checkProduct(String what, Mat a, boolean ta, Mat b, boolean tb, float alpha, float beta, Mat c,
            float[] bias, int biasStride, Mat d, float[] got, float[] before, int k) {
        double u = Math.scalb(1.0, -24);
        double outU = d.type() == BF16 ? Math.scalb(1.0, -8) : 0;
        StringBuilder bad = new StringBuilder();
        int count = 0;
        boolean[] inside = new boolean[got.length];
        for (int bt = 0; bt < d.batch(); bt++) {
            for (int j = 0; j < d.cols(); j++) {
                for (int i = 0; i < d.rows(); i++) {
                    double sum = 0, mag = 0;
                    if (alpha != 0) {
                        for (int p = 0; p < k; p++) {
                            double prod = op(a, ta, bt, i, p) * op(b, tb, bt, p, j);
                            sum += prod;
                            mag += Math.abs(prod);
                        }
                    }
                    double ref = alpha * sum;
                    mag = Math.abs(alpha) * mag;
                    if (beta != 0) {
                        ref += beta * (double) c.at(bt, i, j);
                        mag += Math.abs(beta * (double) c.at(bt, i, j));
                    }
                    if (bias != null) {
                        ref += bias[bt * biasStride + i];
                        mag += Math.abs(bias[bt * biasStride + i]);
                    }
                    double accum = 2 * (k + 4) * u * mag;
                    double beforeBias = bias == null ? 0 : ref - bias[bt * biasStride + i];
                    double tol = accum + outU * (Math.abs(ref) + accum) + outU * Math.abs(beforeBias);
                    int idx = (int) (bt * d.stride() + (long) j * d.ld() + i);
                    inside[idx] = true;
                    double diff = Math.abs(got[idx] - ref);
                    if (!(diff <= tol)) {
                        if (count++ < 6) {
                            bad.append(String.format("%n  batch %d (%d,%d): got %s, expected %.9g (tolerance %.3g)", bt, i,
                                    j, got[idx], ref, tol));
                        }
                    }
                }
            }
        }
        for (int i = 0; i < got.length; i++) {
            if (!inside[i] && Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(before[i])) {
                if (count++ < 6) {
                    bad.append(String.format("%n  element %d outside D's rows was overwritten: %s -> %s", i, before[i],
                            got[i]));
                }
            }
        }
        if (count > 0) {
            fail(what + ": " + count + " bad elements:" + bad);
        }
    }

    private static String name(boolean ta, boolean tb) {
        return (ta ? "T" : "N") + (tb ? "T" : "N");
    }

    @Test
    void cublasEveryTransposePairOddSizesAndPaddedLeadingDimensions() {
        int m = 13, n = 7, k = 29;
        SplittableRandom r = new SplittableRandom(11);
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (int type : new int[] {F32, BF16}) {
                    Mat a = ta ? Mat.random(r, type, k, m, k + 3, 1, 0) : Mat.random(r, type, m, k, m + 3, 1, 0);
                    Mat b = tb ? Mat.random(r, type, n, k, n + 2, 1, 0) : Mat.random(r, type, k, n, k + 2, 1, 0);
                    int outType = type == F32 ? F32 : (ta ? BF16 : F32); // bf16 in: both output types get covered
                    Mat c = Mat.random(r, outType, m, n, m + 5, 1, 0);
                    for (float beta : new float[] {0f, -0.5f}) {
                        float[] before = c.data().clone();
                        if (beta == 0) {
                            java.util.Arrays.fill(before, Float.NaN); // beta 0: C is not read, so NaN must not leak
                        }
                        Mat c0 = new Mat(outType, m, n, m + 5, 1, 0, before);
                        try (DeviceBuffer da = a.upload(); DeviceBuffer db = b.upload(); DeviceBuffer dc = c0.upload()) {
                            if (type == F32) {
                                blas.sgemm(ta ? T : N, tb ? T : N, m, n, k, 0.75f, da.address(), a.ld(), db.address(),
                                        b.ld(), beta, dc.address(), c.ld());
                            } else {
                                blas.gemmEx(ta ? T : N, tb ? T : N, m, n, k, 0.75f, da.address(), type, a.ld(),
                                        db.address(), type, b.ld(), beta, dc.address(), outType, c.ld(),
                                        Cublas.CUBLAS_COMPUTE_32F);
                            }
                            float[] got = c0.read(dc);
                            checkProduct("cublas " + name(ta, tb) + " type " + type + "->" + outType + " beta " + beta,
                                    a, ta, b, tb, 0.75f, beta, c0, null, 0, c0, got, c0.data(), k);
                        }
                    }
                }
            }
        }
    }

    @Test
    void cublasStridedBatchesWithGaps() {
        int m = 9, n = 11, k = 17, batch = 3;
        SplittableRandom r = new SplittableRandom(12);
        for (int type : new int[] {F32, BF16}) {
            Mat a = Mat.random(r, type, k, m, k + 1, batch, (long) (k + 1) * m + 7); // used transposed
            Mat b = Mat.random(r, type, k, n, k, batch, (long) k * n + 3);
            Mat c = Mat.random(r, F32, m, n, m + 2, batch, (long) (m + 2) * n + 5);
            try (DeviceBuffer da = a.upload(); DeviceBuffer db = b.upload(); DeviceBuffer dc = c.upload()) {
                blas.gemmStridedBatchedEx(T, N, m, n, k, 1.25f, da.address(), type, a.ld(), a.stride(), db.address(),
                        type, b.ld(), b.stride(), 0.5f, dc.address(), F32, c.ld(), c.stride(), batch,
                        Cublas.CUBLAS_COMPUTE_32F);
                checkProduct("cublas strided batched type " + type, a, true, b, false, 1.25f, 0.5f, c, null, 0, c,
                        c.read(dc), c.data(), k);
            }
        }
    }

    /** A cuBLASLt matmul of the given matrices; D's device buffer starts as {@code d.data()}. */
    private static float[] ltMatmul(boolean ta, boolean tb, float alpha, Mat a, Mat b, float beta, Mat c, Mat d,
            int epilogue, DeviceBuffer bias, int biasType, int biasStride, boolean inPlace, int order) {
        long desc = 0, la = 0, lb = 0, lc = 0, ld = 0;
        try (DeviceBuffer da = a.upload(); DeviceBuffer db = b.upload(); DeviceBuffer dc = c.upload();
                DeviceBuffer dd = inPlace ? null : d.upload()) {
            desc = CublasLt.matmulDescCreate(Cublas.CUBLAS_COMPUTE_32F, F32);
            CublasLt.matmulDescSetAttribute(desc, LtRaw.DESC_TRANSA, ta ? T : N);
            CublasLt.matmulDescSetAttribute(desc, LtRaw.DESC_TRANSB, tb ? T : N);
            if (epilogue != LtRaw.EPILOGUE_DEFAULT) {
                LtRaw.descInt(desc, LtRaw.DESC_EPILOGUE, epilogue);
                LtRaw.descLong(desc, LtRaw.DESC_BIAS_POINTER, bias.address());
                LtRaw.descInt(desc, LtRaw.DESC_BIAS_DATA_TYPE, biasType);
                if (biasStride != 0) {
                    LtRaw.descLong(desc, LtRaw.DESC_BIAS_BATCH_STRIDE, biasStride);
                }
            }
            la = layout(a, order);
            lb = layout(b, order);
            lc = layout(c, order);
            ld = inPlace ? lc : layout(d, order);
            long out = inPlace ? dc.address() : dd.address();
            int status = LtRaw.matmul(lt.handle(), desc, alpha, da.address(), la, db.address(), lb, beta, dc.address(),
                    lc, out, ld, 0);
            if (status != 0) {
                throw new CudaException("cublasLtMatmul", status, "cublasStatus_t " + status, "");
            }
            CudaDriver.contextSynchronize();
            if (!inPlace) {
                assertArrayEquals(c.data(), c.read(dc), "C must be left alone when D is another buffer");
            }
            return inPlace ? c.read(dc) : d.read(dd);
        } finally {
            for (long l : new long[] {ld == lc ? 0 : ld, lc, lb, la}) {
                if (l != 0) {
                    CublasLt.matrixLayoutDestroy(l);
                }
            }
            if (desc != 0) {
                CublasLt.matmulDescDestroy(desc);
            }
        }
    }

    private static long layout(Mat m, int order) {
        long l = CublasLt.matrixLayoutCreate(m.type(), m.rows(), m.cols(), m.ld());
        if (m.batch() > 1) {
            LtRaw.layoutInt(l, LtRaw.LAYOUT_BATCH_COUNT, m.batch());
            LtRaw.layoutLong(l, LtRaw.LAYOUT_STRIDED_BATCH_OFFSET, m.stride());
        }
        if (order != 0) {
            LtRaw.layoutInt(l, LtRaw.LAYOUT_ORDER, order);
        }
        return l;
    }

    @Test
    void cublasLtEveryTransposePairWithDistinctCAndD() {
        int m = 15, n = 6, k = 23;
        SplittableRandom r = new SplittableRandom(13);
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (int type : new int[] {F32, BF16}) {
                    int outType = type == F32 ? F32 : (tb ? BF16 : F32);
                    Mat a = ta ? Mat.random(r, type, k, m, k + 2, 1, 0) : Mat.random(r, type, m, k, m + 1, 1, 0);
                    Mat b = tb ? Mat.random(r, type, n, k, n + 4, 1, 0) : Mat.random(r, type, k, n, k, 1, 0);
                    Mat c = Mat.random(r, outType, m, n, m + 3, 1, 0);
                    Mat d = Mat.random(r, outType, m, n, m + 1, 1, 0); // its own ld: only D's layout matters for D
                    float[] got = ltMatmul(ta, tb, -0.5f, a, b, 2f, c, d, LtRaw.EPILOGUE_DEFAULT, null, 0, 0, false, 0);
                    checkProduct("cublasLt " + name(ta, tb) + " C != D type " + type + "->" + outType, a, ta, b, tb,
                            -0.5f, 2f, c, null, 0, d, got, d.data(), k);
                }
            }
        }
    }

    @Test
    void cublasLtBiasEpilogueInPlaceAndBatched() {
        int m = 21, n = 10, k = 19, batch = 2;
        SplittableRandom r = new SplittableRandom(14);
        for (int type : new int[] {F32, BF16}) {
            for (int biasType : new int[] {type}) { // a bf16 D takes a bf16 bias (see the refusal test below)
                int outType = type == F32 ? F32 : BF16;
                Mat a = Mat.random(r, type, m, k, m, batch, (long) m * k + 4);
                Mat b = Mat.random(r, type, n, k, n, batch, (long) n * k);
                Mat c = Mat.random(r, outType, m, n, m + 2, batch, (long) (m + 2) * n + 1);
                Mat biasMat = Mat.random(r, biasType, m * batch, 1, m * batch, 1, 0);
                float[] bias = biasMat.data();
                try (DeviceBuffer dbias = biasMat.upload()) {
                    float[] got = ltMatmul(false, true, 1f, a, b, 1f, c, c, LtRaw.EPILOGUE_BIAS, dbias, biasType, m,
                            true, 0);
                    checkProduct("cublasLt bias in place type " + type + " bias " + biasType, a, false, b, true, 1f, 1f,
                            c, bias, m, c, got, c.data(), k);
                }
            }
        }
    }

    /**
     * The bias of a bf16 D is bf16: cuBLASLt 13.1 on an H200 answers an fp32 bias next to a bf16 output with
     * CUBLAS_STATUS_INVALID_VALUE from the heuristic (and the emulator does the same), while the bf16 bias is taken.
     */
    @Test
    void cublasLtRefusesAnFp32BiasForABf16Output() {
        assertTrue(LtRoundingProbe.biasHeuristic(lt, BF16, BF16, 1, false) >= 1,
                "a bf16 bias with a bf16 D has an algorithm");
        CudaException e = org.junit.jupiter.api.Assertions.assertThrows(CudaException.class,
                () -> LtRoundingProbe.biasHeuristic(lt, BF16, F32, 1, false));
        assertEquals(7, e.code(), () -> "CUBLAS_STATUS_INVALID_VALUE expected: " + e.getMessage());
    }

    /** Bias gradient of a linear layer: D = X^T-like product and bias[j] = sum over k of op(B)(p, j). */
    @Test
    void cublasLtBiasGradientEpilogue() {
        int m = 12, n = 9, k = 33;
        SplittableRandom r = new SplittableRandom(15);
        Mat a = Mat.random(r, F32, m, k, m, 1, 0);
        Mat b = Mat.random(r, F32, n, k, n, 1, 0); // op(B) = B^T (k,n)
        Mat c = Mat.random(r, F32, m, n, m, 1, 0);
        try (DeviceBuffer grad = DeviceBuffer.alloc(4L * n)) {
            grad.fill(Float.NaN);
            float[] got = ltMatmul(false, true, 1f, a, b, 0f, c, c, LtRaw.EPILOGUE_BGRADB, grad, F32, 0, true, 0);
            checkProduct("cublasLt BGRADB product", a, false, b, true, 1f, 0f, c, null, 0, c, got, c.data(), k);
            float[] g = grad.toFloatArray();
            double u = Math.scalb(1.0, -24);
            for (int j = 0; j < n; j++) {
                double sum = 0, mag = 0;
                for (int p = 0; p < k; p++) {
                    sum += b.at(0, j, p);
                    mag += Math.abs(b.at(0, j, p));
                }
                double tol = 2 * (k + 1) * u * mag;
                assertTrue(Math.abs(g[j] - sum) <= tol, "bias gradient " + j + ": " + g[j] + " vs " + sum);
            }
        }
    }

    /** What the emulator does not emulate is refused with CUBLAS_STATUS_NOT_SUPPORTED, never run differently. */
    @Test
    void emulatorRefusesWhatItDoesNotEmulate() {
        org.junit.jupiter.api.Assumptions.assumeTrue(CudaDriver.isEmulator(), "the refusals are the emulator's (a GPU "
                + "supports row-major layouts and the ReLU epilogue)");
        SplittableRandom r = new SplittableRandom(16);
        Mat a = Mat.random(r, F32, 4, 4, 4, 1, 0);
        CudaException row = org.junit.jupiter.api.Assertions.assertThrows(CudaException.class,
                () -> ltMatmul(false, false, 1f, a, a, 0f, a, a, LtRaw.EPILOGUE_DEFAULT, null, 0, 0, true,
                        LtRaw.ORDER_ROW));
        assertEquals(LtRaw.CUBLAS_STATUS_NOT_SUPPORTED, row.code(), row.getMessage());
        try (DeviceBuffer bias = DeviceBuffer.alloc(16)) {
            CudaException relu = org.junit.jupiter.api.Assertions.assertThrows(CudaException.class,
                    () -> ltMatmul(false, false, 1f, a, a, 0f, a, a, LtRaw.EPILOGUE_RELU, bias, F32, 0, true, 0));
            assertEquals(LtRaw.CUBLAS_STATUS_NOT_SUPPORTED, relu.code(), relu.getMessage());
        }
        // fp32 inputs with a bf16 output is not a cuBLAS combination either
        CudaException types = org.junit.jupiter.api.Assertions.assertThrows(CudaException.class, () -> blas.gemmEx(N, N,
                4, 4, 4, 1f, 0, F32, 4, 0, F32, 4, 0f, 0, BF16, 4, Cublas.CUBLAS_COMPUTE_32F));
        assertTrue(types.getMessage().contains("CUBLAS_STATUS_NOT_SUPPORTED"), types.getMessage());
    }
}
