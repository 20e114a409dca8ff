package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * cuBLAS against a double-precision CPU product. Tolerances: fp32 GEMM atol 1e-4 + rtol 1e-4 (k <= 96 terms in
 * [-1,1], fp32 accumulation; pedantic math so no TF32); bf16 inputs with fp32 output atol 1e-3 + rtol 1e-3 (the
 * inputs are rounded to bf16 before the reference, so only accumulation order differs); bf16 output atol 1e-2 +
 * rtol 1e-2 (one bf16 rounding, 2^-8 relative).
 */
@Tag("gpu")
class CublasGpuTest {
    private static CudaContext ctx;
    private static Cublas blas;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        GpuTestSupport.requireThat(Cublas.isAvailable(), () -> "libcublas not found");
        ctx = CudaContext.open(0);
        blas = Cublas.create();
        System.out.println("cuBLAS version " + blas.version());
    }

    @AfterAll
    static void close() {
        if (blas != null) {
            blas.close();
            blas.close();
        }
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
        blas.setMathMode(Cublas.CUBLAS_PEDANTIC_MATH);
        blas.setStream(0);
    }

    @Test
    void sgemmMatchesCpuProductIncludingTransposeAndBeta() {
        int m = 67, n = 45, k = 96;
        long seed = 101;
        for (boolean transA : new boolean[] {false, true}) {
            int lda = transA ? k : m;
            float[] a = GpuTestSupport.random(seed, m * k);
            float[] b = GpuTestSupport.random(seed + 1, k * n);
            float[] c = GpuTestSupport.random(seed + 2, m * n);
            float alpha = 0.5f, beta = -2f;
            float[] ref = GpuTestSupport.gemmReference(transA, false, m, n, k, alpha, a, lda, b, k, beta, c, m);
            try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
                    DeviceBuffer dc = DeviceBuffer.of(c)) {
                blas.sgemm(transA ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N, m, n, k, alpha,
                        da.address(), lda, db.address(), k, beta, dc.address(), m);
                GpuTestSupport.assertClose("sgemm transA=" + transA, ref, dc.toFloatArray(), 1e-4, 1e-4, seed);
            }
        }
    }

    @Test
    void rowMajorProductThroughSwappedOperands() {
        // row-major C (m,n) = A (m,k) B (k,n)  ==  column-major C^T = B^T A^T, as documented on Cublas
        int m = 5, n = 7, k = 3;
        float[] a = GpuTestSupport.random(7, m * k);
        float[] b = GpuTestSupport.random(8, k * n);
        float[] ref = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    acc += (double) a[i * k + p] * b[p * n + j];
                }
                ref[i * n + j] = (float) acc;
            }
        }
        try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
                DeviceBuffer dc = DeviceBuffer.alloc(4L * m * n)) {
            dc.fill(Float.NaN);
            blas.sgemm(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N, n, m, k, 1f, db.address(), n, da.address(), k, 0f,
                    dc.address(), n);
            GpuTestSupport.assertClose("row-major sgemm", ref, dc.toFloatArray(), 1e-5, 1e-5, 7);
        }
    }

    @Test
    void gemmExBf16InputsFp32AndBf16Outputs() {
        int m = 64, n = 32, k = 80;
        long seed = 202;
        short[] a = GpuTestSupport.toBf16(GpuTestSupport.random(seed, m * k));
        short[] b = GpuTestSupport.toBf16(GpuTestSupport.random(seed + 1, k * n));
        float[] ref = GpuTestSupport.gemmReference(false, true, m, n, k, 1f, GpuTestSupport.fromBf16(a), m,
                GpuTestSupport.fromBf16(b), n, 0f, new float[m * n], m);
        try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
                DeviceBuffer c32 = DeviceBuffer.alloc(4L * m * n); DeviceBuffer c16 = DeviceBuffer.alloc(2L * m * n)) {
            c32.fill(Float.NaN);
            c16.fill((byte) 0xff); // bf16 0xffff is a NaN
            blas.setMathMode(Cublas.CUBLAS_DEFAULT_MATH);
            // B is stored (n,k) column-major and used transposed
            blas.gemmEx(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_T, m, n, k, 1f, da.address(), Cublas.CUDA_R_16BF, m,
                    db.address(), Cublas.CUDA_R_16BF, n, 0f, c32.address(), Cublas.CUDA_R_32F, m,
                    Cublas.CUBLAS_COMPUTE_32F);
            blas.gemmEx(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_T, m, n, k, 1f, da.address(), Cublas.CUDA_R_16BF, m,
                    db.address(), Cublas.CUDA_R_16BF, n, 0f, c16.address(), Cublas.CUDA_R_16BF, m,
                    Cublas.CUBLAS_COMPUTE_32F);
            GpuTestSupport.assertClose("gemmEx bf16->fp32", ref, c32.toFloatArray(), 1e-3, 1e-3, seed);
            GpuTestSupport.assertClose("gemmEx bf16->bf16", ref, GpuTestSupport.fromBf16(c16.toShortArray()), 1e-2,
                    1e-2, seed);
        }
    }

    @Test
    void stridedBatchedBf16MatchesPerBatchProducts() {
        int m = 16, n = 24, k = 40, batch = 3;
        long seed = 303;
        short[] a = GpuTestSupport.toBf16(GpuTestSupport.random(seed, batch * m * k));
        short[] b = GpuTestSupport.toBf16(GpuTestSupport.random(seed + 1, batch * k * n));
        float[] af = GpuTestSupport.fromBf16(a);
        float[] bf = GpuTestSupport.fromBf16(b);
        float[] ref = new float[batch * m * n];
        for (int i = 0; i < batch; i++) {
            float[] ai = java.util.Arrays.copyOfRange(af, i * m * k, (i + 1) * m * k);
            float[] bi = java.util.Arrays.copyOfRange(bf, i * k * n, (i + 1) * k * n);
            float[] ci = GpuTestSupport.gemmReference(false, false, m, n, k, 1f, ai, m, bi, k, 0f, new float[m * n], m);
            System.arraycopy(ci, 0, ref, i * m * n, m * n);
        }
        try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
                DeviceBuffer dc = DeviceBuffer.alloc(4L * batch * m * n); CudaStream s = CudaStream.create()) {
            dc.fill(Float.NaN);
            blas.setStream(s.handle());
            try (DeviceBuffer ws = DeviceBuffer.alloc(4L << 20)) {
                blas.setWorkspace(ws.address(), ws.bytes());
                blas.gemmStridedBatchedEx(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N, m, n, k, 1f, da.address(),
                        Cublas.CUDA_R_16BF, m, (long) m * k, db.address(), Cublas.CUDA_R_16BF, k, (long) k * n, 0f,
                        dc.address(), Cublas.CUDA_R_32F, m, (long) m * n, batch, Cublas.CUBLAS_COMPUTE_32F);
                s.synchronize();
                blas.setStream(0); // also resets cuBLAS to its default workspace pool before ws is freed
            }
            GpuTestSupport.assertClose("strided batched bf16", ref, dc.toFloatArray(), 1e-3, 1e-3, seed);
        }
    }

    @Test
    void invalidArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> blas.sgemm(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N, 4, 4, 4, 1f, 0, 2, 0, 4, 0f, 0, 4));
        // a native status error carries cublasGetStatusName, e.g. CUBLAS_STATUS_INVALID_VALUE for an unknown op
        CudaException e = assertThrows(CudaException.class, () -> blas.gemmEx(99, Cublas.CUBLAS_OP_N, 4, 4, 4, 1f, 0,
                Cublas.CUDA_R_32F, 4, 0, Cublas.CUDA_R_32F, 4, 0f, 0, Cublas.CUDA_R_32F, 4, Cublas.CUBLAS_COMPUTE_32F));
        System.out.println(e.getMessage());
        assertTrue(e.getMessage().startsWith("cublasGemmEx failed: CUBLAS_STATUS_"), e.getMessage());
    }
}
