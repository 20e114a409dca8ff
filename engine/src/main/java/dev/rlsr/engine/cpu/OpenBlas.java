package dev.rlsr.engine.cpu;

import dev.rlsr.kernels.cpu.Sgemm;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Optional FFM binding of OpenBLAS's {@code cblas_sgemm}, used by the benchmarks to put {@link Sgemm} side by side
 * with a tuned native BLAS on the same machine. Not used by the CPU backend.
 *
 * <p>The library is found by soname {@code libopenblas.so.0} (Debian/Ubuntu: {@code apt-get install
 * libopenblas0-pthread}), or at the path given by the system property {@code rlsr.openblas.lib}. When it is absent,
 * {@link #available()} is false and {@link #unavailableReason()} says why; every call then throws.
 *
 * <p>The float[] overload passes the Java arrays to native code directly (a critical downcall with heap access,
 * no copies); the garbage collector waits while such a call runs, which is fine for a benchmark and is one reason
 * this is not the backend's path.
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class OpenBlas {
    private OpenBlas() {}

    /** The soname looked up when {@code rlsr.openblas.lib} is not set. */
    public static final String SONAME = "libopenblas.so.0";

    private static final int CBLAS_ROW_MAJOR = 101;
    private static final int CBLAS_NO_TRANS = 111;
    private static final int CBLAS_TRANS = 112;

    private static final MethodHandle SGEMM_HEAP;
    private static final MethodHandle SET_NUM_THREADS;
    private static final MethodHandle GET_NUM_THREADS;
    private static final MethodHandle GET_CONFIG;
    private static final String REASON;

    static {
        String lib = System.getProperty("rlsr.openblas.lib", SONAME);
        MethodHandle sgemm = null;
        MethodHandle setThreads = null;
        MethodHandle getThreads = null;
        MethodHandle config = null;
        String reason = null;
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(lib, Arena.global());
            Linker linker = Linker.nativeLinker();
            ValueLayout.OfInt i = ValueLayout.JAVA_INT;
            ValueLayout.OfFloat f = ValueLayout.JAVA_FLOAT;
            ValueLayout p = ValueLayout.ADDRESS;
            // void cblas_sgemm(layout, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
            sgemm = linker.downcallHandle(find(lookup, "cblas_sgemm"),
                    FunctionDescriptor.ofVoid(i, i, i, i, i, i, f, p, i, p, i, f, p, i),
                    Linker.Option.critical(true));
            setThreads = linker.downcallHandle(find(lookup, "openblas_set_num_threads"), FunctionDescriptor.ofVoid(i));
            getThreads = linker.downcallHandle(find(lookup, "openblas_get_num_threads"), FunctionDescriptor.of(i));
            config = linker.downcallHandle(find(lookup, "openblas_get_config"), FunctionDescriptor.of(p));
        } catch (IllegalArgumentException | UnsatisfiedLinkError | IllegalCallerException e) {
            reason = "OpenBLAS is not available (" + lib + "): " + e.getMessage()
                    + ". Install it (Debian/Ubuntu: apt-get install libopenblas0-pthread) or point -Drlsr.openblas.lib"
                    + " at the library; the JVM also needs --enable-native-access=ALL-UNNAMED.";
            sgemm = null;
        }
        SGEMM_HEAP = sgemm;
        SET_NUM_THREADS = setThreads;
        GET_NUM_THREADS = getThreads;
        GET_CONFIG = config;
        REASON = reason;
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalArgumentException("symbol " + name + " not found"));
    }

    /** {@return whether libopenblas was found and bound} */
    public static boolean available() {
        return SGEMM_HEAP != null;
    }

    /** {@return why OpenBLAS is unavailable, or null when it is available} */
    public static String unavailableReason() {
        return REASON;
    }

    private static void require() {
        if (SGEMM_HEAP == null) {
            throw new IllegalStateException(REASON);
        }
    }

    /**
     * Sets the number of threads OpenBLAS uses for the following calls (openblas_set_num_threads).
     *
     * @param threads threads, &gt;= 1
     */
    public static void setThreads(int threads) {
        require();
        if (threads < 1) {
            throw new IllegalArgumentException("OpenBLAS threads must be >= 1, got " + threads);
        }
        try {
            SET_NUM_THREADS.invokeExact(threads);
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_set_num_threads failed", t);
        }
    }

    /** {@return the number of threads OpenBLAS uses (openblas_get_num_threads)} */
    public static int threads() {
        require();
        try {
            return (int) GET_NUM_THREADS.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_get_num_threads failed", t);
        }
    }

    /** {@return the build configuration string of the loaded library (openblas_get_config), e.g. its target core} */
    public static String config() {
        require();
        try {
            MemorySegment s = (MemorySegment) GET_CONFIG.invokeExact();
            return s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_get_config failed", t);
        }
    }

    /**
     * Same contract as {@link Sgemm#sgemm} (row-major, {@code C = alpha*op(A)*op(B) + beta*C}), computed by
     * {@code cblas_sgemm}. Bounds are checked in Java first: native code would not check them.
     *
     * @param transA whether A is stored transposed, (K,M)
     * @param transB whether B is stored transposed, (N,K)
     * @param m      M, rows of C
     * @param n      N, columns of C
     * @param k      K, the inner dimension
     * @param alpha  scale of the product
     * @param a      A's array
     * @param aOff   A's first element
     * @param lda    A's leading dimension
     * @param b      B's array
     * @param bOff   B's first element
     * @param ldb    B's leading dimension
     * @param beta   scale of the old C; 0 overwrites C
     * @param c      C's array, updated
     * @param cOff   C's first element
     * @param ldc    C's leading dimension
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                             float beta, float[] c, int cOff, int ldc) {
        require();
        Sgemm.validate(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0) {
            // nothing of A or B is read; the arrays may be empty, which a native slice cannot express
            Sgemm.sgemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
            return;
        }
        // cblas wants lda >= 1 even where A is not read
        int ldaC = Math.max(1, Math.max(lda, transA ? m : k));
        int ldbC = Math.max(1, Math.max(ldb, transB ? k : n));
        try {
            SGEMM_HEAP.invokeExact(CBLAS_ROW_MAJOR, transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
                    transB ? CBLAS_TRANS : CBLAS_NO_TRANS, m, n, k, alpha,
                    MemorySegment.ofArray(a).asSlice((long) aOff * Float.BYTES), ldaC,
                    MemorySegment.ofArray(b).asSlice((long) bOff * Float.BYTES), ldbC, beta,
                    MemorySegment.ofArray(c).asSlice((long) cOff * Float.BYTES), ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }
}
