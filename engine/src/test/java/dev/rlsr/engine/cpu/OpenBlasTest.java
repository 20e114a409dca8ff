package dev.rlsr.engine.cpu;


import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The OpenBLAS binding computes the same product as Sgemm's contract (row-major, offsets, lds, alpha/beta, all four
 * transposes); checked against a double reference with the tolerance of {@link SgemmTest}. Skips where
 * libopenblas is not installed.
 */
class OpenBlasTest {
    @Test
    void unavailableMeansAReason() {
        if (!OpenBlas.available()) {
            assertNotNull(OpenBlas.unavailableReason());
            assertTrue(OpenBlas.unavailableReason().contains("libopenblas"), OpenBlas.unavailableReason());
            assertThrows(IllegalStateException.class, () -> OpenBlas.setThreads(1));
        }
    }

    @Test
    void matchesDoubleReference() {
        Assumptions.assumeTrue(OpenBlas.available(), () -> "skipped: " + OpenBlas.unavailableReason());
        SplittableRandom rnd = new SplittableRandom(42);
        int[][] shapes = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {129, 255, 300}};
        for (int[] s : shapes) {
            for (int t = 0; t < 4; t++) {
                boolean ta = (t & 1) != 0;
                boolean tb = (t & 2) != 0;
                int m = s[0];
                int n = s[1];
                int k = s[2];
                int lda = (ta ? m : k) + 3;
                int ldb = (tb ? k : n) + 1;
                int ldc = n + 2;
                float[] a = random(rnd, 2 + (ta ? k : m) * lda);
                float[] b = random(rnd, 1 + (tb ? n : k) * ldb);
                float[] c = random(rnd, 5 + m * ldc);
                float[] c0 = c.clone();
                OpenBlas.sgemm(ta, tb, m, n, k, 0.5f, a, 2, lda, b, 1, ldb, -1.25f, c, 5, ldc);
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double sum = 0;
                        double mag = 0;
                        for (int p = 0; p < k; p++) {
                            double av = ta ? a[2 + p * lda + i] : a[2 + i * lda + p];
                            double bv = tb ? b[1 + j * ldb + p] : b[1 + p * ldb + j];
                            sum += av * bv;
                            mag += Math.abs(av * bv);
                        }
                        double cOld = c0[5 + i * ldc + j];
                        double ref = 0.5 * sum - 1.25 * cOld;
                        double tol = 1e-5 * Math.sqrt(k + 1.0) * (1 + 0.5 * mag + 1.25 * Math.abs(cOld));
                        double got = c[5 + i * ldc + j];
                        assertTrue(Math.abs(got - ref) <= tol, String.format(
                                "m=%d n=%d k=%d transA=%s transB=%s C(%d,%d)=%s reference %s", m, n, k, ta, tb, i, j,
                                got, ref));
                    }
                }
            }
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
