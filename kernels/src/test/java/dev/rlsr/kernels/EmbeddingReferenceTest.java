package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link EmbeddingReference}: the forward against the index formula (exact), the backward against double
 * scatter-add sums, within the worst-case bound of sequential fp32 sums: (k + 1) * 2^-24 * (|dTable0| + sum |dOut|)
 * for a row hit k times.
 */
class EmbeddingReferenceTest {
    @Test
    void forwardCopiesRows() {
        Random r = new Random(5);
        int v = 50, c = 33, n = 40;
        int[] ids = new int[n + 1];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(v);
        }
        float[] table = GpuSupport.randn(r, 2 + v * c, 1f);
        float[] out = new float[n * c + 1];
        EmbeddingReference.forward(ids, 1, n, table, 2, v, c, out, 1);
        short[] tb = Bf16Exact.nearest(table);
        short[] ob = new short[n * c];
        EmbeddingReference.forward(ids, 1, n, tb, 2, v, c, ob, 0);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < c; j++) {
                assertEquals(table[2 + ids[1 + i] * c + j], out[1 + i * c + j]);
                assertEquals(tb[2 + ids[1 + i] * c + j], ob[i * c + j]);
            }
        }
        ids[7] = v;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> EmbeddingReference.forward(ids, 1, n, table, 2, v, c, out, 1));
        assertTrue(e.getMessage().contains("position 6"), e.getMessage());
    }

    @Test
    void backwardScatterAdds() {
        Random r = new Random(6);
        for (int[] s : new int[][] {{1, 1, 1}, {10, 7, 100}, {1000, 33, 3000}, {37, 896, 700}}) {
            int v = s[0], c = s[1], n = s[2];
            int[] ids = new int[n];
            for (int i = 0; i < n; i++) {
                ids[i] = i % 5 == 0 ? 0 : r.nextInt(v); // row 0 repeated often
            }
            float[] dOut = GpuSupport.randn(r, n * c, 1f);
            float[] dTable = GpuSupport.randn(r, v * c + 1, 1f);
            float[] t0 = dTable.clone();
            EmbeddingReference.backward(ids, 0, n, dOut, 0, c, dTable, 1, v);
            short[] dOutB = Bf16Exact.nearest(dOut);
            float[] dTableB = t0.clone();
            EmbeddingReference.backward(ids, 0, n, dOutB, 0, c, dTableB, 1, v);
            double[] sum = new double[v * c], abs = new double[v * c], sumB = new double[v * c], absB = new double[v * c];
            int[] hits = new int[v];
            for (int k = 0; k < v * c; k++) {
                sum[k] = sumB[k] = t0[1 + k];
                abs[k] = absB[k] = Math.abs(t0[1 + k]);
            }
            for (int i = 0; i < n; i++) {
                hits[ids[i]]++;
                for (int j = 0; j < c; j++) {
                    int k = ids[i] * c + j;
                    sum[k] += dOut[i * c + j];
                    abs[k] += Math.abs(dOut[i * c + j]);
                    double b = Bf16Exact.value(dOutB[i * c + j]);
                    sumB[k] += b;
                    absB[k] += Math.abs(b);
                }
            }
            assertEquals(t0[0], dTable[0], "element before the view untouched");
            for (int k = 0; k < v * c; k++) {
                double bound = (hits[k / c] + 1) * 0x1p-24;
                assertEquals(sum[k], dTable[1 + k], bound * abs[k], "v=" + v + " c=" + c + " element " + k);
                assertEquals(sumB[k], dTableB[1 + k], bound * absB[k], "bf16 v=" + v + " c=" + c + " element " + k);
            }
        }
    }

    @Test
    void unusedRowsStayBitIdentical() {
        int v = 4, c = 3;
        float[] dTable = {1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 9f, 10f, 11f, 12f};
        EmbeddingReference.backward(new int[] {2, 2}, 0, 2, new float[] {1, 1, 1, 2, 2, 2}, 0, c, dTable, 0, v);
        assertArrayEquals(new float[] {1f, 2f, 3f, 4f, 5f, 6f, 10f, 11f, 12f, 10f, 11f, 12f}, dTable);
    }
}
