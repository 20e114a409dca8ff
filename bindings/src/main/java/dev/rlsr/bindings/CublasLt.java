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
 * cuBLASLt (libcublasLt.so.13, else .12), limited to what a fp32 or bf16 GEMM with fp32 compute needs:
 * {@code D (m,n) = alpha op(A) op(B) + beta C}, column-major like {@link Cublas} (see there for the
 * row-major trick), with C and D the same buffer here. Each {@link #matmul} builds the descriptors, asks
 * the heuristic for the best algorithm within the given workspace and runs it on the stream.
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class CublasLt implements AutoCloseable {
    // cublasLtMatmulDescAttributes_t
    /** {@code cublasLtMatmulDescAttributes_t}: the compute type. */
    public static final int CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0;
    /** {@code cublasLtMatmulDescAttributes_t}: the type of alpha and beta. */
    public static final int CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1;
    /** {@code cublasLtMatmulDescAttributes_t}: whether alpha and beta are host or device pointers. */
    public static final int CUBLASLT_MATMUL_DESC_POINTER_MODE = 2;
    /** {@code cublasLtMatmulDescAttributes_t}: op(A), a {@code cublasOperation_t}. */
    public static final int CUBLASLT_MATMUL_DESC_TRANSA = 3;
    /** {@code cublasLtMatmulDescAttributes_t}: op(B), a {@code cublasOperation_t}. */
    public static final int CUBLASLT_MATMUL_DESC_TRANSB = 4;
    // cublasLtMatmulPreferenceAttributes_t
    /** {@code cublasLtMatmulPreferenceAttributes_t}: the heuristic's search mode. */
    public static final int CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0;
    /** {@code cublasLtMatmulPreferenceAttributes_t}: the most workspace an algorithm may use. */
    public static final int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;

    /**
     * cublasLtMatmulHeuristicResult_t: {cublasLtMatmulAlgo_t algo (uint64_t data[8]); size_t workspaceSize;
     * cublasStatus_t state; float wavesCount; int reserved[4];} = 96 bytes.
     */
    static final MemoryLayout HEURISTIC_RESULT = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8, JAVA_LONG).withName("algo"),
            JAVA_LONG.withName("workspaceSize"),
            JAVA_INT.withName("state"),
            JAVA_FLOAT.withName("wavesCount"),
            MemoryLayout.sequenceLayout(4, JAVA_INT).withName("reserved"));
    static final long HEURISTIC_WORKSPACE_OFFSET = 64;

    private static final String LIB = "cublasLt";

    private static SymbolLookup lib() {
        return NativeLibrary.load(LIB, "rlsr.lib.cublaslt", "libcublasLt.so.13", "libcublasLt.so.12");
    }

    private static NativeFunction fn(FunctionDescriptor fd, String name) {
        return new NativeFunction(LIB, CublasLt::lib, fd, name);
    }

    private static FunctionDescriptor res(MemoryLayout... args) {
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    // const char* cublasLtGetStatusName(cublasStatus_t status)
    private static final NativeFunction cublasLtGetStatusName =
            fn(FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasLtGetStatusName");
    // const char* cublasLtGetStatusString(cublasStatus_t status)
    private static final NativeFunction cublasLtGetStatusString =
            fn(FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasLtGetStatusString");
    // cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle)
    private static final NativeFunction cublasLtCreate = fn(res(ADDRESS), "cublasLtCreate");
    // cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle)
    private static final NativeFunction cublasLtDestroy = fn(res(ADDRESS), "cublasLtDestroy");
    // size_t cublasLtGetVersion(void)
    private static final NativeFunction cublasLtGetVersion = fn(FunctionDescriptor.of(JAVA_LONG), "cublasLtGetVersion");
    // cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
    //     cudaDataType_t scaleType)
    private static final NativeFunction cublasLtMatmulDescCreate =
            fn(res(ADDRESS, JAVA_INT, JAVA_INT), "cublasLtMatmulDescCreate");
    // cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc)
    private static final NativeFunction cublasLtMatmulDescDestroy = fn(res(ADDRESS), "cublasLtMatmulDescDestroy");
    // cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
    //     cublasLtMatmulDescAttributes_t attr, const void *buf, size_t sizeInBytes)
    private static final NativeFunction cublasLtMatmulDescSetAttribute =
            fn(res(ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG), "cublasLtMatmulDescSetAttribute");
    // cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type,
    //     uint64_t rows, uint64_t cols, int64_t ld)
    private static final NativeFunction cublasLtMatrixLayoutCreate =
            fn(res(ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG), "cublasLtMatrixLayoutCreate");
    // cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout)
    private static final NativeFunction cublasLtMatrixLayoutDestroy = fn(res(ADDRESS), "cublasLtMatrixLayoutDestroy");
    // cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref)
    private static final NativeFunction cublasLtMatmulPreferenceCreate =
            fn(res(ADDRESS), "cublasLtMatmulPreferenceCreate");
    // cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref)
    private static final NativeFunction cublasLtMatmulPreferenceDestroy =
            fn(res(ADDRESS), "cublasLtMatmulPreferenceDestroy");
    // cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
    //     cublasLtMatmulPreferenceAttributes_t attr, const void *buf, size_t sizeInBytes)
    private static final NativeFunction cublasLtMatmulPreferenceSetAttribute =
            fn(res(ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG), "cublasLtMatmulPreferenceSetAttribute");
    // cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle,
    //     cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
    //     cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc, cublasLtMatmulPreference_t preference,
    //     int requestedAlgoCount, cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int *returnAlgoCount)
    private static final NativeFunction cublasLtMatmulAlgoGetHeuristic = fn(res(ADDRESS, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS), "cublasLtMatmulAlgoGetHeuristic");
    // cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
    //     const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc, const void *B,
    //     cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc,
    //     void *D, cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo, void *workspace,
    //     size_t workspaceSizeInBytes, cudaStream_t stream)
    private static final NativeFunction cublasLtMatmul = fn(res(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS,
            JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG,
            ADDRESS), "cublasLtMatmul");

    /** {@return true when libcublasLt loads}; never throws. */
    public static boolean isAvailable() {
        return NativeLibrary.isLoadable(LIB, "rlsr.lib.cublaslt", "libcublasLt.so.13", "libcublasLt.so.12");
    }

    private static void check(NativeFunction f, int status) {
        if (status != Cublas.CUBLAS_STATUS_SUCCESS) {
            throw new CudaException(f.name(), status,
                    Cublas.cString(cublasLtGetStatusName, status, "cublasStatus_t " + status),
                    Cublas.cString(cublasLtGetStatusString, status, ""));
        }
    }

    /** {@return the cuBLASLt version, e.g. 130000 + ... for 13.0} */
    public static long version() {
        try {
            return (long) cublasLtGetVersion.handle().invokeExact();
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private final long handle;
    private boolean closed;

    private CublasLt(long handle) {
        this.handle = handle;
    }

    /**
     * A cuBLASLt handle ({@code cublasLtCreate}), made with the context of the calling thread current.
     *
     * @return the handle; close it when done
     */
    public static CublasLt create() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cublasLtCreate, (int) cublasLtCreate.handle().invokeExact(out));
            return new CublasLt(out.get(ADDRESS, 0).address());
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /** {@return the {@code cublasLtHandle_t}} */
    public long handle() {
        return handle;
    }

    // ---- descriptor primitives (each returns the handle as a long; destroy with the matching call) ----------
    /**
     * A matmul descriptor; destroy it with {@link #matmulDescDestroy}.
     *
     * @param computeType e.g. {@code Cublas.CUBLAS_COMPUTE_32F}
     * @param scaleType   the type of alpha and beta, e.g. {@code Cublas.CUDA_R_32F}
     * @return the {@code cublasLtMatmulDesc_t}
     */
    public static long matmulDescCreate(int computeType, int scaleType) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cublasLtMatmulDescCreate, (int) cublasLtMatmulDescCreate.handle().invokeExact(out, computeType,
                    scaleType));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Sets an int32 attribute, e.g. {@link #CUBLASLT_MATMUL_DESC_TRANSA} to {@code Cublas.CUBLAS_OP_T}.
     *
     * @param desc  a matmul descriptor
     * @param attr  a {@code CUBLASLT_MATMUL_DESC_*} constant
     * @param value the attribute's value
     */
    public static void matmulDescSetAttribute(long desc, int attr, int value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_INT, value);
            check(cublasLtMatmulDescSetAttribute, (int) cublasLtMatmulDescSetAttribute.handle().invokeExact(
                    MemorySegment.ofAddress(desc), attr, v, JAVA_INT.byteSize()));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Destroys a matmul descriptor.
     *
     * @param desc a descriptor from {@link #matmulDescCreate}
     */
    public static void matmulDescDestroy(long desc) {
        try {
            check(cublasLtMatmulDescDestroy,
                    (int) cublasLtMatmulDescDestroy.handle().invokeExact(MemorySegment.ofAddress(desc)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * A column-major matrix layout of {@code rows x cols} with leading dimension {@code ld}; destroy it with
     * {@link #matrixLayoutDestroy}.
     *
     * @param dataType a {@code cudaDataType_t}, e.g. {@code Cublas.CUDA_R_16BF}
     * @param rows     rows
     * @param cols     columns
     * @param ld       leading dimension (&gt;= rows)
     * @return the {@code cublasLtMatrixLayout_t}
     */
    public static long matrixLayoutCreate(int dataType, long rows, long cols, long ld) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cublasLtMatrixLayoutCreate, (int) cublasLtMatrixLayoutCreate.handle().invokeExact(out, dataType,
                    rows, cols, ld));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Destroys a matrix layout.
     *
     * @param layout a layout from {@link #matrixLayoutCreate}
     */
    public static void matrixLayoutDestroy(long layout) {
        try {
            check(cublasLtMatrixLayoutDestroy,
                    (int) cublasLtMatrixLayoutDestroy.handle().invokeExact(MemorySegment.ofAddress(layout)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * {@code D = C = alpha op(A) op(B) + beta C} with fp32 compute and fp32 scalars, column-major, asynchronous on
     * {@code stream}.
     *
     * @param transa         {@code Cublas.CUBLAS_OP_N} or {@code CUBLAS_OP_T}: op(A)
     * @param transb         {@code Cublas.CUBLAS_OP_N} or {@code CUBLAS_OP_T}: op(B)
     * @param m              rows of op(A) and C
     * @param n              columns of op(B) and C
     * @param k              columns of op(A), rows of op(B)
     * @param alpha          scale of the product
     * @param a              device address of A
     * @param aType          CUDA_R_32F or CUDA_R_16BF (B the same)
     * @param lda            leading dimension of A
     * @param b              device address of B
     * @param bType          B's type, equal to {@code aType}
     * @param ldb            leading dimension of B
     * @param beta           scale of the old C
     * @param c              device address of C, also the output D
     * @param cType          type of C/D (CUDA_R_32F, or CUDA_R_16BF with bf16 inputs)
     * @param ldc            leading dimension of C
     * @param workspace      device buffer for the algorithm (0 with {@code workspaceBytes} 0 is allowed; 32 MiB
     *                       lets the heuristic pick the fastest kernels on Hopper)
     * @param workspaceBytes size of the workspace
     * @param stream         a CUstream, 0 for the legacy default stream
     */
    public void matmul(int transa, int transb, int m, int n, int k, float alpha, long a, int aType, long lda, long b,
            int bType, long ldb, float beta, long c, int cType, long ldc, long workspace, long workspaceBytes,
            long stream) {
        if (closed) {
            throw new IllegalStateException("cuBLASLt handle already destroyed");
        }
        if (m <= 0 || n <= 0 || k <= 0) {
            throw new IllegalArgumentException("cublasLt matmul sizes must be positive: m=" + m + " n=" + n + " k=" + k);
        }
        long rowsA = transa == Cublas.CUBLAS_OP_N ? m : k;
        long colsA = transa == Cublas.CUBLAS_OP_N ? k : m;
        long rowsB = transb == Cublas.CUBLAS_OP_N ? k : n;
        long colsB = transb == Cublas.CUBLAS_OP_N ? n : k;
        if (lda < rowsA || ldb < rowsB || ldc < m) {
            throw new IllegalArgumentException("column-major leading dimensions too small: lda=" + lda + " (>= "
                    + rowsA + "), ldb=" + ldb + " (>= " + rowsB + "), ldc=" + ldc + " (>= " + m + ")");
        }
        long desc = 0, la = 0, lb = 0, lc = 0, pref = 0;
        try (Arena arena = Arena.ofConfined()) {
            desc = matmulDescCreate(Cublas.CUBLAS_COMPUTE_32F, Cublas.CUDA_R_32F);
            matmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, transa);
            matmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, transb);
            la = matrixLayoutCreate(aType, rowsA, colsA, lda);
            lb = matrixLayoutCreate(bType, rowsB, colsB, ldb);
            lc = matrixLayoutCreate(cType, m, n, ldc);

            MemorySegment prefOut = arena.allocate(ADDRESS);
            check(cublasLtMatmulPreferenceCreate, (int) cublasLtMatmulPreferenceCreate.handle().invokeExact(prefOut));
            pref = prefOut.get(ADDRESS, 0).address();
            MemorySegment ws = arena.allocateFrom(JAVA_LONG, workspaceBytes); // uint64_t
            check(cublasLtMatmulPreferenceSetAttribute, (int) cublasLtMatmulPreferenceSetAttribute.handle()
                    .invokeExact(MemorySegment.ofAddress(pref), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws,
                            JAVA_LONG.byteSize()));

            MemorySegment result = arena.allocate(HEURISTIC_RESULT);
            MemorySegment returned = arena.allocate(JAVA_INT);
            MemorySegment pDesc = MemorySegment.ofAddress(desc);
            MemorySegment pa = MemorySegment.ofAddress(la);
            MemorySegment pb = MemorySegment.ofAddress(lb);
            MemorySegment pc = MemorySegment.ofAddress(lc);
            check(cublasLtMatmulAlgoGetHeuristic, (int) cublasLtMatmulAlgoGetHeuristic.handle().invokeExact(
                    MemorySegment.ofAddress(handle), pDesc, pa, pb, pc, pc, MemorySegment.ofAddress(pref), 1, result,
                    returned));
            if (returned.get(JAVA_INT, 0) < 1) {
                throw new CudaException(cublasLtMatmulAlgoGetHeuristic.name(), 15, "CUBLAS_STATUS_NOT_SUPPORTED",
                        "no algorithm for m=" + m + " n=" + n + " k=" + k + " types " + aType + "/" + bType + "/"
                                + cType + " within " + workspaceBytes + " workspace bytes");
            }
            MemorySegment al = arena.allocateFrom(JAVA_FLOAT, alpha);
            MemorySegment be = arena.allocateFrom(JAVA_FLOAT, beta);
            // the algo is the first 64 bytes of the heuristic result
            check(cublasLtMatmul, (int) cublasLtMatmul.handle().invokeExact(MemorySegment.ofAddress(handle), pDesc,
                    al, a, pa, b, pb, be, c, pc, c, pc, result, workspace, workspaceBytes,
                    MemorySegment.ofAddress(stream)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        } finally {
            destroyQuietly(pref, lc, lb, la, desc);
        }
    }

    private static void destroyQuietly(long pref, long lc, long lb, long la, long desc) {
        try {
            if (pref != 0) {
                int ignored = (int) cublasLtMatmulPreferenceDestroy.handle().invokeExact(MemorySegment.ofAddress(pref));
            }
            for (long l : new long[] {lc, lb, la}) {
                if (l != 0) {
                    int ignored = (int) cublasLtMatrixLayoutDestroy.handle().invokeExact(MemorySegment.ofAddress(l));
                }
            }
            if (desc != 0) {
                int ignored = (int) cublasLtMatmulDescDestroy.handle().invokeExact(MemorySegment.ofAddress(desc));
            }
        } catch (Throwable t) {
            // cleanup after a failure must not hide the original exception
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            try {
                check(cublasLtDestroy, (int) cublasLtDestroy.handle().invokeExact(MemorySegment.ofAddress(handle)));
            } catch (Throwable t) {
                throw CudaDriver.rethrow(t);
            }
        }
    }
}
