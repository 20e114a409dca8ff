package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.kernels.Gemm.Epilogue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** The host-side checks of {@link Gemm}: they run before anything native, so no GPU is needed. */
class GemmPreconditionsTest {
    // fake device addresses, 256-byte aligned and far apart
    private static final long A = 0x10000000L, B = 0x20000000L, C = 0x30000000L, D = 0x40000000L, BIAS = 0x50000000L;

    /** A valid (4,5) = (4,3) (3,5) bf16 -> f32 problem; each test changes one thing. */
    private static void call(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
            long strideA, long b, int ldb, long strideB, DType ab, float beta, long c, int ldc, long strideC, long d,
            int ldd, long strideD, DType cd, int batch, Epilogue e, long bias, DType biasType) {
        Gemm.check(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, ab, beta, c, ldc, strideC, d, ldd,
                strideD, cd, batch, e, bias, biasType);
    }

    private static void rejects(String fragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' should name '"
                + fragment + "'");
    }

    @Test
    void validProblemsPass() {
        assertDoesNotThrow(() -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.BF16, 0f, D, 5, 0, D, 5, 0,
                DType.F32, 1, Epilogue.NONE, 0, null));
        assertDoesNotThrow(() -> call(true, true, 4, 5, 3, 1f, A, 4, 0, B, 3, 0, DType.F32, 1f, C, 7, 0, D, 6, 0,
                DType.F32, 1, Epilogue.BIAS, BIAS, DType.F32));
        assertDoesNotThrow(() -> call(false, true, 4, 5, 3, 1f, A, 3, 12, B, 3, 0, DType.BF16, 1f, D, 5, 20, D, 5, 20,
                DType.BF16, 3, Epilogue.BIAS, BIAS, DType.BF16));
    }

    @Test
    void typesAndSizes() {
        rejects("F32 inputs need an F32 output", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 0f,
                D, 5, 0, D, 5, 0, DType.BF16, 1, Epilogue.NONE, 0, null));
        rejects("abType", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.I32, 0f, D, 5, 0, D, 5, 0,
                DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("cdType", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.BF16, 0f, D, 5, 0, D, 5, 0,
                DType.F16, 1, Epilogue.NONE, 0, null));
        rejects("k (the reduced dimension)", () -> call(false, false, 4, 5, 0, 1f, A, 3, 0, B, 5, 0, DType.F32, 0f, D,
                5, 0, D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("batch", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 0f, D, 5, 0, D, 5, 0,
                DType.F32, 0, Epilogue.NONE, 0, null));
    }

    @Test
    void leadingDimensionsNameTheMatrixAsStored() {
        rejects("lda=3 is smaller than the 4 columns", () -> call(true, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0,
                DType.F32, 0f, D, 5, 0, D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("ldb=4 is smaller than the 5 columns of the matrix (B is stored (K,N)", () -> call(false, false, 4,
                5, 3, 1f, A, 3, 0, B, 4, 0, DType.F32, 0f, D, 5, 0, D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("ldb=2 is smaller than the 3 columns of the matrix (B^T", () -> call(false, true, 4, 5, 3, 1f, A, 3, 0,
                B, 2, 0, DType.F32, 0f, D, 5, 0, D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("ldd=4", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 1f, C, 5, 0, D, 4, 0,
                DType.F32, 1, Epilogue.NONE, 0, null));
    }

    @Test
    void pointersAliasingAndBatches() {
        rejects("a is a null device pointer", () -> call(false, false, 4, 5, 3, 1f, 0, 3, 0, B, 5, 0, DType.F32, 0f, D,
                5, 0, D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("must be aligned to 2 bytes", () -> call(false, false, 4, 5, 3, 1f, A + 1, 3, 0, B, 5, 0, DType.BF16,
                0f, D, 5, 0, D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("c is a null device pointer", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 1f, 0,
                5, 0, D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("d and a overlap", () -> call(false, false, 4, 5, 3, 1f, D + 8, 3, 0, B, 5, 0, DType.F32, 0f, D, 5, 0,
                D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("c and d overlap", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 1f, D + 20, 5, 0,
                D, 5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("needs ldc == ldd", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 1f, D, 6, 0, D,
                5, 0, DType.F32, 1, Epilogue.NONE, 0, null));
        rejects("batches of D overlap", () -> call(false, false, 4, 5, 3, 1f, A, 3, 12, B, 5, 15, DType.F32, 0f, D, 5,
                19, D, 5, 19, DType.F32, 2, Epilogue.NONE, 0, null));
        rejects("strides must be >= 0", () -> call(false, false, 4, 5, 3, 1f, A, 3, -1, B, 5, 15, DType.F32, 0f, D, 5,
                20, D, 5, 20, DType.F32, 2, Epilogue.NONE, 0, null));
    }

    @Test
    void epilogues() {
        rejects("epilogue NONE", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 0f, D, 5, 0, D, 5,
                0, DType.F32, 1, Epilogue.NONE, BIAS, DType.F32));
        rejects("bias is a null device pointer", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 0f,
                D, 5, 0, D, 5, 0, DType.F32, 1, Epilogue.BIAS, 0, DType.F32));
        rejects("must be F32 or the type of D", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 0f,
                D, 5, 0, D, 5, 0, DType.F32, 1, Epilogue.BIAS, BIAS, DType.BF16));
        rejects("an F32 bias with a BF16 D", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.BF16, 0f,
                D, 5, 0, D, 5, 0, DType.BF16, 1, Epilogue.BIAS, BIAS, DType.F32));
        rejects("needs alpha = 1", () -> call(true, false, 4, 5, 3, 2f, A, 4, 0, B, 5, 0, DType.F32, 0f, D, 5, 0, D, 5,
                0, DType.F32, 1, Epilogue.BIAS_GRADIENT, BIAS, DType.F32));
        rejects("single batch", () -> call(true, false, 4, 5, 3, 1f, A, 4, 12, B, 5, 15, DType.F32, 0f, D, 5, 20, D, 5,
                20, DType.F32, 2, Epilogue.BIAS_GRADIENT, BIAS, DType.F32));
        rejects("bias and d overlap", () -> call(false, false, 4, 5, 3, 1f, A, 3, 0, B, 5, 0, DType.F32, 0f, D, 5, 0,
                D, 5, 0, DType.F32, 1, Epilogue.BIAS, D + 4, DType.F32));
    }
}
