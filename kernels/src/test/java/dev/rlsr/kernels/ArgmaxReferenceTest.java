package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link ArgmaxReference} against a two-pass definition: the first NaN if the row has one, else the first index
 * whose value equals the row maximum (compared in double, so -0 == +0).
 */
class ArgmaxReferenceTest {
    static int expected(float[] x, int off, int w) {
        for (int j = 0; j < w; j++) {
            if (Float.isNaN(x[off + j])) {
                return j;
            }
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < w; j++) {
            max = Math.max(max, x[off + j]);
        }
        for (int j = 0; j < w; j++) {
            if ((double) x[off + j] == max) {
                return j;
            }
        }
        throw new AssertionError("unreachable");
    }

    /** Rows with ties, -0/+0, -inf only, NaN in the middle, bf16-rounded duplicates. */
    static float[] rows(Random r, int rows, int w) {
        float[] x = GpuSupport.randn(r, rows * w, 1f);
        for (int row = 0; row < rows; row++) {
            int o = row * w;
            switch (row % 6) {
                case 1 -> { // tie of the maximum at two places
                    if (w > 2) {
                        x[o + w / 3] = 9f;
                        x[o + w - 1] = 9f;
                    }
                }
                case 2 -> { // NaNs: the first one wins
                    x[o + w / 2] = Float.NaN;
                    x[o + w - 1] = Float.NaN;
                }
                case 3 -> java.util.Arrays.fill(x, o, o + w, Float.NEGATIVE_INFINITY);
                case 4 -> { // zeros of both signs as the maximum
                    for (int j = 0; j < w; j++) {
                        x[o + j] = -Math.abs(x[o + j]) - 1f;
                    }
                    x[o + w - 1] = -0f;
                    x[o + w / 2] = 0f;
                }
                default -> { }
            }
        }
        return x;
    }

    @Test
    void matchesTheDefinition() {
        Random r = new Random(17);
        for (int w : new int[] {1, 2, 7, 33, 4097}) {
            int rows = 13, off = 3;
            float[] body = rows(r, rows, w);
            float[] x = new float[off + body.length];
            System.arraycopy(body, 0, x, off, body.length);
            int[] out = new int[rows + 1];
            ArgmaxReference.rows(x, off, rows, w, out, 1);
            short[] xb = Bf16Exact.nearest(x);
            int[] outB = new int[rows];
            ArgmaxReference.rows(xb, off, rows, w, outB, 0);
            float[] xbf = Bf16Exact.values(xb);
            for (int row = 0; row < rows; row++) {
                assertEquals(expected(x, off + row * w, w), out[1 + row], "w=" + w + " row " + row);
                assertEquals(expected(xbf, off + row * w, w), outB[row], "bf16 w=" + w + " row " + row);
            }
        }
    }
}
