package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.Sgemm;

/**
 * {@link Gemm}'s contract on the CPU, on {@code float[]} arrays with element offsets, through
 * {@link dev.rlsr.kernels.cpu.Sgemm} (fp32, multithreaded):
 * {@code D (M,N) = alpha * op(A) . op(B) + beta * C (+ bias (N) broadcast over the rows)}, row-major with leading
 * dimensions, strided batches and the same epilogues.
 *
 * <p>BF16 is simulated: the arrays of BF16 operands hold the widened bf16 values ({@link BF16#toFloat}) and are used
 * as they are; a BF16 D is rounded to bf16 (nearest even) once, after beta*C and the bias were added in fp32, as
 * cuBLASLt does. A BF16 bias gradient is rounded once after its fp32 sum. C and D may be the same region of the same
 * array (in place); otherwise C is read before D is written, so any two arrays work.
 */
public final class GemmReference {
    private GemmReference() {
    }

    /**
     * {@code D (M,N) = alpha op(A) op(B) + beta C}.
     *
     * @param transA use A^T: A is stored (K,M)
     * @param transB use B^T: B is stored (N,K)
     * @param m      rows of D
     * @param n      columns of D
     * @param k      the reduced dimension
     * @param alpha  scale of the product
     * @param a      A
     * @param aOff   offset of A's first element
     * @param lda    leading dimension of A as stored
     * @param b      B
     * @param bOff   offset of B's first element
     * @param ldb    leading dimension of B as stored
     * @param abType type of A and B (F32 or BF16)
     * @param beta   scale of C (0: C is not read and may be null)
     * @param c      C
     * @param cOff   offset of C
     * @param ldc    leading dimension of C
     * @param d      D (output)
     * @param dOff   offset of D
     * @param ldd    leading dimension of D
     * @param cdType type of C and D (F32 or BF16)
     */
    public static void matmul(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int aOff,
            int lda, float[] b, int bOff, int ldb, DType abType, float beta, float[] c, int cOff, int ldc, float[] d,
            int dOff, int ldd, DType cdType) {
        matmulStridedBatched(transA, transB, m, n, k, alpha, a, aOff, lda, 0, b, bOff, ldb, 0, abType, beta, c, cOff,
                ldc, 0, d, dOff, ldd, 0, cdType, 1, Gemm.Epilogue.NONE, null, 0, null);
    }

    /**
     * {@code D (M,N) = alpha op(A) op(B) + beta C + bias}, bias (N) added to every row.
     *
     * @param transA   use A^T: A is stored (K,M)
     * @param transB   use B^T: B is stored (N,K)
     * @param m        rows of D
     * @param n        columns of D
     * @param k        the reduced dimension
     * @param alpha    scale of the product
     * @param a        A
     * @param aOff     offset of A
     * @param lda      leading dimension of A as stored
     * @param b        B
     * @param bOff     offset of B
     * @param ldb      leading dimension of B as stored
     * @param abType   type of A and B
     * @param beta     scale of C
     * @param c        C
     * @param cOff     offset of C
     * @param ldc      leading dimension of C
     * @param d        D (output)
     * @param dOff     offset of D
     * @param ldd      leading dimension of D
     * @param cdType   type of C and D
     * @param bias     bias (N)
     * @param biasOff  offset of the bias
     * @param biasType F32 or {@code cdType}
     */
    public static void matmulBias(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a,
            int aOff, int lda, float[] b, int bOff, int ldb, DType abType, float beta, float[] c, int cOff, int ldc,
            float[] d, int dOff, int ldd, DType cdType, float[] bias, int biasOff, DType biasType) {
        matmulStridedBatched(transA, transB, m, n, k, alpha, a, aOff, lda, 0, b, bOff, ldb, 0, abType, beta, c, cOff,
                ldc, 0, d, dOff, ldd, 0, cdType, 1, Gemm.Epilogue.BIAS, bias, biasOff, biasType);
    }

    /**
     * {@code D (M,N) = op(A) op(B) + beta C} and {@code dbias (M) = sum_k op(A)[m,k]} (overwritten).
     *
     * @param transA       use A^T: A is stored (K,M)
     * @param transB       use B^T: B is stored (N,K)
     * @param m            rows of D, length of dbias
     * @param n            columns of D
     * @param k            the reduced dimension
     * @param a            A
     * @param aOff         offset of A
     * @param lda          leading dimension of A as stored
     * @param b            B
     * @param bOff         offset of B
     * @param ldb          leading dimension of B as stored
     * @param abType       type of A and B
     * @param beta         scale of C
     * @param c            C
     * @param cOff         offset of C
     * @param ldc          leading dimension of C
     * @param d            D (output)
     * @param dOff         offset of D
     * @param ldd          leading dimension of D
     * @param cdType       type of C and D
     * @param biasGrad     dbias (M), overwritten
     * @param biasGradOff  offset of dbias
     * @param biasGradType F32 or {@code cdType}
     */
    public static void matmulBiasGradient(boolean transA, boolean transB, int m, int n, int k, float[] a, int aOff,
            int lda, float[] b, int bOff, int ldb, DType abType, float beta, float[] c, int cOff, int ldc, float[] d,
            int dOff, int ldd, DType cdType, float[] biasGrad, int biasGradOff, DType biasGradType) {
        matmulStridedBatched(transA, transB, m, n, k, 1f, a, aOff, lda, 0, b, bOff, ldb, 0, abType, beta, c, cOff, ldc,
                0, d, dOff, ldd, 0, cdType, 1, Gemm.Epilogue.BIAS_GRADIENT, biasGrad, biasGradOff, biasGradType);
    }

    /**
     * The general form, as {@link Gemm#matmulStridedBatched}: batch i of X starts {@code i * strideX} elements after
     * X's offset.
     *
     * @param transA   use A^T: A is stored (K,M)
     * @param transB   use B^T: B is stored (N,K)
     * @param m        rows of D
     * @param n        columns of D
     * @param k        the reduced dimension
     * @param alpha    scale of the product
     * @param a        A
     * @param aOff     offset of A
     * @param lda      leading dimension of A as stored
     * @param strideA  elements between two batches of A
     * @param b        B
     * @param bOff     offset of B
     * @param ldb      leading dimension of B as stored
     * @param strideB  elements between two batches of B
     * @param abType   type of A and B
     * @param beta     scale of C
     * @param c        C (may be null when beta = 0)
     * @param cOff     offset of C
     * @param ldc      leading dimension of C
     * @param strideC  elements between two batches of C
     * @param d        D (output)
     * @param dOff     offset of D
     * @param ldd      leading dimension of D
     * @param strideD  elements between two batches of D
     * @param cdType   type of C and D
     * @param batch    number of products
     * @param epilogue what happens after the product
     * @param bias     bias (N) for BIAS, dbias (M) for BIAS_GRADIENT, null for NONE
     * @param biasOff  offset of the bias
     * @param biasType F32 or {@code cdType}; null for NONE
     */
    public static void matmulStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha,
            float[] a, int aOff, int lda, int strideA, float[] b, int bOff, int ldb, int strideB, DType abType,
            float beta, float[] c, int cOff, int ldc, int strideC, float[] d, int dOff, int ldd, int strideD,
            DType cdType, int batch, Gemm.Epilogue epilogue, float[] bias, int biasOff, DType biasType) {
        String op = "GemmReference";
        Gemm.checkTypes(op, abType, cdType);
        Checks.positive(op, "m (rows of D)", m);
        Checks.positive(op, "n (columns of D)", n);
        Checks.positive(op, "k (the reduced dimension)", k);
        Checks.positive(op, "batch", batch);
        if (strideA < 0 || strideB < 0 || strideC < 0 || strideD < 0) {
            throw new IllegalArgumentException(op + ": batch strides must be >= 0");
        }
        if (batch > 1 && strideD < (long) (m - 1) * ldd + n) {
            throw new IllegalArgumentException(op + ": strideD=" + strideD + " makes the batches of D overlap");
        }
        if (c == null && beta != 0f) {
            throw new IllegalArgumentException(op + ": c is null, which is only allowed with beta = 0");
        }
        int biasLength = checkEpilogue(op, epilogue, alpha, batch, m, n, cdType, bias, biasOff, biasType);
        if (epilogue == Gemm.Epilogue.BIAS_GRADIENT) {
            // dbias[i] = sum_k op(A)[i,k], fp32 in k order, rounded once
            for (int i = 0; i < biasLength; i++) {
                float s = 0f;
                for (int p = 0; p < k; p++) {
                    s += transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p];
                }
                bias[biasOff + i] = biasType == DType.BF16 ? BF16.toFloat(BF16.fromFloat(s)) : s;
            }
        }
        for (int i = 0; i < batch; i++) {
            int ai = aOff + i * strideA, bi = bOff + i * strideB, ci = cOff + i * strideC, di = dOff + i * strideD;
            one(transA, transB, m, n, k, alpha, a, ai, lda, b, bi, ldb, beta, c, ci, ldc, d, di, ldd, cdType, epilogue,
                    bias, biasOff, biasType);
        }
    }

    private static int checkEpilogue(String op, Gemm.Epilogue epilogue, float alpha, int batch, int m, int n,
            DType cdType, float[] bias, int biasOff, DType biasType) {
        if (epilogue == null) {
            throw new IllegalArgumentException(op + ": epilogue must be NONE, BIAS or BIAS_GRADIENT, got null");
        }
        if (epilogue == Gemm.Epilogue.NONE) {
            return 0;
        }
        Gemm.checkBiasType(op, epilogue, biasType, cdType);
        int length = epilogue == Gemm.Epilogue.BIAS ? n : m;
        if (bias == null || biasOff < 0 || (long) biasOff + length > bias.length) {
            throw new IllegalArgumentException(op + ": the " + epilogue + " vector needs " + length
                    + " elements from offset " + biasOff + ", got " + (bias == null ? "null" : bias.length + " elements"));
        }
        if (epilogue == Gemm.Epilogue.BIAS_GRADIENT && (alpha != 1f || batch != 1)) {
            throw new IllegalArgumentException(op + ": BIAS_GRADIENT needs alpha = 1 and a single batch, got alpha = "
                    + alpha + ", batch = " + batch);
        }
        return length;
    }

    private static void one(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int aOff,
            int lda, float[] b, int bOff, int ldb, float beta, float[] c, int cOff, int ldc, float[] d, int dOff,
            int ldd, DType cdType, Gemm.Epilogue epilogue, float[] bias, int biasOff, DType biasType) {
        boolean inPlace = c == d && cOff == dOff && ldc == ldd;
        if (beta != 0f && !inPlace) {
            // beta*C is added by Sgemm in place: start D as a copy of C (through a temporary when they share an array)
            float[] src = c;
            int srcOff = cOff, srcLd = ldc;
            if (c == d) {
                src = new float[m * n];
                for (int i = 0; i < m; i++) {
                    System.arraycopy(c, cOff + i * ldc, src, i * n, n);
                }
                srcOff = 0;
                srcLd = n;
            }
            for (int i = 0; i < m; i++) {
                System.arraycopy(src, srcOff + i * srcLd, d, dOff + i * ldd, n);
            }
        }
        Sgemm.sgemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, d, dOff, ldd);
        for (int i = 0; i < m; i++) {
            int row = dOff + i * ldd;
            if (epilogue == Gemm.Epilogue.BIAS) {
                for (int j = 0; j < n; j++) {
                    d[row + j] += bias[biasOff + j];
                }
            }
            if (cdType == DType.BF16) {
                for (int j = 0; j < n; j++) {
                    d[row + j] = BF16.toFloat(BF16.fromFloat(d[row + j]));
                }
            }
        }
    }
}
