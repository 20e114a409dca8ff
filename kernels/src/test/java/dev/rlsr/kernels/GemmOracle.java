package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.Random;

/**
 * The independent side of the GEMM tests: a plain double-precision loop over the row-major contract of {@link Gemm}
 * and {@link GemmReference}, random problems, and the rounding bound each output element is held to.
 *
 * <p><b>Tolerance.</b> Whatever the summation order (blocked, split-K, tree), an fp32 dot product of length K with
 * round-to-nearest is within {@code gamma(K) * sum|a_k b_k|} of the exact value, {@code gamma(n) = n u / (1 - n u)},
 * {@code u = 2^-24}; alpha, beta*C and the bias add four more roundings, so an fp32 D is held to
 * {@code f * gamma(K+4) * (|alpha| sum|a b| + |beta c| + |bias|)}. f = 1 for IEEE fp32 arithmetic (CPU, and FFMA
 * kernels for F32 inputs); f = 2 for BF16 inputs on a GPU, whose tensor cores may truncate rather than round inside
 * their fp32 sums (one ulp instead of half). bf16 inputs are exact in fp32 and so are their products, so the bound
 * needs no input term. A BF16 D adds one rounding to bf16: {@code tol * (1 + 2^-8) + 2^-8 |expected|}; with the bias
 * epilogue a second one, {@code 2^-8 |expected - bias|}: cuBLASLt (13.1, H200) may round alpha AB + beta C to bf16
 * before it adds the bias (split-K algorithms, and beta != 0). TF32 (10-bit mantissas) misses this bound by orders of
 * magnitude at small K.
 */
final class GemmOracle {
    static final double U32 = 0x1p-24;
    static final double U16 = 0x1p-8;

    private GemmOracle() {
    }

    /** One problem, as {@link Gemm#matmulStridedBatched} takes it; {@code inPlace}: C is D. */
    record Problem(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc, int ldd, int batch,
            int strideA, int strideB, int strideC, int strideD, DType abType, DType cdType, float alpha, float beta,
            boolean inPlace, Gemm.Epilogue epilogue, DType biasType) {

        /** A dense single-batch problem with each leading dimension {@code pad} larger than needed. */
        static Problem of(boolean transA, boolean transB, int m, int n, int k, int pad, DType abType, DType cdType,
                float alpha, float beta) {
            int lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad;
            return new Problem(transA, transB, m, n, k, lda, ldb, n + pad, n + pad, 1, 0, 0, 0, 0, abType, cdType,
                    alpha, beta, false, Gemm.Epilogue.NONE, null);
        }

        Problem asInPlace() {
            return new Problem(transA, transB, m, n, k, lda, ldb, ldd, ldd, batch, strideA, strideB, strideD, strideD,
                    abType, cdType, alpha, beta, true, epilogue, biasType);
        }

        Problem withEpilogue(Gemm.Epilogue e, DType type) {
            return new Problem(transA, transB, m, n, k, lda, ldb, ldc, ldd, batch, strideA, strideB, strideC, strideD,
                    abType, cdType, alpha, beta, inPlace, e, type);
        }

        Problem batched(int count, int extraStride, boolean sharedB) {
            int sA = (int) extent(1, 0, rowsA(), lda, colsA()) + extraStride;
            int sB = sharedB ? 0 : (int) extent(1, 0, rowsB(), ldb, colsB()) + extraStride;
            int sD = (int) extent(1, 0, m, ldd, n) + extraStride;
            int sC = inPlace ? sD : (int) extent(1, 0, m, ldc, n) + extraStride;
            return new Problem(transA, transB, m, n, k, lda, ldb, ldc, ldd, count, sA, sB, sC, sD, abType, cdType,
                    alpha, beta, inPlace, epilogue, biasType);
        }

        int rowsA() {
            return transA ? k : m;
        }

        int colsA() {
            return transA ? m : k;
        }

        int rowsB() {
            return transB ? n : k;
        }

        int colsB() {
            return transB ? k : n;
        }

        int lengthA() {
            return (int) extent(batch, strideA, rowsA(), lda, colsA());
        }

        int lengthB() {
            return (int) extent(batch, strideB, rowsB(), ldb, colsB());
        }

        int lengthC() {
            return (int) extent(batch, strideC, m, ldc, n);
        }

        int lengthD() {
            return (int) extent(batch, strideD, m, ldd, n);
        }

        int biasLength() {
            return epilogue == Gemm.Epilogue.BIAS ? n : epilogue == Gemm.Epilogue.BIAS_GRADIENT ? m : 0;
        }

        @Override
        public String toString() {
            return "D(" + m + "," + n + ")" + cdType + " = " + alpha + "*A" + (transA ? "^T" : "") + " B"
                    + (transB ? "^T" : "") + " K=" + k + " " + abType + " + " + beta + "*C" + (inPlace ? "(=D)" : "")
                    + " lda=" + lda + " ldb=" + ldb + " ldc=" + ldc + " ldd=" + ldd
                    + (batch > 1 ? " batch=" + batch + " strides=" + strideA + "/" + strideB + "/" + strideC + "/"
                    + strideD : "") + (epilogue == Gemm.Epilogue.NONE ? "" : " " + epilogue + "(" + biasType + ")");
        }
    }

    static long extent(int batch, long stride, int rows, int ld, int cols) {
        return (batch - 1) * stride + (long) (rows - 1) * ld + cols;
    }

    /**
     * Seeded inputs of a problem, each already holding values of its type (bf16-rounded where the type is BF16).
     * Every element outside the matrices (leading-dimension padding, gaps between batches) is NaN: C's padding must not
     * matter and D's must stay NaN. {@code c} is the initial content of C (of D when in place).
     */
    record Data(float[] a, float[] b, float[] c, float[] bias) {
        static Data random(Problem p, Random r) {
            float[] a = matrices(r, p.batch, p.strideA, p.rowsA(), p.lda, p.colsA(), p.abType, p.lengthA());
            float[] b = matrices(r, p.batch, p.strideB, p.rowsB(), p.ldb, p.colsB(), p.abType, p.lengthB());
            float[] c = p.inPlace ? matrices(r, p.batch, p.strideD, p.m, p.ldd, p.n, p.cdType, p.lengthD())
                    : matrices(r, p.batch, p.strideC, p.m, p.ldc, p.n, p.cdType, p.lengthC());
            float[] bias = p.epilogue == Gemm.Epilogue.BIAS ? round(randn(r, p.n), p.biasType) : null;
            return new Data(a, b, c, bias);
        }
    }

    static float[] matrices(Random r, int batch, int stride, int rows, int ld, int cols, DType type, int length) {
        float[] x = new float[length];
        Arrays.fill(x, Float.NaN);
        for (int t = 0; t < batch; t++) {
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    float v = (float) r.nextGaussian();
                    x[t * stride + i * ld + j] = type == DType.BF16 ? BF16.toFloat(BF16.fromFloat(v)) : v;
                }
            }
        }
        return x;
    }

    static float[] randn(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    static float[] round(float[] x, DType type) {
        return type == DType.BF16 ? BF16.round(x) : x;
    }

    static double gamma(int n, double u) {
        return n * u / (1 - n * u);
    }

    /**
     * Checks D (as stored, {@code lengthD} elements) against the double loop: rows {@code rows} of every batch (all
     * rows when null, and then also that every element outside the matrices is still NaN).
     *
     * @param f tolerance factor (1: IEEE fp32 sums; 2: tensor cores with BF16 inputs)
     */
    static void assertD(String what, long seed, Problem p, Data x, float[] d, int[] rows, double f) {
        if (d.length < p.lengthD()) {
            fail(what + ": D has " + d.length + " elements, needs " + p.lengthD());
        }
        int bad = 0;
        StringBuilder first = new StringBuilder();
        double tolFactor = f * gamma(p.k + 4, U32);
        int rowCount = rows == null ? p.m : rows.length;
        for (int t = 0; t < p.batch; t++) {
            for (int ri = 0; ri < rowCount; ri++) {
                int i = rows == null ? ri : rows[ri];
                for (int j = 0; j < p.n; j++) {
                    double sum = 0, abs = 0;
                    for (int q = 0; q < p.k; q++) {
                        double av = x.a[t * p.strideA + (p.transA ? q * p.lda + i : i * p.lda + q)];
                        double bv = x.b[t * p.strideB + (p.transB ? j * p.ldb + q : q * p.ldb + j)];
                        sum += av * bv;
                        abs += Math.abs(av * bv);
                    }
                    double cv = p.beta == 0f ? 0 : p.inPlace ? x.c[t * p.strideD + i * p.ldd + j]
                            : x.c[t * p.strideC + i * p.ldc + j];
                    double bias = p.epilogue == Gemm.Epilogue.BIAS ? x.bias[j] : 0;
                    double expected = (double) p.alpha * sum + (double) p.beta * cv + bias;
                    double scale = Math.abs((double) p.alpha) * abs + Math.abs((double) p.beta * cv) + Math.abs(bias);
                    double tol = tolFactor * scale;
                    if (p.cdType == DType.BF16) {
                        tol = tol * (1 + U16) + U16 * Math.abs(expected) + U16 * Math.abs(expected - bias);
                    }
                    double got = d[t * p.strideD + i * p.ldd + j];
                    if (!(Math.abs(got - expected) <= tol)) {
                        if (bad < 8) {
                            first.append(String.format("%n  batch %d [%d,%d] expected %.9g got %.9g (|diff| %.3g,"
                                    + " tolerance %.3g)", t, i, j, expected, got, Math.abs(got - expected), tol));
                        }
                        bad++;
                    }
                }
            }
        }
        if (rows == null) {
            boolean[] inside = new boolean[p.lengthD()];
            for (int t = 0; t < p.batch; t++) {
                for (int i = 0; i < p.m; i++) {
                    Arrays.fill(inside, t * p.strideD + i * p.ldd, t * p.strideD + i * p.ldd + p.n, true);
                }
            }
            for (int e = 0; e < inside.length; e++) {
                if (!inside[e] && !Float.isNaN(d[e])) {
                    if (bad < 8) {
                        first.append(String.format("%n  element %d outside D (padding) was written: %s", e, d[e]));
                    }
                    bad++;
                }
            }
        }
        if (bad > 0) {
            fail(what + " " + p + " (seed " + seed + "): " + bad + " elements wrong; first:" + first);
        }
    }

    /** dbias (M) = sum_k op(A)[m,k] against the double loop (f as in {@link #assertD}). */
    static void assertBiasGrad(String what, long seed, Problem p, Data x, float[] dbias, double f) {
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < p.m; i++) {
            double sum = 0, abs = 0;
            for (int q = 0; q < p.k; q++) {
                double av = x.a[p.transA ? q * p.lda + i : i * p.lda + q];
                sum += av;
                abs += Math.abs(av);
            }
            double tol = f * gamma(p.k, U32) * abs;
            if (p.biasType == DType.BF16) {
                tol = tol * (1 + U16) + U16 * Math.abs(sum);
            }
            if (!(Math.abs(dbias[i] - sum) <= tol)) {
                if (bad < 8) {
                    first.append(String.format("%n  [%d] expected %.9g got %.9g (tolerance %.3g)", i, sum, dbias[i],
                            tol));
                }
                bad++;
            }
        }
        if (bad > 0) {
            fail(what + " " + p + " (seed " + seed + "): " + bad + " bias-gradient elements wrong; first:" + first);
        }
    }
}
