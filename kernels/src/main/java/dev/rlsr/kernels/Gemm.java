package dev.rlsr.kernels;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.rlsr.bindings.Cublas;
import dev.rlsr.bindings.CublasLt;
import dev.rlsr.bindings.CudaException;
import dev.rlsr.bindings.CudaProfiler;
import dev.rlsr.bindings.DeviceBuffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Row-major GEMM on cuBLASLt, one instance per stream:
 * {@code D (M,N) = alpha * op(A) . op(B) + beta * C (+ bias (N) broadcast over the rows)}, op(A) (M,K), op(B) (K,N).
 *
 * <p><b>Storage.</b> Every matrix is row-major with a leading dimension (elements between two rows): A is stored
 * (M,K), or (K,M) with {@code transA}; B is stored (K,N), or (N,K) with {@code transB}; C and D are (M,N). So
 * {@code y = x W^T} of a linear layer with x (T,in) and W (out,in) is {@code matmul(false, true, T, out, in, ...)}.
 * The column-major mapping {@code D^T = op(B)^T op(A)^T} is done here, once: callers never think column-major.
 *
 * <p><b>Types.</b> A and B are both F32 or both BF16; C and D share one type, F32 or BF16, and F32 inputs need an
 * F32 output (cuBLASLt has no fp32 x fp32 -> bf16 product). Accumulation is always fp32
 * ({@code CUBLAS_COMPUTE_32F}); F32 inputs are multiplied in full fp32, never TF32. A BF16 D is rounded once, after
 * beta*C was added in fp32, and split-K schemes that would round partial sums to bf16 are excluded. With the bias
 * epilogue a BF16 D may be rounded twice: cuBLASLt 13.1 on an H200 rounds alpha AB + beta C to bf16 before adding
 * the bias for some algorithms (split-K ones, and with beta != 0), so a bias adds up to half a bf16 ulp of the
 * pre-bias value to the error ({@link GemmReference} and the emulator round once, inside that bound).
 * The bias is F32 or the type of D, and the type of D with a BF16 D: cuBLASLt 13.1 refuses an F32 bias next to a BF16
 * output (CUBLAS_STATUS_INVALID_VALUE from the heuristic, seen on an H200), so {@link #matmulStridedBatched} refuses
 * it first, naming the types.
 *
 * <p><b>Aliasing.</b> C and D are either the same matrix (same pointer, leading dimension and batch stride:
 * accumulation in place, e.g. weight gradients with beta = 1) or disjoint; D never overlaps A or B. C may be 0 when
 * beta = 0. A BF16 accumulation in place (beta != 0) is not handed to cuBLASLt as C == D: on an H200 with cuBLASLt
 * 13.1 some of its kernels (e.g. algorithm 66 for a 13 x 48 x 40 product) read C after parts of D were written and
 * return results hundreds of roundings off, while the same kernels with C != D are exact (bench/gpu/README.md,
 * LtRoundingProbe). C is first copied on the stream into a scratch buffer owned here (grown when a larger D comes,
 * never freed before {@link #close()}, so a captured graph's copy stays valid) and read from there.
 *
 * <p><b>Caching.</b> The matmul descriptor, the four layouts and the algorithm chosen by the heuristic are cached per
 * problem (transposes, sizes, leading dimensions, batch and strides, types, epilogue, in-place or not, and the
 * alignment of each pointer, which the heuristic's choice depends on). A call with a cached problem queries no
 * heuristic and allocates nothing: it writes alpha and beta into native memory owned by this instance and calls
 * {@code cublasLtMatmul}. {@link #heuristicQueries()} counts the queries.
 *
 * <p>All pointers are device addresses in the current context of the calling thread; calls are asynchronous on
 * the instance's stream and may be captured in a CUDA graph (the workspace is owned here, nothing is allocated).
 * Not thread-safe: one thread at a time per instance, like a cuBLAS handle. {@link GemmReference} is the CPU twin.
 */
public final class Gemm implements AutoCloseable {
    /** 32 MiB: what cuBLAS recommends on Hopper so the heuristic can pick its fastest kernels. */
    public static final long DEFAULT_WORKSPACE_BYTES = 32L << 20;

    /** What happens after the product. */
    public enum Epilogue {
        /** D = alpha op(A) op(B) + beta C. */
        NONE,
        /** D = alpha op(A) op(B) + beta C + bias, bias (N) added to every row. */
        BIAS,
        /**
         * D as for {@link #NONE}, and the bias gradient dbias (M) = sum over k of op(A)[m,k] written (not accumulated)
         * to the bias pointer: with op(A) = dY^T this is the bias gradient of a linear layer next to its weight
         * gradient (cuBLASLt's BGRADB). Needs alpha = 1 and a single batch.
         */
        BIAS_GRADIENT
    }

    private static final int CACHE_SLOTS = 1024;
    /** Plans kept before the cache is emptied; far above the few dozen shapes of a training step. */
    private static final int MAX_PLANS = CACHE_SLOTS / 2;
    private static final int KEY_LONGS = 13;

    private final CublasLt lt;
    private final long stream;
    private final DeviceBuffer workspace;
    private final long workspaceBytes;
    private final Arena arena;
    /** alpha at 0, beta at 4 (host pointer mode), the bias pointer at 8 (a descriptor attribute's value). */
    private final MemorySegment scalars;
    private final long scalarsAddress;
    private final Plan[] table = new Plan[CACHE_SLOTS];
    private final long[] probe = new long[KEY_LONGS];
    private int plans;
    private long heuristicQueries;
    private boolean closed;
    /** Copies of C for BF16 accumulation in place; the last is the largest, all live until {@link #close()}. */
    private final java.util.ArrayList<DeviceBuffer> aliasCopies = new java.util.ArrayList<>();
    private long aliasCopyBytes;

    /** The cached descriptors of one problem. */
    private static final class Plan {
        final long[] key;
        final long desc;
        final long layoutA;
        final long layoutB;
        final long layoutC;
        final long layoutD;
        final MemorySegment algo;
        long biasPointer;

        Plan(long[] key, long desc, long layoutA, long layoutB, long layoutC, long layoutD, MemorySegment algo) {
            this.key = key;
            this.desc = desc;
            this.layoutA = layoutA;
            this.layoutB = layoutB;
            this.layoutC = layoutC;
            this.layoutD = layoutD;
            this.algo = algo;
        }
    }

    private Gemm(long stream, long workspaceBytes) {
        this.stream = stream;
        this.workspaceBytes = workspaceBytes;
        this.lt = CublasLt.create();
        DeviceBuffer ws = null;
        try {
            ws = workspaceBytes > 0 ? DeviceBuffer.alloc(workspaceBytes) : null;
        } catch (RuntimeException e) {
            lt.close();
            throw e;
        }
        this.workspace = ws;
        this.arena = Arena.ofShared();
        this.scalars = arena.allocate(16, 8);
        this.scalarsAddress = scalars.address();
    }

    /**
     * A GEMM engine for {@code stream} with a {@link #DEFAULT_WORKSPACE_BYTES} workspace, in the calling thread's
     * current context.
     *
     * @param stream the {@code CUstream} every call runs on (0: the legacy default stream)
     * @return the instance; close it to free the cuBLASLt handle, the descriptors and the workspace
     */
    public static Gemm create(long stream) {
        return create(stream, DEFAULT_WORKSPACE_BYTES);
    }

    /**
     * A GEMM engine for {@code stream} with a workspace of {@code workspaceBytes} (0: none, fewer algorithms).
     *
     * @param stream         the {@code CUstream} every call runs on (0: the legacy default stream)
     * @param workspaceBytes device workspace for cuBLASLt's algorithms
     * @return the instance
     */
    public static Gemm create(long stream, long workspaceBytes) {
        if (workspaceBytes < 0) {
            throw new IllegalArgumentException("Gemm: workspaceBytes must be >= 0, got " + workspaceBytes);
        }
        return new Gemm(stream, workspaceBytes);
    }

    /**
     * The stream this instance runs on.
     *
     * @return the {@code CUstream}
     */
    public long stream() {
        return stream;
    }

    /**
     * How many times the algorithm heuristic was queried: once per new problem, never for a cached one.
     *
     * @return the number of {@code cublasLtMatmulAlgoGetHeuristic} calls so far
     */
    public long heuristicQueries() {
        return heuristicQueries;
    }

    /**
     * How many problems have cached descriptors.
     *
     * @return the number of cached plans
     */
    public int cachedPlans() {
        return plans;
    }

    /**
     * {@code D (M,N) = alpha op(A) op(B) + beta C}.
     *
     * @param transA use A^T: A is stored (K,M) instead of (M,K)
     * @param transB use B^T: B is stored (N,K) instead of (K,N)
     * @param m      rows of D
     * @param n      columns of D
     * @param k      the reduced dimension
     * @param alpha  scale of the product
     * @param a      A (device)
     * @param lda    leading dimension of A as stored (>= its columns)
     * @param b      B (device)
     * @param ldb    leading dimension of B as stored
     * @param abType type of A and B (F32 or BF16)
     * @param beta   scale of C (0: C is not read)
     * @param c      C (device; may equal d; 0 allowed when beta = 0)
     * @param ldc    leading dimension of C (>= n)
     * @param d      D (device)
     * @param ldd    leading dimension of D (>= n)
     * @param cdType type of C and D (F32, or BF16 with BF16 inputs)
     */
    public void matmul(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b,
            int ldb, DType abType, float beta, long c, int ldc, long d, int ldd, DType cdType) {
        matmulStridedBatched(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, abType, beta, c, ldc, 0, d, ldd, 0,
                cdType, 1, Epilogue.NONE, 0, null);
    }

    /**
     * {@code D (M,N) = alpha op(A) op(B) + beta C + bias}, bias (N) added to every row in the epilogue.
     *
     * @param transA   use A^T: A is stored (K,M)
     * @param transB   use B^T: B is stored (N,K)
     * @param m        rows of D
     * @param n        columns of D
     * @param k        the reduced dimension
     * @param alpha    scale of the product
     * @param a        A (device)
     * @param lda      leading dimension of A as stored
     * @param b        B (device)
     * @param ldb      leading dimension of B as stored
     * @param abType   type of A and B
     * @param beta     scale of C
     * @param c        C (device; may equal d; 0 allowed when beta = 0)
     * @param ldc      leading dimension of C
     * @param d        D (device)
     * @param ldd      leading dimension of D
     * @param cdType   type of C and D
     * @param bias     bias (N) (device)
     * @param biasType F32 or {@code cdType}
     */
    public void matmulBias(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long b,
            int ldb, DType abType, float beta, long c, int ldc, long d, int ldd, DType cdType, long bias,
            DType biasType) {
        matmulStridedBatched(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, abType, beta, c, ldc, 0, d, ldd, 0,
                cdType, 1, Epilogue.BIAS, bias, biasType);
    }

    /**
     * {@code D (M,N) = op(A) op(B) + beta C} and {@code dbias (M) = sum_k op(A)[m,k]} (overwritten): a linear layer's
     * weight gradient {@code dW (out,in) = dY^T X} with {@code transA} (A = dY stored (T,out)) and its bias gradient
     * in one call. See {@link Epilogue#BIAS_GRADIENT}.
     *
     * @param transA       use A^T: A is stored (K,M)
     * @param transB       use B^T: B is stored (N,K)
     * @param m            rows of D and length of dbias
     * @param n            columns of D
     * @param k            the reduced dimension
     * @param a            A (device)
     * @param lda          leading dimension of A as stored
     * @param b            B (device)
     * @param ldb          leading dimension of B as stored
     * @param abType       type of A and B
     * @param beta         scale of C (1: accumulate the weight gradient)
     * @param c            C (device; may equal d; 0 allowed when beta = 0)
     * @param ldc          leading dimension of C
     * @param d            D (device)
     * @param ldd          leading dimension of D
     * @param cdType       type of C and D
     * @param biasGrad     dbias (M) (device), overwritten
     * @param biasGradType F32 or {@code cdType}
     */
    public void matmulBiasGradient(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b,
            int ldb, DType abType, float beta, long c, int ldc, long d, int ldd, DType cdType, long biasGrad,
            DType biasGradType) {
        matmulStridedBatched(transA, transB, m, n, k, 1f, a, lda, 0, b, ldb, 0, abType, beta, c, ldc, 0, d, ldd, 0,
                cdType, 1, Epilogue.BIAS_GRADIENT, biasGrad, biasGradType);
    }

    /**
     * The general form: {@code batch} independent products, matrix i of X starting {@code i * strideX} elements after
     * X (a stride of 0 reuses one matrix for every batch, e.g. shared weights), with an optional epilogue (a
     * {@link Epilogue#BIAS} bias is the same for every batch).
     *
     * @param transA   use A^T: A is stored (K,M)
     * @param transB   use B^T: B is stored (N,K)
     * @param m        rows of D
     * @param n        columns of D
     * @param k        the reduced dimension
     * @param alpha    scale of the product
     * @param a        A (device)
     * @param lda      leading dimension of A as stored
     * @param strideA  elements between two batches of A (>= 0)
     * @param b        B (device)
     * @param ldb      leading dimension of B as stored
     * @param strideB  elements between two batches of B (>= 0)
     * @param abType   type of A and B
     * @param beta     scale of C
     * @param c        C (device; may equal d; 0 allowed when beta = 0)
     * @param ldc      leading dimension of C
     * @param strideC  elements between two batches of C (>= 0)
     * @param d        D (device)
     * @param ldd      leading dimension of D
     * @param strideD  elements between two batches of D (batches of D must not overlap)
     * @param cdType   type of C and D
     * @param batch    number of products (>= 1)
     * @param epilogue what happens after the product
     * @param bias     the bias or bias-gradient vector (device), 0 for {@link Epilogue#NONE}
     * @param biasType its type (F32 or {@code cdType}), null for {@link Epilogue#NONE}
     */
    public void matmulStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
            long strideA, long b, int ldb, long strideB, DType abType, float beta, long c, int ldc, long strideC,
            long d, int ldd, long strideD, DType cdType, int batch, Epilogue epilogue, long bias, DType biasType) {
        if (closed) {
            throw new IllegalStateException("Gemm: already closed");
        }
        if (c == 0 && beta == 0f) {
            // C is not read: run in place on D, which needs no second layout
            c = d;
            ldc = ldd;
            strideC = strideD;
        }
        check(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, abType, beta, c, ldc, strideC, d, ldd,
                strideD, cdType, batch, epilogue, bias, biasType);
        int op = CudaProfiler.begin(stream); // the copy of C below counts toward the GEMM
        try {
            if (c == d && beta != 0f && cdType == DType.BF16) {
                // see "Aliasing" in the class comment: C is read from a copy, D is written where it is
                long bytes = extent(batch, strideD, m, ldd, n) * cdType.bytes();
                c = aliasCopy(bytes);
                dev.rlsr.bindings.CudaDriver.memcpyDtoDAsync(c, d, bytes, stream);
            }
            boolean inPlace = c == d;
            long[] key = probe;
            key[0] = (transA ? 1 : 0) | (transB ? 2 : 0) | (inPlace ? 4 : 0) | (long) epilogue.ordinal() << 3
                    | (long) abType.ordinal() << 5 | (long) cdType.ordinal() << 9
                    | (long) (biasType == null ? 15 : biasType.ordinal()) << 13
                    | (long) alignmentLog2(a) << 17 | (long) alignmentLog2(b) << 21
                    | (long) alignmentLog2(c) << 25 | (long) alignmentLog2(d) << 29
                    | (long) (bias == 0 ? 0 : alignmentLog2(bias)) << 33;
            key[1] = m;
            key[2] = n;
            key[3] = k;
            key[4] = lda;
            key[5] = ldb;
            key[6] = ldc;
            key[7] = ldd;
            key[8] = batch;
            key[9] = batch == 1 ? 0 : strideA;
            key[10] = batch == 1 ? 0 : strideB;
            key[11] = batch == 1 ? 0 : strideC;
            key[12] = batch == 1 ? 0 : strideD;
            Plan plan = lookup(key);
            if (plan == null) {
                plan = createPlan(key.clone(), transA, transB, m, n, k, lda, ldb, ldc, ldd, batch, key[9], key[10],
                        key[11], key[12], abType, cdType, inPlace, epilogue, bias, biasType);
            }
            if (epilogue != Epilogue.NONE && plan.biasPointer != bias) {
                scalars.set(JAVA_LONG, 8, bias);
                CublasLt.matmulDescSetAttributeRaw(plan.desc, CublasLt.CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                        scalarsAddress + 8, 8);
                plan.biasPointer = bias;
            }
            scalars.set(JAVA_FLOAT, 0, alpha);
            scalars.set(JAVA_FLOAT, 4, beta);
            // row-major D = op(A) op(B) is column-major D^T = op(B)^T op(A)^T: cuBLASLt's A is our B and vice versa
            CublasLt.matmulRaw(lt.handle(), plan.desc, scalarsAddress, b, plan.layoutA, a, plan.layoutB,
                    scalarsAddress + 4, c, plan.layoutC, d, plan.layoutD, plan.algo.address(),
                    workspace == null ? 0 : workspace.address(), workspaceBytes, stream);
        } catch (RuntimeException e) {
            CudaProfiler.cancel(op);
            throw e;
        }
        if (op != -1) {
            CudaProfiler.end(op, stream, profileLabel(transA, transB, m, n, k, batch, abType, cdType, beta,
                    epilogue));
        }
    }

    /** A GEMM's name in a {@link CudaProfiler} profile: its shape, types and epilogue. */
    private static String profileLabel(boolean transA, boolean transB, int m, int n, int k, int batch, DType abType,
            DType cdType, float beta, Epilogue epilogue) {
        return "gemm " + (transA ? "T" : "N") + (transB ? "T" : "N") + " " + m + "x" + n + "x" + k
                + (batch > 1 ? " x" + batch : "") + " " + abType.name().toLowerCase(java.util.Locale.ROOT) + "->"
                + cdType.name().toLowerCase(java.util.Locale.ROOT) + (beta != 0f ? " +C" : "")
                + (epilogue == Epilogue.NONE ? "" : " " + epilogue.name().toLowerCase(java.util.Locale.ROOT));
    }

    /** A scratch buffer of at least {@code bytes} for a copy of C; allocates only when a larger one is needed. */
    private long aliasCopy(long bytes) {
        if (bytes > aliasCopyBytes) {
            long size = Math.max(bytes, Math.min(2 * aliasCopyBytes, bytes + (64L << 20)));
            aliasCopies.add(DeviceBuffer.alloc(size));
            aliasCopyBytes = size;
        }
        return aliasCopies.getLast().address();
    }

    /**
     * The epilogue vector's type against D's, for {@link Gemm} and {@link GemmReference} alike: F32 or the type of D,
     * and a BF16 D takes only a BF16 bias (cuBLASLt refuses an F32 one).
     */
    static void checkBiasType(String op, Epilogue epilogue, DType biasType, DType cdType) {
        if (biasType != DType.F32 && biasType != cdType) {
            throw new IllegalArgumentException(op + ": the " + epilogue + " vector must be F32 or the type of D ("
                    + cdType + "), got " + biasType);
        }
        if (epilogue == Epilogue.BIAS && biasType == DType.F32 && cdType == DType.BF16) {
            throw new IllegalArgumentException(op + ": an F32 bias with a BF16 D: cuBLASLt takes the bias of a BF16"
                    + " output in BF16 (it refuses this pair with CUBLAS_STATUS_INVALID_VALUE)");
        }
    }

    /**
     * log2 of the alignment in bytes of a base pointer, capped at 256: the heuristic assumes 256 unless told less, and
     * an algorithm chosen for aligned data must not run on a less aligned view. (Leading dimensions and batch strides
     * are in the layouts, which the heuristic sees.)
     */
    private static int alignmentLog2(long pointer) {
        return Long.numberOfTrailingZeros(pointer | 256);
    }

    private Plan lookup(long[] key) {
        int mask = CACHE_SLOTS - 1;
        for (int i = hash(key) & mask; ; i = (i + 1) & mask) {
            Plan p = table[i];
            if (p == null) {
                return null;
            }
            if (Arrays.equals(p.key, key)) {
                return p;
            }
        }
    }

    private static int hash(long[] key) {
        long h = 0x9e3779b97f4a7c15L;
        for (long v : key) {
            h = (h ^ v) * 0xbf58476d1ce4e5b9L;
            h ^= h >>> 31;
        }
        return (int) (h ^ (h >>> 32));
    }

    private Plan createPlan(long[] key, boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc,
            int ldd, int batch, long strideA, long strideB, long strideC, long strideD, DType abType, DType cdType,
            boolean inPlace, Epilogue epilogue, long bias, DType biasType) {
        if (plans >= MAX_PLANS) {
            clearCache();
        }
        long desc = 0, la = 0, lb = 0, lc = 0, ld = 0, pref = 0;
        try {
            desc = CublasLt.matmulDescCreate(Cublas.CUBLAS_COMPUTE_32F, Cublas.CUDA_R_32F);
            CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSA,
                    transB ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSB,
                    transA ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            if (epilogue != Epilogue.NONE) {
                CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_EPILOGUE,
                        epilogue == Epilogue.BIAS ? CublasLt.CUBLASLT_EPILOGUE_BIAS : CublasLt.CUBLASLT_EPILOGUE_BGRADB);
                if (biasType != cdType) {
                    CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                            biasType.cudaDataType());
                }
                // the heuristic reads the pointer's alignment
                CublasLt.matmulDescSetAttribute64(desc, CublasLt.CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
            }
            // a row-major (rows, cols) matrix with leading dimension ld is the column-major (cols, rows) one
            int rowsB = transB ? n : k, colsB = transB ? k : n;
            int rowsA = transA ? k : m, colsA = transA ? m : k;
            la = layout(abType, colsB, rowsB, ldb, batch, strideB);
            lb = layout(abType, colsA, rowsA, lda, batch, strideA);
            ld = layout(cdType, n, m, ldd, batch, strideD);
            lc = inPlace ? ld : layout(cdType, n, m, ldc, batch, strideC);

            pref = CublasLt.preferenceCreate();
            CublasLt.preferenceSetAttribute64(pref, CublasLt.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, workspaceBytes);
            if (cdType == DType.BF16) {
                // split-K partial sums stay fp32 (in the workspace): D is rounded to bf16 once
                CublasLt.preferenceSetAttribute(pref, CublasLt.CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                        CublasLt.CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE);
            }
            // cuBLASLt's A is our B, its B our A (see matmulStridedBatched)
            setAlignment(pref, CublasLt.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, (int) (key[0] >>> 21) & 15);
            setAlignment(pref, CublasLt.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, (int) (key[0] >>> 17) & 15);
            setAlignment(pref, CublasLt.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, (int) (key[0] >>> 25) & 15);
            setAlignment(pref, CublasLt.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, (int) (key[0] >>> 29) & 15);

            // an automatic arena: the algorithm lives as long as its plan, also after the cache was emptied
            MemorySegment result = Arena.ofAuto().allocate(CublasLt.HEURISTIC_RESULT);
            heuristicQueries++;
            int found = CublasLt.algoGetHeuristic(lt.handle(), desc, la, lb, lc, ld, pref, result, 1);
            if (found < 1) {
                throw new CudaException("cublasLtMatmulAlgoGetHeuristic", 15, "CUBLAS_STATUS_NOT_SUPPORTED",
                        "no cuBLASLt algorithm for " + describe(transA, transB, m, n, k, lda, ldb, ldc, ldd, batch,
                                abType, cdType, epilogue, biasType) + " within " + workspaceBytes
                                + " workspace bytes");
            }
            Plan plan = new Plan(key, desc, la, lb, lc, ld, result.asSlice(0, 64));
            plan.biasPointer = bias;
            insert(plan);
            return plan;
        } catch (RuntimeException e) {
            destroyQuietly(desc, la, lb, inPlace ? 0 : lc, ld);
            throw e;
        } finally {
            if (pref != 0) {
                CublasLt.preferenceDestroy(pref);
            }
        }
    }

    private static void setAlignment(long pref, int attr, int log2) {
        if (log2 < 8) {
            CublasLt.preferenceSetAttribute(pref, attr, 1 << log2);
        }
    }

    private static long layout(DType type, long rows, long cols, long ld, int batch, long stride) {
        long l = CublasLt.matrixLayoutCreate(type.cudaDataType(), rows, cols, ld);
        if (batch > 1) {
            try {
                CublasLt.matrixLayoutSetAttribute(l, CublasLt.CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, batch);
                CublasLt.matrixLayoutSetAttribute64(l, CublasLt.CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, stride);
            } catch (RuntimeException e) {
                CublasLt.matrixLayoutDestroy(l);
                throw e;
            }
        }
        return l;
    }

    private void insert(Plan plan) {
        int mask = CACHE_SLOTS - 1;
        int i = hash(plan.key) & mask;
        while (table[i] != null) {
            i = (i + 1) & mask;
        }
        table[i] = plan;
        plans++;
    }

    private void clearCache() {
        for (int i = 0; i < table.length; i++) {
            Plan p = table[i];
            if (p != null) {
                destroyQuietly(p.desc, p.layoutA, p.layoutB, p.layoutC == p.layoutD ? 0 : p.layoutC, p.layoutD);
                table[i] = null;
            }
        }
        plans = 0;
    }

    private static void destroyQuietly(long desc, long... layouts) {
        for (long l : layouts) {
            if (l != 0) {
                try {
                    CublasLt.matrixLayoutDestroy(l);
                } catch (RuntimeException ignored) {
                    // cleanup must not hide the error that led here
                }
            }
        }
        if (desc != 0) {
            try {
                CublasLt.matmulDescDestroy(desc);
            } catch (RuntimeException ignored) {
                // as above
            }
        }
    }

    private static String describe(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc,
            int ldd, int batch, DType abType, DType cdType, Epilogue epilogue, DType biasType) {
        return "D (" + m + "," + n + ") " + cdType + " = op(A) op(B), K=" + k + ", A " + abType + (transA ? "^T" : "")
                + " lda=" + lda + ", B " + abType + (transB ? "^T" : "") + " ldb=" + ldb + ", ldc=" + ldc + ", ldd="
                + ldd + (batch > 1 ? ", batch " + batch : "")
                + (epilogue == Epilogue.NONE ? "" : ", epilogue " + epilogue + " (" + biasType + ")");
    }

    /**
     * The host-side preconditions of {@link #matmulStridedBatched} (C already replaced by D when it is 0 with beta =
     * 0), in a form the tests can call without a GPU. Throws {@link IllegalArgumentException} naming the argument.
     */
    static void check(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda, long strideA,
            long b, int ldb, long strideB, DType abType, float beta, long c, int ldc, long strideC, long d, int ldd,
            long strideD, DType cdType, int batch, Epilogue epilogue, long bias, DType biasType) {
        String op = "Gemm";
        checkTypes(op, abType, cdType);
        Checks.positive(op, "m (rows of D)", m);
        Checks.positive(op, "n (columns of D)", n);
        Checks.positive(op, "k (the reduced dimension)", k);
        Checks.positive(op, "batch", batch);
        int colsA = transA ? m : k, rowsA = transA ? k : m;
        int colsB = transB ? k : n, rowsB = transB ? n : k;
        leading(op, "lda", lda, colsA, transA ? "A^T: A is stored (K,M)" : "A is stored (M,K)");
        leading(op, "ldb", ldb, colsB, transB ? "B^T: B is stored (N,K)" : "B is stored (K,N)");
        leading(op, "ldc", ldc, n, "C is (M,N)");
        leading(op, "ldd", ldd, n, "D is (M,N)");
        if (strideA < 0 || strideB < 0 || strideC < 0 || strideD < 0) {
            throw new IllegalArgumentException(op + ": batch strides must be >= 0, got strideA=" + strideA
                    + " strideB=" + strideB + " strideC=" + strideC + " strideD=" + strideD);
        }
        long matrixD = (long) (m - 1) * ldd + n;
        if (batch > 1 && strideD < matrixD) {
            throw new IllegalArgumentException(op + ": strideD=" + strideD + " makes the " + batch
                    + " batches of D overlap; it must be >= (m-1)*ldd+n = " + matrixD);
        }
        Checks.pointer(op, "a", a, abType.bytes());
        Checks.pointer(op, "b", b, abType.bytes());
        Checks.pointer(op, "d", d, cdType.bytes());
        if (c == 0) {
            throw new IllegalArgumentException(op + ": c is a null device pointer, which is only allowed with beta = 0"
                    + " (got beta = " + beta + ")");
        }
        Checks.pointer(op, "c", c, cdType.bytes());
        long bytesA = extent(batch, strideA, rowsA, lda, colsA) * abType.bytes();
        long bytesB = extent(batch, strideB, rowsB, ldb, colsB) * abType.bytes();
        long bytesD = extent(batch, strideD, m, ldd, n) * cdType.bytes();
        Checks.disjoint(op, "d", d, bytesD, "a", a, bytesA);
        Checks.disjoint(op, "d", d, bytesD, "b", b, bytesB);
        if (c == d) {
            if (ldc != ldd || (batch > 1 && strideC != strideD)) {
                throw new IllegalArgumentException(op + ": c == d (in place) needs ldc == ldd and strideC == strideD,"
                        + " got ldc=" + ldc + " ldd=" + ldd + " strideC=" + strideC + " strideD=" + strideD);
            }
        } else {
            Checks.disjoint(op, "c", c, extent(batch, strideC, m, ldc, n) * cdType.bytes(), "d", d, bytesD);
        }
        if (epilogue == null) {
            throw new IllegalArgumentException(op + ": epilogue must be NONE, BIAS or BIAS_GRADIENT, got null");
        }
        if (epilogue == Epilogue.NONE) {
            if (bias != 0) {
                throw new IllegalArgumentException(op + ": a bias pointer was given with epilogue NONE; use BIAS");
            }
            return;
        }
        checkBiasType(op, epilogue, biasType, cdType);
        Checks.pointer(op, epilogue == Epilogue.BIAS ? "bias" : "biasGrad", bias, biasType.bytes());
        if (epilogue == Epilogue.BIAS_GRADIENT) {
            if (alpha != 1f) {
                throw new IllegalArgumentException(op + ": BIAS_GRADIENT needs alpha = 1 (the bias gradient is the"
                        + " unscaled sum of op(A)), got alpha = " + alpha);
            }
            if (batch != 1) {
                throw new IllegalArgumentException(op + ": BIAS_GRADIENT takes a single batch, got batch = " + batch);
            }
            long biasBytes = (long) m * biasType.bytes();
            Checks.disjoint(op, "biasGrad", bias, biasBytes, "d", d, bytesD);
            Checks.disjoint(op, "biasGrad", bias, biasBytes, "a", a, bytesA);
            Checks.disjoint(op, "biasGrad", bias, biasBytes, "b", b, bytesB);
        } else {
            Checks.disjoint(op, "bias", bias, (long) n * biasType.bytes(), "d", d, bytesD);
        }
    }

    /** The type rules shared with {@link GemmReference}. */
    static void checkTypes(String op, DType abType, DType cdType) {
        if (abType != DType.F32 && abType != DType.BF16) {
            throw new IllegalArgumentException(op + ": abType (the type of A and B) must be F32 or BF16, got "
                    + abType);
        }
        if (cdType != DType.F32 && cdType != DType.BF16) {
            throw new IllegalArgumentException(op + ": cdType (the type of C and D) must be F32 or BF16, got "
                    + cdType);
        }
        if (abType == DType.F32 && cdType == DType.BF16) {
            throw new IllegalArgumentException(op + ": F32 inputs need an F32 output (cuBLASLt has no fp32 x fp32 ->"
                    + " bf16 product); multiply BF16 inputs or write F32 and cast");
        }
    }

    private static void leading(String op, String name, int ld, int cols, String stored) {
        if (ld < cols) {
            throw new IllegalArgumentException(op + ": " + name + "=" + ld + " is smaller than the " + cols
                    + " columns of the matrix (" + stored + ", row-major)");
        }
    }

    /** Elements from the first to one past the last element of a batched row-major matrix. */
    private static long extent(int batch, long stride, int rows, int ld, int cols) {
        return (batch - 1) * stride + (long) (rows - 1) * ld + cols;
    }

    /** Frees the descriptors, the cuBLASLt handle and the workspace; idempotent. Synchronise the stream first. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            clearCache();
        } finally {
            try {
                lt.close();
            } finally {
                try {
                    if (workspace != null) {
                        workspace.close();
                    }
                    for (DeviceBuffer copy : aliasCopies) {
                        copy.close();
                    }
                    aliasCopies.clear();
                } finally {
                    arena.close();
                }
            }
        }
    }
}
