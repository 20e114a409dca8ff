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
 * {@code D (m,n) = alpha op(A) op(B) + beta C (+ bias)}, column-major like {@link Cublas} (see there for the
 * row-major trick).
 *
 * <p>Two levels. {@link #matmul} is the one-call form (C and D the same buffer): it builds the descriptors, asks
 * the heuristic for an algorithm within the given workspace, runs it and destroys everything again. The static
 * primitives (descriptor, layout and preference create/set/destroy, {@link #algoGetHeuristic},
 * {@link #matmulRaw}) are for callers that cache descriptors and algorithms per shape, such as
 * {@code dev.rlsr.kernels.Gemm}: {@link #matmulRaw} and {@link #matmulDescSetAttributeRaw} take every pointer as a
 * {@code long} and allocate nothing on the Java heap, so a steady-state GEMM costs one downcall.
 *
 * <p>Attribute values follow cublasLt.h (CUDA 12/13). The CUDA emulator implements the ones bound here: TRANSA/TRANSB,
 * EPILOGUE (DEFAULT, BIAS, BGRADB), BIAS_POINTER, BIAS_DATA_TYPE, POINTER_MODE (host), layout
 * BATCH_COUNT/STRIDED_BATCH_OFFSET, preference MAX_WORKSPACE_BYTES; it accepts the preference hints
 * REDUCTION_SCHEME_MASK and MIN_ALIGNMENT_* and has nothing to change for them (one fp32 loop, no alignment needs).
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class CublasLt implements AutoCloseable {
    // cublasLtMatmulDescAttributes_t
    public static final int CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0;
    public static final int CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1;
    public static final int CUBLASLT_MATMUL_DESC_POINTER_MODE = 2;
    public static final int CUBLASLT_MATMUL_DESC_TRANSA = 3;
    public static final int CUBLASLT_MATMUL_DESC_TRANSB = 4;
    /** uint32_t cublasLtEpilogue_t, default {@link #CUBLASLT_EPILOGUE_DEFAULT}. */
    public static final int CUBLASLT_MATMUL_DESC_EPILOGUE = 7;
    /** const void* (8 bytes): the bias vector, or the bias gradient output of BGRADB. */
    public static final int CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8;
    /** int32_t cudaDataType_t of the bias; default: the type of D. */
    public static final int CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26;
    // cublasLtPointerMode_t
    public static final int CUBLASLT_POINTER_MODE_HOST = 0;
    // cublasLtEpilogue_t
    public static final int CUBLASLT_EPILOGUE_DEFAULT = 1;
    /** D += bias broadcast over the columns of the column-major D (bias length = rows of D). */
    public static final int CUBLASLT_EPILOGUE_BIAS = 4;
    /** bias gradient = sum over k of op(B) (length = columns of D), written to the bias pointer. */
    public static final int CUBLASLT_EPILOGUE_BGRADB = 512;
    // cublasLtMatrixLayoutAttribute_t
    /** int32_t, default 1. */
    public static final int CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5;
    /** int64_t, in elements, default 0. */
    public static final int CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6;
    // cublasLtMatmulPreferenceAttributes_t
    public static final int CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0;
    /** uint64_t, default 0 (no workspace). */
    public static final int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;
    /** uint32_t mask of cublasLtReductionScheme_t bits; default: every scheme. */
    public static final int CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = 3;
    /** uint32_t; the heuristic assumes 256-byte aligned A unless told otherwise (same for B, C, D below). */
    public static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5;
    public static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6;
    public static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7;
    public static final int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8;
    // cublasLtReductionScheme_t (split-K): NONE is 0, so a mask always allows it
    public static final int CUBLASLT_REDUCTION_SCHEME_NONE = 0;
    /** split-K partial sums reduced in the output buffer, in the output type. */
    public static final int CUBLASLT_REDUCTION_SCHEME_INPLACE = 1;
    /** split-K partial sums kept in the compute type in the workspace. */
    public static final int CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE = 2;
    /** split-K partial sums stored in the output type in the workspace. */
    public static final int CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE = 4;

    /**
     * cublasLtMatmulHeuristicResult_t: {cublasLtMatmulAlgo_t algo (uint64_t data[8]); size_t workspaceSize;
     * cublasStatus_t state; float wavesCount; int reserved[4];} = 96 bytes.
     */
    public static final MemoryLayout HEURISTIC_RESULT = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8, JAVA_LONG).withName("algo"),
            JAVA_LONG.withName("workspaceSize"),
            JAVA_INT.withName("state"),
            JAVA_FLOAT.withName("wavesCount"),
            MemoryLayout.sequenceLayout(4, JAVA_INT).withName("reserved"));
    /** Offset of {@code size_t workspaceSize} in a heuristic result; the algorithm is bytes [0, 64). */
    public static final long HEURISTIC_WORKSPACE_OFFSET = 64;
    /** Offset of {@code cublasStatus_t state} in a heuristic result. */
    public static final long HEURISTIC_STATE_OFFSET = 72;

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

    // the same functions bound with every pointer as a 64-bit integer (same registers in the C ABI), for the
    // allocation-free steady-state path: an ADDRESS parameter would box a MemorySegment per call
    private static final NativeFunction cublasLtMatmulRaw = fn(res(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
            JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
            JAVA_LONG, JAVA_LONG), "cublasLtMatmul");
    private static final NativeFunction cublasLtMatmulDescSetAttributeRaw =
            fn(res(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG), "cublasLtMatmulDescSetAttribute");
    // cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout,
    //     cublasLtMatrixLayoutAttribute_t attr, const void *buf, size_t sizeInBytes)
    private static final NativeFunction cublasLtMatrixLayoutSetAttribute =
            fn(res(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), "cublasLtMatrixLayoutSetAttribute");
    // cublasLtMatmulAlgoGetHeuristic with the handles as integers (see cublasLtMatmulAlgoGetHeuristic above)
    private static final NativeFunction cublasLtMatmulAlgoGetHeuristicRaw = fn(res(JAVA_LONG, JAVA_LONG, JAVA_LONG,
            JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS), "cublasLtMatmulAlgoGetHeuristic");

    /**
     * Whether libcublasLt loads; never throws.
     *
     * @return true when the library was found
     */
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

    /**
     * The cuBLASLt version.
     *
     * @return e.g. 130000 + ... for 13.0
     */
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
     * A cuBLASLt handle.
     *
     * @return the handle; close it to destroy
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

    /**
     * The handle.
     *
     * @return the cublasLtHandle_t
     */
    public long handle() {
        return handle;
    }

    // ---- descriptor primitives (each returns the handle as a long; destroy with the matching call) ----------
    /**
     * A matmul descriptor (destroy with {@link #matmulDescDestroy}).
     *
     * @param computeType e.g. {@code Cublas.CUBLAS_COMPUTE_32F}
     * @param scaleType   type of alpha and beta, e.g. {@code Cublas.CUDA_R_32F}
     * @return the cublasLtMatmulDesc_t
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
     * Sets a 4-byte attribute, e.g. {@link #CUBLASLT_MATMUL_DESC_TRANSA} to {@code Cublas.CUBLAS_OP_T}.
     *
     * @param desc  the matmul descriptor
     * @param attr  the attribute
     * @param value the int32/uint32 value
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
     * @param desc the cublasLtMatmulDesc_t
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
     * A column-major matrix layout (destroy with {@link #matrixLayoutDestroy}).
     *
     * @param dataType the element type ({@code cudaDataType_t})
     * @param rows     rows
     * @param cols     columns
     * @param ld       leading dimension (elements between two columns, >= rows)
     * @return the cublasLtMatrixLayout_t
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
     * @param layout the cublasLtMatrixLayout_t
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
     * Sets an 8-byte attribute, e.g. {@link #CUBLASLT_MATMUL_DESC_BIAS_POINTER}.
     *
     * @param desc  the matmul descriptor
     * @param attr  the attribute
     * @param value the int64/uint64/pointer value
     */
    public static void matmulDescSetAttribute64(long desc, int attr, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_LONG, value);
            matmulDescSetAttributeRaw(desc, attr, v.address(), JAVA_LONG.byteSize());
        }
    }

    /**
     * {@code cublasLtMatmulDescSetAttribute} from a value already in native memory: allocates nothing, for
     * attributes that change between calls of a cached descriptor (the bias pointer).
     *
     * @param desc  the matmul descriptor
     * @param attr  the attribute
     * @param buf   address of the value in host memory
     * @param bytes size of the value
     */
    public static void matmulDescSetAttributeRaw(long desc, int attr, long buf, long bytes) {
        try {
            check(cublasLtMatmulDescSetAttributeRaw,
                    (int) cublasLtMatmulDescSetAttributeRaw.handle().invokeExact(desc, attr, buf, bytes));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Sets an int32 layout attribute, e.g. {@link #CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT}.
     *
     * @param layout the matrix layout
     * @param attr   the attribute
     * @param value  the value
     */
    public static void matrixLayoutSetAttribute(long layout, int attr, int value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_INT, value);
            check(cublasLtMatrixLayoutSetAttribute, (int) cublasLtMatrixLayoutSetAttribute.handle().invokeExact(layout,
                    attr, v, JAVA_INT.byteSize()));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Sets an int64 layout attribute, e.g. {@link #CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET}.
     *
     * @param layout the matrix layout
     * @param attr   the attribute
     * @param value  the value
     */
    public static void matrixLayoutSetAttribute64(long layout, int attr, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_LONG, value);
            check(cublasLtMatrixLayoutSetAttribute, (int) cublasLtMatrixLayoutSetAttribute.handle().invokeExact(layout,
                    attr, v, JAVA_LONG.byteSize()));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * A matmul preference (destroy with {@link #preferenceDestroy}).
     *
     * @return the cublasLtMatmulPreference_t
     */
    public static long preferenceCreate() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cublasLtMatmulPreferenceCreate, (int) cublasLtMatmulPreferenceCreate.handle().invokeExact(out));
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Sets a uint32 preference attribute, e.g. {@link #CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK}.
     *
     * @param pref  the preference
     * @param attr  the attribute
     * @param value the value
     */
    public static void preferenceSetAttribute(long pref, int attr, int value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_INT, value);
            check(cublasLtMatmulPreferenceSetAttribute, (int) cublasLtMatmulPreferenceSetAttribute.handle()
                    .invokeExact(MemorySegment.ofAddress(pref), attr, v, JAVA_INT.byteSize()));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Sets a uint64 preference attribute, e.g. {@link #CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES}.
     *
     * @param pref  the preference
     * @param attr  the attribute
     * @param value the value
     */
    public static void preferenceSetAttribute64(long pref, int attr, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_LONG, value);
            check(cublasLtMatmulPreferenceSetAttribute, (int) cublasLtMatmulPreferenceSetAttribute.handle()
                    .invokeExact(MemorySegment.ofAddress(pref), attr, v, JAVA_LONG.byteSize()));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Destroys a preference.
     *
     * @param pref the cublasLtMatmulPreference_t
     */
    public static void preferenceDestroy(long pref) {
        try {
            check(cublasLtMatmulPreferenceDestroy,
                    (int) cublasLtMatmulPreferenceDestroy.handle().invokeExact(MemorySegment.ofAddress(pref)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * {@code cublasLtMatmulAlgoGetHeuristic}: up to {@code requested} algorithms, best first, into {@code results}
     * ({@code requested} consecutive {@link #HEURISTIC_RESULT}s).
     *
     * @param handle    the cublasLtHandle_t
     * @param desc      the matmul descriptor
     * @param a         layout of A
     * @param b         layout of B
     * @param c         layout of C
     * @param d         layout of D
     * @param pref      the preference
     * @param results   where the results go
     * @param requested how many results to ask for (>= 1)
     * @return how many results were written (0: no algorithm for this problem)
     */
    public static int algoGetHeuristic(long handle, long desc, long a, long b, long c, long d, long pref,
            MemorySegment results, int requested) {
        if (requested < 1 || results.byteSize() < requested * HEURISTIC_RESULT.byteSize()) {
            throw new IllegalArgumentException("algoGetHeuristic: results (" + results.byteSize() + " bytes) must hold "
                    + requested + " (>= 1) results of " + HEURISTIC_RESULT.byteSize() + " bytes");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment returned = arena.allocate(JAVA_INT);
            check(cublasLtMatmulAlgoGetHeuristicRaw, (int) cublasLtMatmulAlgoGetHeuristicRaw.handle().invokeExact(
                    handle, desc, a, b, c, d, pref, requested, results, returned));
            return returned.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * {@code cublasLtMatmul} with every argument an address: allocates nothing. alpha and beta are read from host
     * memory during the call (host pointer mode); A, B, C, D, the workspace and the stream are device-side.
     *
     * @param handle         the cublasLtHandle_t
     * @param desc           the matmul descriptor
     * @param alphaHost      host address of alpha (the descriptor's scale type)
     * @param a              device address of A
     * @param aLayout        layout of A
     * @param b              device address of B
     * @param bLayout        layout of B
     * @param betaHost       host address of beta
     * @param c              device address of C
     * @param cLayout        layout of C
     * @param d              device address of D (may equal {@code c}; then pass the same layout twice)
     * @param dLayout        layout of D
     * @param algoHost       host address of the cublasLtMatmulAlgo_t (a heuristic result's first 64 bytes)
     * @param workspace      device workspace (0 with {@code workspaceBytes} 0 is allowed)
     * @param workspaceBytes size of the workspace
     * @param stream         the CUstream / cudaStream_t
     */
    public static void matmulRaw(long handle, long desc, long alphaHost, long a, long aLayout, long b, long bLayout,
            long betaHost, long c, long cLayout, long d, long dLayout, long algoHost, long workspace,
            long workspaceBytes, long stream) {
        int status;
        try {
            status = (int) cublasLtMatmulRaw.handle().invokeExact(handle, desc, alphaHost, a, aLayout, b, bLayout,
                    betaHost, c, cLayout, d, dLayout, algoHost, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
        check(cublasLtMatmulRaw, status);
    }

    /**
     * {@code D = C = alpha op(A) op(B) + beta C} with fp32 compute and fp32 scalars, column-major; builds and destroys
     * its descriptors on every call (see {@code dev.rlsr.kernels.Gemm} for the cached form).
     *
     * @param transa         {@code Cublas.CUBLAS_OP_N} or {@code CUBLAS_OP_T}
     * @param transb         the same for B
     * @param m              rows of C
     * @param n              columns of C
     * @param k              the reduced dimension
     * @param alpha          scale of the product
     * @param a              A (device)
     * @param aType          CUDA_R_32F or CUDA_R_16BF (B the same)
     * @param lda            leading dimension of A
     * @param b              B (device)
     * @param bType          type of B
     * @param ldb            leading dimension of B
     * @param beta           scale of C
     * @param c              C, overwritten with D (device)
     * @param cType          type of C/D (CUDA_R_32F, or CUDA_R_16BF with bf16 inputs)
     * @param ldc            leading dimension of C
     * @param workspace      device buffer for the algorithm (0 with {@code workspaceBytes} 0 is allowed; 32 MiB
     *                       lets the heuristic pick the fastest kernels on Hopper)
     * @param workspaceBytes its size
     * @param stream         the stream
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
