package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

/**
 * CPU reference and CPU implementation of {@link Embedding} on {@code (array, offset)} views (CpuBackend's
 * {@code embedding} and {@code embeddingBackward}, same arithmetic and splits). An id outside [0, V) throws, naming
 * the position (the kernel writes a NaN row / skips it instead).
 */
public final class EmbeddingReference {
    /** Rows per parallel range of the forward copy. */
    private static final int ROW_GRAIN = 16;

    private EmbeddingReference() {
    }

    /**
     * {@code out[i, :] = table[ids[i], :]} for i &lt; n.
     *
     * @param ids      token ids
     * @param idsOff   first id of the view
     * @param n        tokens
     * @param table    embedding table (v, c): float[] or short[] (bf16 bits)
     * @param tableOff its offset
     * @param v        vocabulary rows
     * @param c        hidden size
     * @param out      output (n, c), same array type as the table
     * @param outOff   its offset
     */
    public static void forward(int[] ids, int idsOff, int n, Object table, int tableOff, int v, int c, Object out,
            int outOff) {
        Rows.checkPositive("c (hidden size)", c);
        checkIds(ids, idsOff, n, v);
        Views.check("table", java.lang.reflect.Array.getLength(table), tableOff, (long) v * c);
        Views.check("out", java.lang.reflect.Array.getLength(out), outOff, (long) n * c);
        CpuParallel.forRange(n, CpuParallel.grain(c, ROW_GRAIN), (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                System.arraycopy(table, tableOff + ids[idsOff + i] * c, out, outOff + i * c, c);
            }
        });
    }

    /**
     * {@code dTable[ids[i], :] += dOut[i, :]} for i &lt; n, in id order per column block (columns split over the CPU
     * threads, so repeated ids never race).
     *
     * @param ids       token ids
     * @param idsOff    first id of the view
     * @param n         tokens
     * @param dOut      upstream gradient (n, c)
     * @param dOutOff   its offset
     * @param c         hidden size
     * @param dTable    table gradient (v, c), accumulated
     * @param dTableOff its offset
     * @param v         vocabulary rows
     */
    public static void backward(int[] ids, int idsOff, int n, float[] dOut, int dOutOff, int c, float[] dTable,
            int dTableOff, int v) {
        Rows.checkPositive("c (hidden size)", c);
        checkIds(ids, idsOff, n, v);
        Views.check("dOut", dOut.length, dOutOff, (long) n * c);
        Views.check("dTable", dTable.length, dTableOff, (long) v * c);
        int chunk = Math.max(L, ((c / CpuParallel.THREADS) + L - 1) / L * L);
        int chunks = (c + chunk - 1) / chunk;
        CpuParallel.forEach(chunks, k -> {
            int j0 = k * chunk, len = Math.min(c, j0 + chunk) - j0;
            for (int i = 0; i < n; i++) {
                CpuVec.axpy(1f, dOut, dOutOff + i * c + j0, dTable, dTableOff + ids[idsOff + i] * c + j0, len);
            }
        });
    }

    /**
     * bf16 dOut, widened exactly, then the fp32 backward.
     *
     * @param ids       token ids
     * @param idsOff    first id of the view
     * @param n         tokens
     * @param dOut      upstream gradient (n, c), bf16 bits
     * @param dOutOff   its offset
     * @param c         hidden size
     * @param dTable    F32 table gradient (v, c), accumulated
     * @param dTableOff its offset
     * @param v         vocabulary rows
     */
    public static void backward(int[] ids, int idsOff, int n, short[] dOut, int dOutOff, int c, float[] dTable,
            int dTableOff, int v) {
        Rows.checkPositive("c (hidden size)", c);
        backward(ids, idsOff, n, Views.widen(dOut, dOutOff, Math.multiplyExact(n, c)), 0, c, dTable, dTableOff, v);
    }

    private static void checkIds(int[] ids, int idsOff, int n, int v) {
        Views.check("ids", ids.length, idsOff, n);
        for (int i = 0; i < n; i++) {
            int id = ids[idsOff + i];
            if (id < 0 || id >= v) {
                throw new IllegalArgumentException("token id " + id + " at position " + i
                        + " is outside the vocabulary [0, " + v + ")");
            }
        }
    }
}
