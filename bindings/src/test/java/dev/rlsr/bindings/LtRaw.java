package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;

/**
 * The cuBLASLt calls {@link CublasLt} does not bind yet (matrix layout attributes, pointer-valued descriptor
 * attributes, a D distinct from C), bound here for the GEMM contract tests. Status codes are returned, not thrown.
 */
@SuppressWarnings("restricted") // FFM downcalls are the point of this class
final class LtRaw {
    // cublasLtMatmulDescAttributes_t (cublasLt.h)
    static final int DESC_TRANSA = 3;
    static final int DESC_TRANSB = 4;
    static final int DESC_EPILOGUE = 7;
    static final int DESC_BIAS_POINTER = 8;
    static final int DESC_BIAS_BATCH_STRIDE = 10;
    static final int DESC_BIAS_DATA_TYPE = 26;
    // cublasLtMatrixLayoutAttribute_t
    static final int LAYOUT_ORDER = 1;
    static final int LAYOUT_BATCH_COUNT = 5;
    static final int LAYOUT_STRIDED_BATCH_OFFSET = 6;
    // cublasLtEpilogue_t
    static final int EPILOGUE_DEFAULT = 1;
    static final int EPILOGUE_RELU = 2;
    static final int EPILOGUE_BIAS = 4;
    static final int EPILOGUE_BGRADA = 256;
    static final int EPILOGUE_BGRADB = 512;
    // cublasLtOrder_t
    static final int ORDER_ROW = 1;
    static final int CUBLAS_STATUS_NOT_SUPPORTED = 15;

    private static final String LIB = "cublasLt";

    private static NativeFunction fn(FunctionDescriptor fd, String name) {
        return new NativeFunction(LIB, () -> NativeLibrary.load(LIB, "rlsr.lib.cublaslt", "libcublasLt.so.13",
                "libcublasLt.so.12"), fd, name);
    }

    private static final NativeFunction descSet = fn(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS,
            JAVA_LONG), "cublasLtMatmulDescSetAttribute");
    private static final NativeFunction layoutSet = fn(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS,
            JAVA_LONG), "cublasLtMatrixLayoutSetAttribute");
    private static final NativeFunction matmul = fn(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS,
            JAVA_LONG, JAVA_LONG, ADDRESS), "cublasLtMatmul");

    private LtRaw() {}

    static void descInt(long desc, int attr, int value) {
        try (Arena a = Arena.ofConfined()) {
            check("cublasLtMatmulDescSetAttribute", (int) descSet.handle().invokeExact(MemorySegment.ofAddress(desc),
                    attr, a.allocateFrom(JAVA_INT, value), 4L));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    static void descLong(long desc, int attr, long value) {
        try (Arena a = Arena.ofConfined()) {
            check("cublasLtMatmulDescSetAttribute", (int) descSet.handle().invokeExact(MemorySegment.ofAddress(desc),
                    attr, a.allocateFrom(JAVA_LONG, value), 8L));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    static void layoutInt(long layout, int attr, int value) {
        try (Arena a = Arena.ofConfined()) {
            check("cublasLtMatrixLayoutSetAttribute", (int) layoutSet.handle().invokeExact(
                    MemorySegment.ofAddress(layout), attr, a.allocateFrom(JAVA_INT, value), 4L));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    static void layoutLong(long layout, int attr, long value) {
        try (Arena a = Arena.ofConfined()) {
            check("cublasLtMatrixLayoutSetAttribute", (int) layoutSet.handle().invokeExact(
                    MemorySegment.ofAddress(layout), attr, a.allocateFrom(JAVA_LONG, value), 8L));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /** {@code D = alpha op(A) op(B) + beta C} with the library's own heuristic (algo NULL); returns the status. */
    static int matmul(long handle, long desc, float alpha, long a, long la, long b, long lb, float beta, long c,
            long lc, long d, long ld, long stream) {
        try (Arena arena = Arena.ofConfined()) {
            return (int) matmul.handle().invokeExact(MemorySegment.ofAddress(handle), MemorySegment.ofAddress(desc),
                    arena.allocateFrom(JAVA_FLOAT, alpha), a, MemorySegment.ofAddress(la), b,
                    MemorySegment.ofAddress(lb), arena.allocateFrom(JAVA_FLOAT, beta), c, MemorySegment.ofAddress(lc),
                    d, MemorySegment.ofAddress(ld), MemorySegment.NULL, 0L, 0L,
                    MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private static void check(String fn, int status) {
        if (status != 0) {
            throw new CudaException(fn, status, "cublasStatus_t " + status, "");
        }
    }
}
