package dev.rlsr.kernels.cpu;

import static dev.rlsr.kernels.cpu.SgemmKernels.MR;
import static dev.rlsr.kernels.cpu.SgemmKernels.NR;
import static dev.rlsr.kernels.cpu.SgemmKernels.S;
import static dev.rlsr.kernels.cpu.SgemmKernels.VL;

import jdk.incubator.vector.FloatVector;

/**
 * fp32 matrix product on the CPU, row-major: {@code C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C}.
 * op(X) is X or its transpose: with transA, A is stored (K,M) with leading dimension lda; with transB, B is (N,K).
 * As in BLAS, beta == 0 overwrites C without reading it (NaNs in C do not propagate), and alpha == 0 or k == 0
 * only scales C.
 *
 * <p>Goto/BLIS structure: C is cut into column blocks of NC and the K dimension into blocks of KC; op(B) of a
 * column block is packed once (all K blocks, by all threads together) into NR-wide panels shared by all threads,
 * then the threads take disjoint row ranges (or column ranges when there are few rows), pack MC x KC blocks of
 * op(A) into their own buffers and run the register-blocked kernel of {@link SgemmKernels} over MR x NR tiles.
 * Packing absorbs the transposes, so all four transpose combinations run the same kernel. Threads come from
 * {@link CpuParallel} ({@code rlsr.threads}); calls from inside a pool worker run on that worker alone. Products
 * with one to four rows (token-by-token decoding) take a streaming path that does not pack; tiny products take a
 * plain loop.
 *
 * <p>Blocking can be tuned with the system properties {@code rlsr.sgemm.kc}, {@code rlsr.sgemm.kcwide} (K block
 * when n >= 2048), {@code rlsr.sgemm.mc} and {@code rlsr.sgemm.nc} (defaults 256, 1024, 192, 4096: a 256x32 B panel
 * stays in L1 and a 192x256 A block in L2).
 */
public final class Sgemm {
    private Sgemm() {}

    static final int KC = Math.max(1, Integer.getInteger("rlsr.sgemm.kc", 256));
    static final int KC_WIDE = Math.max(1, Integer.getInteger("rlsr.sgemm.kcwide", 1024));
    private static final int WIDE_N = 2048;
    static final int MC = roundUp(Math.max(1, Integer.getInteger("rlsr.sgemm.mc", 192)), MR);
    static final int NC = roundUp(Math.max(1, Integer.getInteger("rlsr.sgemm.nc", 4096)), NR);
    /** Below this many multiply-adds the product runs on the calling thread (a fork/join costs ~10-50 us). */
    private static final long PARALLEL_MIN_MACS = 1L << 21;
    /** Cap on the packed B of one column block (all K blocks): 16 MB, to stay in the last-level cache. */
    private static final int B_PACK_FLOATS = 1 << 22;
    /** Below this many multiply-adds packing costs more than it saves. */
    private static final long TINY_MACS = 1L << 10;
    /** Up to this many rows the product streams B instead of packing (padding MR would waste most of the kernel). */
    private static final int SMALL_M = 4;

    /** Per-thread packing buffers, grown on demand and kept for the next call. */
    private static final class Buffers {
        float[] a = new float[0];
        float[] b = new float[0];
        final float[] tile = new float[MR * NR];

        float[] a(int size) {
            if (a.length < size) {
                a = new float[size];
            }
            return a;
        }

        float[] b(int size) {
            if (b.length < size) {
                b = new float[size];
            }
            return b;
        }
    }

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    /**
     * {@code C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C}, row-major, multithreaded (see the class comment).
     *
     * @param transA whether A is stored transposed, (K,M)
     * @param transB whether B is stored transposed, (N,K)
     * @param m      M, rows of C (&gt;= 0)
     * @param n      N, columns of C (&gt;= 0)
     * @param k      K, the inner dimension (&gt;= 0)
     * @param alpha  scale of the product
     * @param a      A's array
     * @param aOff   A's first element
     * @param lda    A's leading dimension (row stride of the stored matrix)
     * @param b      B's array
     * @param bOff   B's first element
     * @param ldb    B's leading dimension
     * @param beta   scale of the old C; 0 overwrites C without reading it
     * @param c      C's array, updated
     * @param cOff   C's first element
     * @param ldc    C's leading dimension
     * @throws IllegalArgumentException for a negative size, a too small leading dimension or an array too short
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                             float beta, float[] c, int cOff, int ldc) {
        validate(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0 || alpha == 0f) {
            scale(m, n, beta, c, cOff, ldc);
            return;
        }
        long macs = (long) m * n * k;
        if (macs <= TINY_MACS) {
            naive(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        } else if (m <= SMALL_M) {
            new SmallM(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc,
                    macs >= PARALLEL_MIN_MACS).run();
        } else {
            new Blocked(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc,
                    macs >= PARALLEL_MIN_MACS && CpuParallel.THREADS > 1).run();
        }
    }

    /**
     * Checks sizes, leading dimensions and array extents as {@link #sgemm} does; shared with the engine's
     * {@code OpenBlas}, whose native code cannot.
     *
     * @param transA whether A is stored transposed, (K,M)
     * @param transB whether B is stored transposed, (N,K)
     * @param m      M, rows of C
     * @param n      N, columns of C
     * @param k      K, the inner dimension
     * @param a      A's array
     * @param aOff   A's first element
     * @param lda    A's leading dimension
     * @param b      B's array
     * @param bOff   B's first element
     * @param ldb    B's leading dimension
     * @param c      C's array
     * @param cOff   C's first element
     * @param ldc    C's leading dimension
     * @throws IllegalArgumentException naming what does not fit
     */
    public static void validate(boolean transA, boolean transB, int m, int n, int k, float[] a, int aOff,
                         int lda, float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("sgemm: negative size m=" + m + " n=" + n + " k=" + k);
        }
        if (m == 0 || n == 0) {
            return;
        }
        if (ldc < n) {
            throw new IllegalArgumentException("sgemm: ldc=" + ldc + " is smaller than n=" + n);
        }
        checkExtent("C", c, cOff, m, n, ldc);
        if (k == 0) {
            return;
        }
        // A is stored (M,K), or (K,M) with transA; B is stored (K,N), or (N,K) with transB
        int aRows = transA ? k : m;
        int aCols = transA ? m : k;
        int bRows = transB ? n : k;
        int bCols = transB ? k : n;
        if (lda < aCols) {
            throw new IllegalArgumentException("sgemm: lda=" + lda + " is smaller than the " + aCols
                    + " columns of A as stored" + (transA ? " (transA: A is (K,M))" : " (A is (M,K))"));
        }
        if (ldb < bCols) {
            throw new IllegalArgumentException("sgemm: ldb=" + ldb + " is smaller than the " + bCols
                    + " columns of B as stored" + (transB ? " (transB: B is (N,K))" : " (B is (K,N))"));
        }
        checkExtent("A", a, aOff, aRows, aCols, lda);
        checkExtent("B", b, bOff, bRows, bCols, ldb);
    }

    private static void checkExtent(String name, float[] x, int off, int rows, int cols, int ld) {
        long last = (long) off + (long) (rows - 1) * ld + cols - 1;
        if (off < 0 || last >= x.length) {
            throw new IllegalArgumentException("sgemm: " + name + " (" + rows + "x" + cols + ", leading dimension "
                    + ld + ", offset " + off + ") needs " + (last + 1) + " floats but the array has " + x.length);
        }
    }

    private static void scale(int m, int n, float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            int ci = cOff + i * ldc;
            if (beta == 0f) {
                java.util.Arrays.fill(c, ci, ci + n, 0f);
            } else if (beta != 1f) {
                for (int j = 0; j < n; j++) {
                    c[ci + j] *= beta;
                }
            }
        }
    }

    private static void naive(boolean transA, boolean transB, int m, int n, int k, float alpha,
                              float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                              float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float s = 0f;
                for (int p = 0; p < k; p++) {
                    float av = transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p];
                    float bv = transB ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j];
                    s += av * bv;
                }
                int ci = cOff + i * ldc + j;
                c[ci] = beta == 0f ? alpha * s : alpha * s + beta * c[ci];
            }
        }
    }

    /** The packed, blocked, multithreaded product (see the class comment). */
    private static final class Blocked {
        final boolean transA;
        final boolean transB;
        final int m;
        final int n;
        final int k;
        final float alpha;
        final float[] a;
        final int aOff;
        final int lda;
        final float[] b;
        final int bOff;
        final int ldb;
        final float beta;
        final float[] c;
        final int cOff;
        final int ldc;
        final boolean parallel;

        Blocked(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int aOff, int lda,
                float[] b, int bOff, int ldb, float beta, float[] c, int cOff, int ldc, boolean parallel) {
            this.transA = transA;
            this.transB = transB;
            this.m = m;
            this.n = n;
            this.k = k;
            this.alpha = alpha;
            this.a = a;
            this.aOff = aOff;
            this.lda = lda;
            this.b = b;
            this.bOff = bOff;
            this.ldb = ldb;
            this.beta = beta;
            this.c = c;
            this.cOff = cOff;
            this.ldc = ldc;
            this.parallel = parallel;
        }

        void run() {
            // Wide C (n >= 2048): every K block re-reads and re-writes C from memory, so take K in fewer, larger
            // blocks (the B panel then lives in L2 instead of L1; measured single-threaded on 2048x4864x896: ~0.8
            // instead of ~0.7 of OpenBLAS); narrow C stays in L2 between K blocks and prefers the L1-sized block.
            int kBlocks = ceilDiv(k, n >= WIDE_N ? KC_WIDE : KC);
            // equal blocks rather than full blocks plus a thin tail
            int kcMax = ceilDiv(k, kBlocks);
            // B of one column block is packed for all K blocks at once, so a column block costs two parallel
            // phases (pack, compute) instead of two per K block; the block is capped to stay in the last-level cache
            int ncCap = Math.max(NR, B_PACK_FLOATS / (kBlocks * kcMax) / NR * NR);
            int nc0 = Math.min(NC, ncCap);
            int ncMax = roundUp(ceilDiv(n, ceilDiv(n, nc0)), NR);
            int blockFloats = ncMax * kcMax;
            // packed B: owned by the calling thread, read by all workers of this call
            float[] bp = BUFFERS.get().b(blockFloats * kBlocks);
            int threads = parallel ? CpuParallel.THREADS : 1;
            int mp = ceilDiv(m, MR);
            for (int jc = 0; jc < n; jc += ncMax) {
                int nc = Math.min(ncMax, n - jc);
                int np = ceilDiv(nc, NR);
                int jcF = jc;
                if (threads == 1) {
                    for (int kb = 0; kb < kBlocks; kb++) {
                        int pc = kb * kcMax;
                        SgemmKernels.packB(transB, b, bOff, ldb, pc, Math.min(kcMax, k - pc), jc, nc, 0, np, bp,
                                kb * blockFloats);
                    }
                    compute(0, m, 0, np, jc, nc, kcMax, blockFloats, bp);
                    continue;
                }
                CpuParallel.forRange(kBlocks * np, 1, (lo, hi) -> {
                    for (int x = lo; x < hi; x++) {
                        int kb = x / np;
                        int q = x % np;
                        int pc = kb * kcMax;
                        SgemmKernels.packB(transB, b, bOff, ldb, pc, Math.min(kcMax, k - pc), jcF, nc, q, q + 1, bp,
                                kb * blockFloats);
                    }
                });
                // Rows split without duplicated packing, into up to 8 chunks per thread (at least 4 slivers each)
                // handed out dynamically, so a thread that loses its core to another process does not hold the
                // others up for long. Few rows: split the columns once per thread, each thread packs all of A.
                boolean splitRows = mp >= 4 * threads || np < threads;
                int chunks = splitRows ? Math.max(threads, Math.min(8 * threads, mp / 4)) : threads;
                CpuParallel.forEach(chunks, t -> {
                    if (splitRows) {
                        int r0 = (int) ((long) mp * t / chunks) * MR;
                        int r1 = Math.min(m, (int) ((long) mp * (t + 1) / chunks) * MR);
                        compute(r0, r1, 0, np, jcF, nc, kcMax, blockFloats, bp);
                    } else {
                        int q0 = (int) ((long) np * t / chunks);
                        int q1 = (int) ((long) np * (t + 1) / chunks);
                        compute(0, m, q0, q1, jcF, nc, kcMax, blockFloats, bp);
                    }
                });
            }
        }

        /**
         * Rows [r0,r1) x B panels [q0,q1) of column block jc, over all K blocks; r0 is a multiple of MR. K blocks
         * outside the row blocks: one K block of packed B (KC x NC) is reused by every row block from L2.
         */
        void compute(int r0, int r1, int q0, int q1, int jc, int nc, int kcMax, int blockFloats, float[] bp) {
            if (r0 >= r1 || q0 >= q1) {
                return;
            }
            Buffers own = BUFFERS.get();
            int rows = r1 - r0;
            int mcStep = roundUp(ceilDiv(rows, ceilDiv(rows, MC)), MR);
            float[] ap = own.a(mcStep * kcMax);
            float[] tile = own.tile;
            for (int pc = 0, kb = 0; pc < k; pc += kcMax, kb++) {
                int kc = Math.min(kcMax, k - pc);
                // C is scaled by beta once, with the first K block; later blocks accumulate
                float betaBlock = pc == 0 ? beta : 1f;
                for (int ic = r0; ic < r1; ic += mcStep) {
                    int mc = Math.min(mcStep, r1 - ic);
                    SgemmKernels.packA(transA, a, aOff, lda, ic, mc, pc, kc, ap);
                    for (int q = q0; q < q1; q++) {
                        int js = q * NR;
                        int nr = Math.min(NR, nc - js);
                        int bo = kb * blockFloats + q * NR * kc;
                        int cBase = cOff + ic * ldc + jc + js;
                        for (int s = 0; s < mc; s += MR) {
                            int mr = Math.min(MR, mc - s);
                            if (mr == MR && nr == NR) {
                                SgemmKernels.kernel(kc, ap, s * kc, bp, bo, c, cBase + s * ldc, ldc, alpha,
                                        betaBlock);
                            } else {
                                SgemmKernels.edgeKernel(kc, ap, s * kc, bp, bo, tile, c, cBase + s * ldc, ldc, mr,
                                        nr, alpha, betaBlock);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * One to four rows: every element of B is used once per row, so the product is bound by reading B and
     * packing it would only add a pass. Columns are split across threads.
     */
    private static final class SmallM {
        final boolean transB;
        final int m;
        final int n;
        final int k;
        final float alpha;
        /** op(A) rows (M,K), contiguous with row stride {@code ars}. */
        final float[] ar;
        final int arOff;
        final int ars;
        final float[] b;
        final int bOff;
        final int ldb;
        final float beta;
        final float[] c;
        final int cOff;
        final int ldc;
        final boolean parallel;

        SmallM(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int aOff, int lda,
               float[] b, int bOff, int ldb, float beta, float[] c, int cOff, int ldc, boolean parallel) {
            this.transB = transB;
            this.m = m;
            this.n = n;
            this.k = k;
            this.alpha = alpha;
            if (transA) {
                // A is (K,M): gather the m columns into rows so the inner loops read contiguously
                float[] t = new float[m * k];
                for (int p = 0; p < k; p++) {
                    for (int i = 0; i < m; i++) {
                        t[i * k + p] = a[aOff + p * lda + i];
                    }
                }
                this.ar = t;
                this.arOff = 0;
                this.ars = k;
            } else {
                this.ar = a;
                this.arOff = aOff;
                this.ars = lda;
            }
            this.b = b;
            this.bOff = bOff;
            this.ldb = ldb;
            this.beta = beta;
            this.c = c;
            this.cOff = cOff;
            this.ldc = ldc;
            this.parallel = parallel;
        }

        void run() {
            if (parallel) {
                CpuParallel.forRange(n, 4 * VL, this::columns);
            } else {
                columns(0, n);
            }
        }

        void columns(int j0, int j1) {
            for (int i = 0; i < m; i++) {
                if (transB) {
                    dotRow(i, j0, j1);
                } else {
                    axpyRow(i, j0, j1);
                }
            }
        }

        private void store(int ci, float s) {
            c[ci] = beta == 0f ? alpha * s : alpha * s + beta * c[ci];
        }

        private void storeVec(int ci, FloatVector acc) {
            FloatVector r = acc.mul(alpha);
            if (beta != 0f) {
                r = FloatVector.fromArray(S, c, ci).fma(FloatVector.broadcast(S, beta), r);
            }
            r.intoArray(c, ci);
        }

        /** B is (K,N): C(i, j0:j1) = sum_p A(i,p) * B(p, j0:j1), four vectors of columns at a time. */
        private void axpyRow(int i, int j0, int j1) {
            int ai = arOff + i * ars;
            int ci = cOff + i * ldc;
            int j = j0;
            for (; j + 4 * VL <= j1; j += 4 * VL) {
                FloatVector s0 = FloatVector.zero(S);
                FloatVector s1 = s0;
                FloatVector s2 = s0;
                FloatVector s3 = s0;
                for (int p = 0; p < k; p++) {
                    FloatVector av = FloatVector.broadcast(S, ar[ai + p]);
                    int bi = bOff + p * ldb + j;
                    s0 = av.fma(FloatVector.fromArray(S, b, bi), s0);
                    s1 = av.fma(FloatVector.fromArray(S, b, bi + VL), s1);
                    s2 = av.fma(FloatVector.fromArray(S, b, bi + 2 * VL), s2);
                    s3 = av.fma(FloatVector.fromArray(S, b, bi + 3 * VL), s3);
                }
                storeVec(ci + j, s0);
                storeVec(ci + j + VL, s1);
                storeVec(ci + j + 2 * VL, s2);
                storeVec(ci + j + 3 * VL, s3);
            }
            for (; j + VL <= j1; j += VL) {
                FloatVector s0 = FloatVector.zero(S);
                for (int p = 0; p < k; p++) {
                    s0 = FloatVector.broadcast(S, ar[ai + p]).fma(FloatVector.fromArray(S, b, bOff + p * ldb + j), s0);
                }
                storeVec(ci + j, s0);
            }
            for (; j < j1; j++) {
                float s = 0f;
                for (int p = 0; p < k; p++) {
                    s += ar[ai + p] * b[bOff + p * ldb + j];
                }
                store(ci + j, s);
            }
        }

        /** B is (N,K): C(i,j) = dot(A(i,:), B(j,:)), four columns at a time sharing the loads of A. */
        private void dotRow(int i, int j0, int j1) {
            int ai = arOff + i * ars;
            int ci = cOff + i * ldc;
            int kv = k - k % VL;
            int j = j0;
            for (; j + 4 <= j1; j += 4) {
                int b0 = bOff + j * ldb;
                int b1 = b0 + ldb;
                int b2 = b1 + ldb;
                int b3 = b2 + ldb;
                FloatVector s0 = FloatVector.zero(S);
                FloatVector s1 = s0;
                FloatVector s2 = s0;
                FloatVector s3 = s0;
                for (int p = 0; p < kv; p += VL) {
                    FloatVector av = FloatVector.fromArray(S, ar, ai + p);
                    s0 = av.fma(FloatVector.fromArray(S, b, b0 + p), s0);
                    s1 = av.fma(FloatVector.fromArray(S, b, b1 + p), s1);
                    s2 = av.fma(FloatVector.fromArray(S, b, b2 + p), s2);
                    s3 = av.fma(FloatVector.fromArray(S, b, b3 + p), s3);
                }
                float d0 = CpuVec.sum(s0);
                float d1 = CpuVec.sum(s1);
                float d2 = CpuVec.sum(s2);
                float d3 = CpuVec.sum(s3);
                for (int p = kv; p < k; p++) {
                    float av = ar[ai + p];
                    d0 += av * b[b0 + p];
                    d1 += av * b[b1 + p];
                    d2 += av * b[b2 + p];
                    d3 += av * b[b3 + p];
                }
                store(ci + j, d0);
                store(ci + j + 1, d1);
                store(ci + j + 2, d2);
                store(ci + j + 3, d3);
            }
            for (; j < j1; j++) {
                int b0 = bOff + j * ldb;
                FloatVector s0 = FloatVector.zero(S);
                for (int p = 0; p < kv; p += VL) {
                    s0 = FloatVector.fromArray(S, ar, ai + p).fma(FloatVector.fromArray(S, b, b0 + p), s0);
                }
                float d0 = CpuVec.sum(s0);
                for (int p = kv; p < k; p++) {
                    d0 += ar[ai + p] * b[b0 + p];
                }
                store(ci + j, d0);
            }
        }
    }

    private static int ceilDiv(int x, int y) {
        return (x + y - 1) / y;
    }

    private static int roundUp(int x, int multiple) {
        return ceilDiv(x, multiple) * multiple;
    }
}
