package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link ElementwiseReference} against double formulas. add and scale are exact: the sum or product of two floats
 * computed in double and rounded to float is the correctly rounded fp32 result (the double product is exact; the
 * double sum is exact for operands within 2^29 of each other, as these are), bf16 then rounded with
 * {@link Bf16Exact}. The bias gradient's row-by-row fp32 sums are within the worst-case bound
 * rows * 2^-24 * (|dBias0| + sum |dy|) of the double sums.
 */
class ElementwiseReferenceTest {
    private static final long SEED = 23L;

    @Test
    void fillWritesTheViewOnly() {
        float[] f = new float[10];
        ElementwiseReference.fill(f, 2, 7, 1.5f);
        assertEquals(0f, f[1]);
        assertEquals(1.5f, f[2]);
        assertEquals(1.5f, f[8]);
        assertEquals(0f, f[9]);
        short[] b = new short[10];
        ElementwiseReference.fill(b, 1, 8, 0.1f);
        assertEquals(Bf16Exact.nearest(0.1f), b[1]);
        assertEquals(Bf16Exact.nearest(0.1f), b[8]);
        assertEquals(0, b[9]);
        int[] t = new int[4];
        ElementwiseReference.fill(t, 1, 2, -7);
        assertEquals(0, t[0]);
        assertEquals(-7, t[2]);
        assertEquals(0, t[3]);
    }

    /** t += delta against the same sum in long arithmetic reduced modulo 2^32 (two's complement wrap). */
    @Test
    void addI32AddsOverTheViewAndWraps() {
        Random r = new Random(SEED + 2);
        int n = 37, off = 3;
        int[] t = new int[off + n + 2];
        for (int i = 0; i < t.length; i++) {
            t[i] = r.nextInt();
        }
        t[off] = Integer.MAX_VALUE;
        t[off + 1] = Integer.MIN_VALUE;
        t[off + 2] = -1;
        int[] before = t.clone();
        for (int delta : new int[] {1, -1, 5, Integer.MIN_VALUE}) {
            int[] now = t.clone();
            ElementwiseReference.addI32(t, off, n, delta);
            for (int i = 0; i < t.length; i++) {
                boolean inView = i >= off && i < off + n;
                long wrapped = Math.floorMod((long) now[i] + delta + (1L << 31), 1L << 32) - (1L << 31);
                assertEquals(inView ? wrapped : before[i], t[i], "delta " + delta + " element " + i);
            }
        }
        // by hand, net delta 5 + MIN: MAX + 5 + MIN = 4, MIN + 5 + MIN = 5 (mod 2^32), -1 + 5 + MIN = MIN + 4
        assertEquals(4, t[off]);
        assertEquals(5, t[off + 1]);
        assertEquals(Integer.MIN_VALUE + 4, t[off + 2]);
    }

    @Test
    void addAndScaleAreCorrectlyRounded() {
        Random r = new Random(SEED);
        for (int n : new int[] {1, 7, 33, 4097, 100_003}) {
            float[] a = GpuSupport.randn(r, n + 3, 2f), b = GpuSupport.randn(r, n + 5, 0.5f);
            float[] out = new float[n + 1];
            ElementwiseReference.add(a, 3, b, 5, out, 1, n);
            for (int i = 0; i < n; i++) {
                assertEquals((float) ((double) a[3 + i] + b[5 + i]), out[1 + i], "add n=" + n + " i=" + i);
            }
            // in place: out is a
            float[] a2 = a.clone();
            ElementwiseReference.add(a2, 3, b, 5, a2, 3, n);
            for (int i = 0; i < n; i++) {
                assertEquals(out[1 + i], a2[3 + i], "in-place add n=" + n);
            }
            float[] s = a.clone();
            ElementwiseReference.scale(s, 3, n, -0.37f);
            assertEquals(a[2], s[2], "scale leaves the element before the view");
            for (int i = 0; i < n; i++) {
                assertEquals((float) ((double) a[3 + i] * -0.37f), s[3 + i], "scale n=" + n + " i=" + i);
            }

            short[] ab = Bf16Exact.nearest(a), bb = Bf16Exact.nearest(b);
            short[] ob = new short[n];
            ElementwiseReference.add(ab, 3, bb, 5, ob, 0, n);
            ElementwiseReference.scale(bb, 5, n, 3.3f);
            for (int i = 0; i < n; i++) {
                float sum = (float) (Bf16Exact.value(ab[3 + i]) + Bf16Exact.value(Bf16Exact.nearest(b[5 + i])));
                assertEquals(Bf16Exact.nearest(sum), ob[i], "bf16 add n=" + n + " i=" + i);
                float prod = (float) (Bf16Exact.value(Bf16Exact.nearest(b[5 + i])) * 3.3f);
                assertEquals(Bf16Exact.nearest(prod), bb[5 + i], "bf16 scale n=" + n + " i=" + i);
            }
        }
    }

    @Test
    void biasGradAccumulatesColumnSums() {
        Random r = new Random(SEED + 1);
        int[][] shapes = {{1, 1}, {3, 7}, {129, 33}, {1000, 4097}, {8192, 5}};
        for (int[] s : shapes) {
            int rows = s[0], cols = s[1], off = 3;
            float[] dy = GpuSupport.randn(r, rows * cols + off, 1f);
            float[] db = GpuSupport.randn(r, cols + 2, 1f);
            float[] db0 = db.clone();
            ElementwiseReference.biasGrad(dy, off, rows, cols, db, 2);
            short[] dyb = Bf16Exact.nearest(dy);
            float[] dbb = db0.clone();
            ElementwiseReference.biasGrad(dyb, off, rows, cols, dbb, 2);
            assertEquals(db0[1], db[1], "element before the view untouched");
            for (int c = 0; c < cols; c++) {
                double sum = db0[2 + c], abs = Math.abs(db0[2 + c]), sumB = db0[2 + c], absB = abs;
                for (int row = 0; row < rows; row++) {
                    float v = dy[off + row * cols + c];
                    sum += v;
                    abs += Math.abs(v);
                    double vb = Bf16Exact.value(dyb[off + row * cols + c]);
                    sumB += vb;
                    absB += Math.abs(vb);
                }
                String where = "rows=" + rows + " cols=" + cols + " c=" + c + " seed " + (SEED + 1);
                assertEquals(sum, db[2 + c], rows * 0x1p-24 * abs, where);
                assertEquals(sumB, dbb[2 + c], rows * 0x1p-24 * absB, "bf16 " + where);
            }
        }
    }

    @Test
    void viewsOutsideTheArrayAreRejected() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ElementwiseReference.scale(new float[4], 2, 3, 1f));
        assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
    }
}
