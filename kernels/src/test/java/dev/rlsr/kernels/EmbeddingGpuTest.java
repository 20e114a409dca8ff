package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Embedding forward (gather, exact; an id outside [0, V) gives a NaN row) and backward (embedding.cu) vs
 * {@link EmbeddingReference}.
 *
 * <p>Backward cases: N from 1 to 8200 (one sort tile of 2048, several tiles and merge passes), ids repeated across
 * many 32-entry chunks (a padding-like id taking a third of the tokens), runs ending exactly on chunk boundaries,
 * ids outside [0, V) (skipped: the expected result is the reference over the valid positions only), C = 1, 7, 33 (the
 * one-column path) and 64, 896 (the 16-byte path), dOut views off 16-byte boundaries. Tolerance: the device sums a
 * run of k hits in n order, cut into pieces of at most 32 whose sums are added in order, the reference row by row
 * into dTable: both within u sqrt(k+1) S of the exact sum with overwhelming probability (u = 2^-24, S = |dTable0| +
 * sum of |dOut| over the hits), so |gpu - ref| &lt;= 2 u sqrt(k+1) S; a lost or doubled row would be off by ~|dOut|.
 * Two launches must give the same bits (determinism), and rows no id hits must keep their bits.
 */
@Tag("gpu")
class EmbeddingGpuTest {
    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void forwardGathersRowsAndFlagsBadIds() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int c : new int[] {1, 7, 896}) {
                int v = 300, n = 77;
                long seed = 900L + c;
                Random r = new Random(seed);
                float[] table = DeviceArrays.held(GpuSupport.randn(r, v * c, 1f), dt);
                int[] ids = new int[n];
                for (int i = 0; i < n; i++) {
                    ids[i] = r.nextInt(v);
                }
                ids[3] = -5;
                ids[10] = v;
                float[] want = new float[n * c];
                for (int i = 0; i < n; i++) {
                    if (ids[i] < 0 || ids[i] >= v) {
                        Arrays.fill(want, i * c, (i + 1) * c, Float.NaN);
                    } else {
                        EmbeddingReference.forward(ids, i, 1, table, 0, v, c, want, i * c);
                    }
                }
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    DeviceArrays.Buf t = DeviceArrays.upload(m, table, dt, 0);
                    DeviceArrays.Buf d = DeviceArrays.upload(m, ids, 0);
                    DeviceArrays.Buf out = DeviceArrays.poisoned(m, (long) n * c * dt.bytes(), dt.bytes());
                    Elementwise.fill(out.addr(), dt, (long) n * c, 5f, 0); // not NaN: a skipped bad row would show
                    Embedding.forward(d.addr(), n, t.addr(), dt, v, c, out.addr(), 0);
                    String what = "embedding forward " + dt + " c=" + c;
                    float[] got = out.floats(dt);
                    DeviceArrays.assertSameValues(what, seed, want, got);
                    assertTrue(Float.isNaN(got[3 * c]) && Float.isNaN(got[10 * c + c - 1]), what + ": bad ids give NaN");
                    out.assertGuards(what);
                }
            }
        }
    }

    /** {N, V, C, pattern}: 0 random ids, 1 a third of the tokens one id, 2 runs of 32 and 33 equal ids in order. */
    private static final int[][] BACKWARD = {{1, 1, 1, 0}, {7, 3, 7, 0}, {33, 5, 33, 1}, {2048, 500, 64, 1},
            {2049, 100, 33, 2}, {4097, 4000, 7, 0}, {8200, 151936, 8, 1}, {3000, 50, 896, 1}, {700, 1000, 896, 2}};

    @Test
    void backwardIsDeterministicAndMatchesTheReference() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int[] s : BACKWARD) {
                int n = s[0], v = s[1], c = s[2], pattern = s[3];
                long seed = 1000L * n + c + pattern;
                Random r = new Random(seed);
                int[] ids = ids(r, n, v, pattern);
                float[] dOut = DeviceArrays.held(GpuSupport.randn(r, n * c, 1f), dt);
                float[] t0 = GpuSupport.randn(r, v * c, 1f);
                // reference over the valid ids only (the device skips the others)
                int valid = 0;
                int[] validIds = new int[n];
                float[] validOut = new float[n * c];
                for (int i = 0; i < n; i++) {
                    if (ids[i] >= 0 && ids[i] < v) {
                        validIds[valid] = ids[i];
                        System.arraycopy(dOut, i * c, validOut, valid * c, c);
                        valid++;
                    }
                }
                float[] want = t0.clone();
                if (valid > 0) {
                    EmbeddingReference.backward(validIds, 0, valid, validOut, 0, c, want, 0, v);
                }
                int[] hits = new int[v];
                double[] tol = new double[v * c];
                for (int k = 0; k < v * c; k++) {
                    tol[k] = Math.abs(t0[k]);
                }
                for (int i = 0; i < valid; i++) {
                    hits[validIds[i]]++;
                    for (int j = 0; j < c; j++) {
                        tol[validIds[i] * c + j] += Math.abs(validOut[i * c + j]);
                    }
                }
                for (int k = 0; k < v * c; k++) {
                    tol[k] *= 2 * 0x1p-24 * Math.sqrt(hits[k / c] + 1.0);
                }
                for (int shift : new int[] {0, 1}) {
                    String what = "embedding backward " + dt + " n=" + n + " v=" + v + " c=" + c + " pattern " + pattern
                            + " shift " + shift;
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf d = DeviceArrays.upload(m, ids, 0);
                        DeviceArrays.Buf g = DeviceArrays.upload(m, dOut, dt, shift * dt.bytes());
                        long scratch = m.alloc(Embedding.backwardScratchBytes(n, c));
                        float[][] runs = new float[2][];
                        for (int run = 0; run < 2; run++) {
                            DeviceArrays.Buf t = DeviceArrays.upload(m, t0, 0);
                            Embedding.backward(d.addr(), n, g.addr(), dt, c, t.addr(), v, scratch, 0);
                            runs[run] = t.f32();
                            t.assertGuards(what);
                        }
                        DeviceArrays.assertWithin(what, seed, want, runs[0], tol);
                        DeviceArrays.assertSameInts(what + ": second launch differs (not deterministic)", seed,
                                DeviceArrays.ints(runs[0]), DeviceArrays.ints(runs[1]));
                        for (int k = 0; k < v * c; k++) {
                            if (hits[k / c] == 0 && Float.floatToRawIntBits(runs[0][k]) != Float.floatToRawIntBits(t0[k])) {
                                throw new AssertionError(what + ": row " + k / c + " has no id but changed at column "
                                        + k % c);
                            }
                        }
                    }
                }
            }
        }
    }

    private static int[] ids(Random r, int n, int v, int pattern) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = switch (pattern) {
                case 1 -> i % 3 == 0 ? v / 2 : r.nextInt(v);
                case 2 -> Math.min(v - 1, (i / 32 + i / 33) % v); // runs whose ends fall on and off chunk edges
                default -> r.nextInt(v);
            };
        }
        if (n > 10) {
            ids[4] = -1; // skipped by the device
            ids[n - 2] = v;
        }
        return ids;
    }
}
