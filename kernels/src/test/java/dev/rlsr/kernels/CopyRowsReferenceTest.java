package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;

import org.junit.jupiter.api.Test;

/** {@link CopyRowsReference} against element-by-element index formulas. */
class CopyRowsReferenceTest {
    @Test
    void copyRowsMatchesTheIndexFormula() {
        Random r = new Random(3);
        int batch = 3, srcStride = 5, srcRow0 = 1, dstStride = 9, dstRow0 = 4, rows = 4, width = 7, so = 2, dof = 1;
        float[] src = GpuSupport.randn(r, so + batch * srcStride * width, 1f);
        float[] dst = GpuSupport.randn(r, dof + batch * dstStride * width + 3, 1f);
        float[] want = dst.clone();
        for (int b = 0; b < batch; b++) {
            for (int row = 0; row < rows; row++) {
                for (int j = 0; j < width; j++) {
                    want[dof + ((b * dstStride) + dstRow0 + row) * width + j] =
                            src[so + ((b * srcStride) + srcRow0 + row) * width + j];
                }
            }
        }
        CopyRowsReference.copyRows(src, so, srcStride, srcRow0, dst, dof, dstStride, dstRow0, batch, rows, width);
        assertArrayEquals(want, dst);

        short[] sb = Bf16Exact.nearest(src), db = new short[dst.length], wantB = new short[dst.length];
        for (int b = 0; b < batch; b++) {
            for (int row = 0; row < rows; row++) {
                for (int j = 0; j < width; j++) {
                    wantB[dof + ((b * dstStride) + dstRow0 + row) * width + j] =
                            sb[so + ((b * srcStride) + srcRow0 + row) * width + j];
                }
            }
        }
        CopyRowsReference.copyRows(sb, so, srcStride, srcRow0, db, dof, dstStride, dstRow0, batch, rows, width);
        assertArrayEquals(wantB, db);
        assertThrows(IllegalArgumentException.class,
                () -> CopyRowsReference.copyRows(src, so, srcStride, 2, dst, dof, dstStride, dstRow0, batch, rows, width));
    }

    @Test
    void appendAtWritesOneRowPerBatchBlock() {
        Random r = new Random(5);
        int batch = 3, dstStride = 6, width = 5, so = 2, dof = 3;
        for (int row : new int[] {0, 4, dstStride - 1}) {
            float[] src = GpuSupport.randn(r, so + batch * width + 1, 1f);
            float[] dst = GpuSupport.randn(r, dof + batch * dstStride * width + 2, 1f);
            float[] want = dst.clone();
            for (int b = 0; b < batch; b++) {
                for (int j = 0; j < width; j++) {
                    want[dof + (b * dstStride + row) * width + j] = src[so + b * width + j];
                }
            }
            CopyRowsReference.appendAt(src, so, dst, dof, row, batch, dstStride, width);
            assertArrayEquals(want, dst, "row " + row);
        }
        // the key mask's append: a (batch, 1) I32 source of ones
        int[] mask = new int[batch * dstStride], ones = {1, 1, 1};
        CopyRowsReference.appendAt(ones, 0, mask, 0, 2, batch, dstStride, 1);
        for (int i = 0; i < mask.length; i++) {
            org.junit.jupiter.api.Assertions.assertEquals(i % dstStride == 2 ? 1 : 0, mask[i], "mask element " + i);
        }
        float[] src = new float[batch * width], dst = new float[batch * dstStride * width];
        for (int bad : new int[] {-1, dstStride}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CopyRowsReference.appendAt(src, 0, dst, 0, bad, batch, dstStride, width));
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("row " + bad), e.getMessage());
        }
    }

    @Test
    void gatherRowsMatchesTheIndexFormula() {
        Random r = new Random(4);
        int srcRows = 11, width = 33, n = 20;
        int[] idx = new int[n + 2];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = r.nextInt(srcRows);
        }
        int[] src = new int[3 + srcRows * width];
        for (int i = 0; i < src.length; i++) {
            src[i] = r.nextInt();
        }
        int[] dst = new int[n * width + 1];
        CopyRowsReference.gatherRows(src, 3, srcRows, idx, 2, n, dst, 1, width);
        int[] want = new int[dst.length];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < width; j++) {
                want[1 + i * width + j] = src[3 + idx[2 + i] * width + j];
            }
        }
        assertArrayEquals(want, dst);
        idx[5] = srcRows;
        assertThrows(IllegalArgumentException.class,
                () -> CopyRowsReference.gatherRows(src, 3, srcRows, idx, 2, n, dst, 1, width));
    }
}
