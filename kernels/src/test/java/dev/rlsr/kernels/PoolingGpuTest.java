package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * pooling.cu vs {@link PoolingReference}. Mean pooling is compared <b>bit for bit</b>: both sum the tokens of a
 * column in order in fp32 and multiply once by the same reciprocal, so every rounding is the same (masked and
 * unmasked, a row without tokens, C = 385: two column tiles, the second partial). L2 normalisation: warp and block
 * rows, odd widths, views one element off, in place; rtol 1e-6 of |ref| (fp32 sums of squares in another order), plus
 * one bf16 ulp for BF16.
 */
@Tag("gpu")
class PoolingGpuTest {
    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void meanPoolIsBitExact() {
        int b = 4, tokens = 17, c = 385;
        for (DType t : new DType[] {DType.F32, DType.BF16}) {
            long seed = t == DType.F32 ? 1 : 2;
            Random r = new Random(seed);
            float[] x = Dev.held(GpuSupport.randn(r, b * tokens * c, 1f), t);
            int[] mask = new int[b * tokens];
            for (int i = 0; i < mask.length; i++) {
                mask[i] = r.nextInt(3) == 0 ? 0 : 1;
            }
            for (int j = 0; j < tokens; j++) {
                mask[tokens + j] = 0; // row 1 has no tokens: zeros
            }
            for (boolean masked : new boolean[] {true, false}) {
                float[] want = new float[b * c];
                PoolingReference.meanPool(x, 0, masked ? mask : null, 0, want, 0, b, tokens, c);
                want = Dev.held(want, t);
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    long dx = Dev.act(m, x, t, 0), out = Dev.poisoned(m, (long) b * c, t, 0);
                    Pooling.meanPool(dx, masked ? m.upload(mask) : 0, out, t, b, tokens, c, 0);
                    float[] got = Dev.read(out, b * c, t);
                    assertArrayEquals(want, got, "seed " + seed + " " + t + (masked ? " masked" : " unmasked"));
                    if (masked) {
                        for (int k = 0; k < c; k++) {
                            assertEquals(0f, got[c + k], "a row without tokens pools to zeros");
                        }
                    }
                }
            }
        }
    }

    @Test
    void l2NormalizeRows() {
        for (DType t : new DType[] {DType.F32, DType.BF16}) {
            for (int[] s : new int[][] {{37, 384}, {5, 7}, {3, 1025}, {2, 4099}, {9, 1}}) {
                for (int off : new int[] {0, 1}) {
                    int rows = s[0], w = s[1], n = rows * w;
                    long seed = 17L * rows + w + off + (t == DType.F32 ? 0 : 77);
                    float[] x = Dev.held(GpuSupport.randn(new Random(seed), n, 3f), t);
                    if (rows > 2) {
                        java.util.Arrays.fill(x, w, 2 * w, 0f); // a zero row stays zero (divided by eps)
                    }
                    float[] want = x.clone();
                    PoolingReference.l2NormalizeRows(want, 0, rows, w, 1e-12f);
                    want = Dev.held(want, t);
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        long dx = Dev.act(m, x, t, off);
                        Pooling.l2NormalizeRows(dx, t, rows, w, 1e-12f, 0);
                        Dev.assertAct("l2 " + t + " " + rows + "x" + w + " offset " + off, seed, want,
                                Dev.read(dx, n, t), null, 1e-6, t);
                    }
                }
            }
        }
    }
}
