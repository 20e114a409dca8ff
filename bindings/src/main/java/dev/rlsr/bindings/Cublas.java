package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;

/**
 * cuBLAS (libcublas.so.13, else .12) through FFM: one handle per instance, bound to the current context.
 *
 * <p><b>Column-major</b>, like cuBLAS itself: {@code C (m,n) = alpha * op(A) * op(B) + beta * C}, where
 * op(A) is (m,k) and op(B) is (k,n), element (i,j) of a matrix with leading dimension ld at {@code i + j*ld}.
 * A row-major product {@code C = A B} (A (m,k), B (k,n), all row-major) is the column-major
 * {@code C^T = B^T A^T}: call {@code gemm(N, N, n, m, k, B, ldb=n, A, lda=k, C, ldc=n)}.
 * Scalars alpha/beta are host floats (the default host pointer mode); with compute type
 * {@link #CUBLAS_COMPUTE_32F} they are {@code float} for every input type.
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class Cublas implements AutoCloseable {
    // cublasOperation_t
    /** {@code cublasOperation_t}: op(X) = X. */
    public static final int CUBLAS_OP_N = 0;
    /** {@code cublasOperation_t}: op(X) = X transposed. */
    public static final int CUBLAS_OP_T = 1;
    /** {@code cublasOperation_t}: op(X) = X conjugate-transposed (= transposed for real types). */
    public static final int CUBLAS_OP_C = 2;
    // cudaDataType_t (library_types.h)
    /** {@code cudaDataType_t}: fp32. */
    public static final int CUDA_R_32F = 0;
    /** {@code cudaDataType_t}: fp16. */
    public static final int CUDA_R_16F = 2;
    /** {@code cudaDataType_t}: int8. */
    public static final int CUDA_R_8I = 3;
    /** {@code cudaDataType_t}: int32. */
    public static final int CUDA_R_32I = 10;
    /** {@code cudaDataType_t}: bf16. */
    public static final int CUDA_R_16BF = 14;
    // cublasComputeType_t
    /** {@code cublasComputeType_t}: fp16 accumulation. */
    public static final int CUBLAS_COMPUTE_16F = 64;
    /** {@code cublasComputeType_t}: fp32 accumulation (tensor cores allowed for 16-bit inputs). */
    public static final int CUBLAS_COMPUTE_32F = 68;
    /** {@code cublasComputeType_t}: fp32 accumulation, no reduced-precision shortcuts. */
    public static final int CUBLAS_COMPUTE_32F_PEDANTIC = 69;
    /** {@code cublasComputeType_t}: fp32 accumulation, fp32 inputs rounded to fp16 for tensor cores. */
    public static final int CUBLAS_COMPUTE_32F_FAST_16F = 74;
    /** {@code cublasComputeType_t}: fp32 accumulation, fp32 inputs rounded to bf16 for tensor cores. */
    public static final int CUBLAS_COMPUTE_32F_FAST_16BF = 75;
    /** {@code cublasComputeType_t}: fp32 accumulation, fp32 inputs rounded to tf32 for tensor cores. */
    public static final int CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
    // cublasGemmAlgo_t
    /** {@code cublasGemmAlgo_t}: let cuBLAS choose. */
    public static final int CUBLAS_GEMM_DEFAULT = -1;
    // cublasMath_t
    /** {@code cublasMath_t}: the default math mode. */
    public static final int CUBLAS_DEFAULT_MATH = 0;
    /** {@code cublasMath_t}: no reduced-precision shortcuts. */
    public static final int CUBLAS_PEDANTIC_MATH = 2;
    /** {@code cublasMath_t}: fp32 products may use tf32 tensor cores. */
    public static final int CUBLAS_TF32_TENSOR_OP_MATH = 3;
    // cublasStatus_t
    /** {@code cublasStatus_t}: success. */
    public static final int CUBLAS_STATUS_SUCCESS = 0;

    private static final String LIB = "cublas";

    private static SymbolLookup lib() {
        return NativeLibrary.load(LIB, "rlsr.lib.cublas", "libcublas.so.13", "libcublas.so.12");
    }

    private static NativeFunction fn(FunctionDescriptor fd, String... names) {
        return new NativeFunction(LIB, Cublas::lib, fd, names);
    }

    private static FunctionDescriptor res(MemoryLayout... args) {
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    // const char* cublasGetStatusName(cublasStatus_t status)
    private static final NativeFunction cublasGetStatusName =
            fn(FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasGetStatusName");
    // const char* cublasGetStatusString(cublasStatus_t status)
    private static final NativeFunction cublasGetStatusString =
            fn(FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasGetStatusString");
    // cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)
    private static final NativeFunction cublasCreate = fn(res(ADDRESS), "cublasCreate_v2", "cublasCreate");
    // cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
    private static final NativeFunction cublasDestroy = fn(res(ADDRESS), "cublasDestroy_v2", "cublasDestroy");
    // cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int *version)
    private static final NativeFunction cublasGetVersion =
            fn(res(ADDRESS, ADDRESS), "cublasGetVersion_v2", "cublasGetVersion");
    // cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)
    private static final NativeFunction cublasSetStream =
            fn(res(ADDRESS, ADDRESS), "cublasSetStream_v2", "cublasSetStream");
    // cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t workspaceSizeInBytes)
    private static final NativeFunction cublasSetWorkspace =
            fn(res(ADDRESS, ADDRESS, JAVA_LONG), "cublasSetWorkspace_v2", "cublasSetWorkspace");
    // cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
    private static final NativeFunction cublasSetMathMode = fn(res(ADDRESS, JAVA_INT), "cublasSetMathMode");
    // cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
    //     int m, int n, int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
    //     const float *beta, float *C, int ldc)
    private static final NativeFunction cublasSgemm = fn(res(ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT),
            "cublasSgemm_v2", "cublasSgemm");
    // cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
    //     int m, int n, int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda,
    //     const void *B, cudaDataType_t Btype, int ldb, const void *beta, void *C, cudaDataType_t Ctype, int ldc,
    //     cublasComputeType_t computeType, cublasGemmAlgo_t algo)
    private static final NativeFunction cublasGemmEx = fn(res(ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), "cublasGemmEx");
    // cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
    //     cublasOperation_t transb, int m, int n, int k, const void *alpha,
    //     const void *A, cudaDataType Atype, int lda, long long int strideA,
    //     const void *B, cudaDataType Btype, int ldb, long long int strideB, const void *beta,
    //     void *C, cudaDataType Ctype, int ldc, long long int strideC, int batchCount,
    //     cublasComputeType_t computeType, cublasGemmAlgo_t algo)
    private static final NativeFunction cublasGemmStridedBatchedEx = fn(res(ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT,
            JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT),
            "cublasGemmStridedBatchedEx");

    /** {@return true when libcublas loads}; never throws. */
    public static boolean isAvailable() {
        return NativeLibrary.isLoadable(LIB, "rlsr.lib.cublas", "libcublas.so.13", "libcublas.so.12");
    }

    static String statusName(int status) {
        return cString(cublasGetStatusName, status, "cublasStatus_t " + status);
    }

    static String statusString(int status) {
        return cString(cublasGetStatusString, status, "");
    }

    static String cString(NativeFunction f, int status, String fallback) {
        try {
            MemorySegment s = (MemorySegment) f.handle().invokeExact(status);
            return s.address() == 0 ? fallback : s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return fallback;
        }
    }

    private static void check(NativeFunction f, int status) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            throw new CudaException(f.name(), status, statusName(status), statusString(status));
        }
    }

    private final long handle;
    private boolean closed;

    private Cublas(long handle) {
        this.handle = handle;
    }

    /**
     * A cuBLAS handle for the current context (make a {@link CudaContext} current first).
     *
     * @return the handle; close it when done
     */
    public static Cublas create() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cublasCreate, (int) cublasCreate.handle().invokeExact(out));
            return new Cublas(out.get(ADDRESS, 0).address());
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /** {@return the {@code cublasHandle_t}} */
    public long handle() {
        return handle;
    }

    /** {@return the cuBLAS version, e.g. 130000 + ... for 13.0} */
    public int version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(cublasGetVersion, (int) cublasGetVersion.handle().invokeExact(h(), out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private MemorySegment h() {
        if (closed) {
            throw new IllegalStateException("cuBLAS handle already destroyed");
        }
        return MemorySegment.ofAddress(handle);
    }

    /**
     * Subsequent calls on this handle run on {@code stream}.
     *
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public void setStream(long stream) {
        try {
            check(cublasSetStream, (int) cublasSetStream.handle().invokeExact(h(), MemorySegment.ofAddress(stream)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * A user-owned workspace; set one before CUDA graph capture so cuBLAS does not allocate during capture.
     * The buffer must outlive every call that uses it.
     *
     * @param devicePtr device address of the workspace
     * @param bytes     its size
     */
    public void setWorkspace(long devicePtr, long bytes) {
        try {
            check(cublasSetWorkspace, (int) cublasSetWorkspace.handle().invokeExact(h(),
                    MemorySegment.ofAddress(devicePtr), bytes));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Sets the math mode of this handle.
     *
     * @param mode {@link #CUBLAS_DEFAULT_MATH}, {@link #CUBLAS_PEDANTIC_MATH} or {@link #CUBLAS_TF32_TENSOR_OP_MATH}
     */
    public void setMathMode(int mode) {
        try {
            check(cublasSetMathMode, (int) cublasSetMathMode.handle().invokeExact(h(), mode));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private static void checkDims(int m, int n, int k, int lda, int ldb, int ldc, int transa, int transb) {
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("gemm sizes must be >= 0: m=" + m + " n=" + n + " k=" + k);
        }
        int rowsA = transa == CUBLAS_OP_N ? m : k;
        int rowsB = transb == CUBLAS_OP_N ? k : n;
        if (lda < Math.max(1, rowsA) || ldb < Math.max(1, rowsB) || ldc < Math.max(1, m)) {
            throw new IllegalArgumentException("column-major leading dimensions too small: lda=" + lda + " (>= "
                    + rowsA + "), ldb=" + ldb + " (>= " + rowsB + "), ldc=" + ldc + " (>= " + m + ")");
        }
    }

    /**
     * fp32 {@code C (m,n) = alpha op(A) op(B) + beta C}, column-major, device pointers, on this handle's stream.
     *
     * @param transa      {@link #CUBLAS_OP_N} or {@link #CUBLAS_OP_T}: op(A)
     * @param transb      {@link #CUBLAS_OP_N} or {@link #CUBLAS_OP_T}: op(B)
     * @param m           rows of op(A) and C
     * @param n           columns of op(B) and C
     * @param k           columns of op(A), rows of op(B)
     * @param alpha       scale of the product
     * @param a           device address of A, fp32
     * @param lda         leading dimension of A
     * @param b           device address of B, fp32
     * @param ldb         leading dimension of B
     * @param beta        scale of the old C (0: C is not read)
     * @param c           device address of C, fp32
     * @param ldc         leading dimension of C
     */
    public void sgemm(int transa, int transb, int m, int n, int k, float alpha, long a, int lda, long b, int ldb,
            float beta, long c, int ldc) {
        checkDims(m, n, k, lda, ldb, ldc, transa, transb);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment al = arena.allocateFrom(JAVA_FLOAT, alpha);
            MemorySegment be = arena.allocateFrom(JAVA_FLOAT, beta);
            check(cublasSgemm, (int) cublasSgemm.handle().invokeExact(h(), transa, transb, m, n, k, al, a, lda, b, ldb,
                    be, c, ldc));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Mixed-precision GEMM, e.g. bf16 inputs ({@link #CUDA_R_16BF}) with fp32 or bf16 output and
     * {@link #CUBLAS_COMPUTE_32F}; alpha/beta are floats (valid for the 32F compute types). Column-major.
     *
     * @param transa      {@link #CUBLAS_OP_N} or {@link #CUBLAS_OP_T}: op(A)
     * @param transb      {@link #CUBLAS_OP_N} or {@link #CUBLAS_OP_T}: op(B)
     * @param m           rows of op(A) and C
     * @param n           columns of op(B) and C
     * @param k           columns of op(A), rows of op(B)
     * @param alpha       scale of the product
     * @param a           device address of A
     * @param aType       A's {@code cudaDataType_t}
     * @param lda         leading dimension of A
     * @param b           device address of B
     * @param bType       B's {@code cudaDataType_t}
     * @param ldb         leading dimension of B
     * @param beta        scale of the old C (0: C is not read)
     * @param c           device address of C
     * @param cType       C's {@code cudaDataType_t}
     * @param ldc         leading dimension of C
     * @param computeType a {@code CUBLAS_COMPUTE_32F*} constant
     */
    public void gemmEx(int transa, int transb, int m, int n, int k, float alpha, long a, int aType, int lda, long b,
            int bType, int ldb, float beta, long c, int cType, int ldc, int computeType) {
        checkDims(m, n, k, lda, ldb, ldc, transa, transb);
        requireFloatScalars(computeType);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment al = arena.allocateFrom(JAVA_FLOAT, alpha);
            MemorySegment be = arena.allocateFrom(JAVA_FLOAT, beta);
            check(cublasGemmEx, (int) cublasGemmEx.handle().invokeExact(h(), transa, transb, m, n, k, al, a, aType,
                    lda, b, bType, ldb, be, c, cType, ldc, computeType, CUBLAS_GEMM_DEFAULT));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * {@code batchCount} independent GEMMs; matrix i of A starts at {@code a + i*strideA} elements (strides are
     * in elements, not bytes, as in cuBLAS). Column-major.
     *
     * @param transa      {@link #CUBLAS_OP_N} or {@link #CUBLAS_OP_T}: op(A)
     * @param transb      {@link #CUBLAS_OP_N} or {@link #CUBLAS_OP_T}: op(B)
     * @param m           rows of op(A) and C
     * @param n           columns of op(B) and C
     * @param k           columns of op(A), rows of op(B)
     * @param alpha       scale of the product
     * @param a           device address of the first A
     * @param aType       A's {@code cudaDataType_t}
     * @param lda         leading dimension of A
     * @param strideA     elements from one A to the next
     * @param b           device address of the first B
     * @param bType       B's {@code cudaDataType_t}
     * @param ldb         leading dimension of B
     * @param strideB     elements from one B to the next
     * @param beta        scale of the old C (0: C is not read)
     * @param c           device address of the first C
     * @param cType       C's {@code cudaDataType_t}
     * @param ldc         leading dimension of C
     * @param strideC     elements from one C to the next
     * @param batchCount  number of products
     * @param computeType a {@code CUBLAS_COMPUTE_32F*} constant
     */
    public void gemmStridedBatchedEx(int transa, int transb, int m, int n, int k, float alpha, long a, int aType,
            int lda, long strideA, long b, int bType, int ldb, long strideB, float beta, long c, int cType, int ldc,
            long strideC, int batchCount, int computeType) {
        checkDims(m, n, k, lda, ldb, ldc, transa, transb);
        requireFloatScalars(computeType);
        if (batchCount < 0) {
            throw new IllegalArgumentException("batchCount must be >= 0, got " + batchCount);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment al = arena.allocateFrom(JAVA_FLOAT, alpha);
            MemorySegment be = arena.allocateFrom(JAVA_FLOAT, beta);
            check(cublasGemmStridedBatchedEx, (int) cublasGemmStridedBatchedEx.handle().invokeExact(h(), transa,
                    transb, m, n, k, al, a, aType, lda, strideA, b, bType, ldb, strideB, be, c, cType, ldc, strideC,
                    batchCount, computeType, CUBLAS_GEMM_DEFAULT));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private static void requireFloatScalars(int computeType) {
        if (computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_PEDANTIC
                && computeType != CUBLAS_COMPUTE_32F_FAST_16F && computeType != CUBLAS_COMPUTE_32F_FAST_16BF
                && computeType != CUBLAS_COMPUTE_32F_FAST_TF32) {
            throw new IllegalArgumentException("only the CUBLAS_COMPUTE_32F* compute types are bound here"
                    + " (their alpha/beta are float); got " + computeType);
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            try {
                check(cublasDestroy, (int) cublasDestroy.handle().invokeExact(MemorySegment.ofAddress(handle)));
            } catch (Throwable t) {
                throw CudaDriver.rethrow(t);
            }
        }
    }
}
