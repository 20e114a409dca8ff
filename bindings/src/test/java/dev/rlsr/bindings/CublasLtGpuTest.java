package dev.rlsr.bindings;


import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * cuBLASLt matmul against a double CPU product. Tolerances: fp32 inputs atol 2e-3 + rtol 2e-3 (the heuristic
 * may pick TF32-free kernels only with CUBLAS_COMPUTE_32F, but split-K order differs); bf16 inputs with fp32
 * output atol 1e-3 + rtol 1e-3; bf16 output atol 1e-2 + rtol 1e-2.
 */
@Tag("gpu")
class CublasLtGpuTest {
    private static CudaContext ctx;
    private static CublasLt lt;
    private static DeviceBuffer workspace;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        GpuTestSupport.requireThat(CublasLt.isAvailable(), () -> "libcublasLt not found");
        ctx = CudaContext.open(0);
        lt = CublasLt.create();
        workspace = DeviceBuffer.alloc(32L << 20);
        System.out.println("cuBLASLt version " + CublasLt.version());
    }

    @AfterAll
    static void close() {
        if (workspace != null) {
            workspace.close();
        }
        if (lt != null) {
            lt.close();
            lt.close();
        }
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
    }

    @Test
    void fp32MatmulWithTransposedA() {
        int m = 96, n = 40, k = 72;
        long seed = 404;
        float[] a = GpuTestSupport.random(seed, k * m); // stored (k,m), used as op(A)=A^T (m,k)
        float[] b = GpuTestSupport.random(seed + 1, k * n);
        float[] c = GpuTestSupport.random(seed + 2, m * n);
        float[] ref = GpuTestSupport.gemmReference(true, false, m, n, k, 1.5f, a, k, b, k, 0.5f, c, m);
        try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b); DeviceBuffer dc = DeviceBuffer.of(c);
                CudaStream s = CudaStream.create()) {
            lt.matmul(Cublas.CUBLAS_OP_T, Cublas.CUBLAS_OP_N, m, n, k, 1.5f, da.address(), Cublas.CUDA_R_32F, k,
                    db.address(), Cublas.CUDA_R_32F, k, 0.5f, dc.address(), Cublas.CUDA_R_32F, m, workspace.address(),
                    workspace.bytes(), s.handle());
            s.synchronize();
            GpuTestSupport.assertClose("cublasLt fp32", ref, dc.toFloatArray(), 2e-3, 2e-3, seed);
        }
    }

    @Test
    void bf16MatmulFp32AndBf16Outputs() {
        int m = 128, n = 64, k = 96;
        long seed = 505;
        short[] a = GpuTestSupport.toBf16(GpuTestSupport.random(seed, m * k));
        short[] b = GpuTestSupport.toBf16(GpuTestSupport.random(seed + 1, k * n));
        float[] ref = GpuTestSupport.gemmReference(false, false, m, n, k, 1f, GpuTestSupport.fromBf16(a), m,
                GpuTestSupport.fromBf16(b), k, 0f, new float[m * n], m);
        try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
                DeviceBuffer c32 = DeviceBuffer.alloc(4L * m * n); DeviceBuffer c16 = DeviceBuffer.alloc(2L * m * n)) {
            c32.fill(Float.NaN);
            c16.fill((byte) 0xff);
            lt.matmul(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N, m, n, k, 1f, da.address(), Cublas.CUDA_R_16BF, m,
                    db.address(), Cublas.CUDA_R_16BF, k, 0f, c32.address(), Cublas.CUDA_R_32F, m, workspace.address(),
                    workspace.bytes(), 0);
            lt.matmul(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_N, m, n, k, 1f, da.address(), Cublas.CUDA_R_16BF, m,
                    db.address(), Cublas.CUDA_R_16BF, k, 0f, c16.address(), Cublas.CUDA_R_16BF, m, workspace.address(),
                    workspace.bytes(), 0);
            CudaDriver.contextSynchronize();
            GpuTestSupport.assertClose("cublasLt bf16->fp32", ref, c32.toFloatArray(), 1e-3, 1e-3, seed);
            GpuTestSupport.assertClose("cublasLt bf16->bf16", ref, GpuTestSupport.fromBf16(c16.toShortArray()), 1e-2,
                    1e-2, seed);
        }
    }
}
