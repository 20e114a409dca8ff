package dev.rlsr.kernels.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Sgemm against a double-precision triple loop on seeded random inputs in [-1, 1).
 *
 * <p>Tolerance: {@code |c - ref| <= 1e-5 * sqrt(k + 1) * (1 + mag)} where {@code mag = |alpha| * sum_p |A(i,p) B(p,j)|
 * + |beta C0(i,j)|}; fp32 rounding of a k-term sum grows like sqrt(k) * 6e-8 * mag, so this leaves ~100x headroom
 * while one missing or doubled term (|A B| ~ 0.25 on average) still fails for every shape tested here.
 * Elements of the C array outside the (M,N) window (offset, ldc padding) must keep their sentinel value, and with
 * beta == 0 the window is NaN-poisoned first, so an element the product does not write fails.
 */
class SgemmTest {
    private static final float SENTINEL = 12345.5f;

    static Stream<Arguments> shapes() {
        int[][] mnk = {
                {1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {129, 255, 300}, {12, 32, 64}, {24, 64, 256}, {13, 33, 257},
                {1, 4096, 64}, {3, 5000, 200}, {4, 100, 7}, {5, 31, 9}, {1000, 3, 40}, {2, 2, 1000},
                {400, 70, 33}, {11, 4100, 5}, {300, 96, 600}, {64, 1, 64}, {1, 1, 5000}, {250, 250, 1},
                {20, 2100, 1100},
        };
        List<Arguments> out = new ArrayList<>();
        for (int[] s : mnk) {
            for (int t = 0; t < 4; t++) {
                out.add(Arguments.of(s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "m={0} n={1} k={2} transA={3} transB={4}")
    @MethodSource("shapes")
    void matchesDoubleReference(int m, int n, int k, boolean transA, boolean transB) {
        long seed = 31L * m + 17L * n + 7L * k + (transA ? 1 : 0) + (transB ? 2 : 0);
        check(seed, transA, transB, m, n, k, 1f, 0f, 0, 0, 0, 0, 0, 0);
        check(seed + 1, transA, transB, m, n, k, -0.75f, 1f, 0, 0, 0, 0, 0, 0);
        check(seed + 2, transA, transB, m, n, k, 1.5f, -0.5f, 3, 2, 5, 7, 1, 9);
    }

    @Test
    void zeroKScalesByBeta() {
        check(5, false, false, 9, 40, 0, 1f, 0.5f, 0, 0, 0, 0, 0, 0);
        check(6, true, true, 9, 40, 0, 1f, 0f, 1, 2, 3, 0, 0, 0);
    }

    @Test
    void zeroAlphaOnlyScales() {
        check(7, false, true, 20, 50, 30, 0f, 2f, 0, 0, 0, 0, 0, 0);
    }

    @Test
    void emptyShapesDoNothing() {
        float[] c = {SENTINEL};
        Sgemm.sgemm(false, false, 0, 5, 5, 1f, new float[0], 0, 5, new float[25], 0, 5, 0f, c, 0, 5);
        Sgemm.sgemm(false, false, 5, 0, 5, 1f, new float[25], 0, 5, new float[0], 0, 0, 0f, c, 0, 0);
        assertEquals(SENTINEL, c[0]);
    }

    @Test
    void nestedCallsFromPoolWorkersAreCorrect() {
        // inside a CpuParallel worker Sgemm must run alone on that worker, and threads must not share buffers
        int tasks = 4;
        boolean[] ok = new boolean[tasks];
        CpuParallel.forEach(tasks, t -> {
            check(100 + t, t % 2 == 0, t / 2 == 1, 150 + t, 90, 270, 1f, 0f, 0, 0, 0, 0, 0, 0);
            ok[t] = true;
        });
        for (boolean b : ok) {
            assertTrue(b);
        }
    }

    @Test
    void rejectsTooSmallLeadingDimensionsAndArrays() {
        float[] a = new float[6 * 4];
        float[] b = new float[4 * 5];
        float[] c = new float[6 * 5];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Sgemm.sgemm(false, false, 6, 5, 4, 1f, a, 0, 3, b, 0, 5, 0f, c, 0, 5));
        assertTrue(e.getMessage().contains("lda=3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Sgemm.sgemm(false, true, 6, 5, 4, 1f, a, 0, 4, b, 0, 5, 0f, c, 0, 5));
        assertTrue(e.getMessage().contains("B"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Sgemm.sgemm(false, false, 6, 5, 4, 1f, a, 0, 4, b, 0, 5, 0f, c, 1, 5));
        assertTrue(e.getMessage().contains("C"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> Sgemm.sgemm(false, false, -1, 5, 4, 1f, a, 0, 4, b, 0, 5, 0f, c, 0, 5));
    }

    /**
     * Runs one product with padded leading dimensions ({@code ld = dim + pad}) and offsets, and compares it to the
     * double reference.
     */
    private static void check(long seed, boolean transA, boolean transB, int m, int n, int k, float alpha, float beta,
                              int aOffset, int bOffset, int cOffset, int aPad, int bPad, int cPad) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int aRows = transA ? k : m;
        int aCols = transA ? m : k;
        int bRows = transB ? n : k;
        int bCols = transB ? k : n;
        int lda = aCols + aPad;
        int ldb = bCols + bPad;
        int ldc = n + cPad;
        float[] a = random(rnd, aOffset + Math.max(0, aRows * lda) + 3);
        float[] b = random(rnd, bOffset + Math.max(0, bRows * ldb) + 3);
        float[] c = new float[cOffset + m * ldc + 3];
        java.util.Arrays.fill(c, SENTINEL);
        float[] c0 = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float v = beta == 0f ? Float.NaN : (float) (rnd.nextDouble() * 2 - 1);
                c0[i * n + j] = v;
                c[cOffset + i * ldc + j] = v;
            }
        }
        Sgemm.sgemm(transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);

        int bad = 0;
        StringBuilder msg = new StringBuilder();
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                double mag = 0;
                for (int p = 0; p < k; p++) {
                    double av = transA ? a[aOffset + p * lda + i] : a[aOffset + i * lda + p];
                    double bv = transB ? b[bOffset + j * ldb + p] : b[bOffset + p * ldb + j];
                    s += av * bv;
                    mag += Math.abs(av * bv);
                }
                double ref = alpha * s;
                mag = Math.abs(alpha) * mag;
                if (beta != 0f) {
                    ref += beta * (double) c0[i * n + j];
                    mag += Math.abs(beta * (double) c0[i * n + j]);
                }
                double got = c[cOffset + i * ldc + j];
                double tol = 1e-5 * Math.sqrt(k + 1.0) * (1 + mag);
                if (!(Math.abs(got - ref) <= tol)) {
                    if (bad++ < 5) {
                        msg.append(String.format("  C(%d,%d) = %s, reference %s, tolerance %.3g%n", i, j, got, ref, tol));
                    }
                }
            }
        }
        for (int idx = 0; idx < c.length; idx++) {
            int rel = idx - cOffset;
            boolean inside = rel >= 0 && rel / ldc < m && rel % ldc < n;
            if (!inside && c[idx] != SENTINEL) {
                if (bad++ < 5) {
                    msg.append(String.format("  C array index %d outside the (M,N) window was written: %s%n", idx, c[idx]));
                }
            }
        }
        if (bad > 0) {
            fail(String.format("sgemm seed=%d transA=%s transB=%s m=%d n=%d k=%d alpha=%s beta=%s offsets=%d,%d,%d "
                            + "lds=%d,%d,%d: %d mismatches, first:%n%s", seed, transA, transB, m, n, k, alpha, beta,
                    aOffset, bOffset, cOffset, lda, ldb, ldc, bad, msg));
        }
    }

    private static float[] random(SplittableRandom rnd, int size) {
        float[] x = new float[size];
        for (int i = 0; i < size; i++) {
            x[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        return x;
    }
}
