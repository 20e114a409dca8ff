package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * copy_rows.cu vs {@link CopyRowsReference}, exact (it moves bits): every 2- and 4-byte dtype, widths from 1 to
 * 151936 (rows longer than one 2 KiB warp segment), row starts on and off 16-byte boundaries (16-byte, 4-byte and
 * 2-byte moves), destinations poisoned with 0xff so rows the copy must not touch are checked too, guard bytes around
 * every output. gatherRows: indices outside [0, R) give NaN rows (the kernel's documented answer; the reference
 * throws), without reading out of bounds.
 */
@Tag("gpu")
class CopyRowsGpuTest {
    private static final int[] WIDTHS = {1, 7, 33, 128, 4097};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void copyRowsLikeTheKvCacheAppend() {
        int batch = 3, srcStride = 6, srcRow0 = 2, dstStride = 11, dstRow0 = 5, rows = 4;
        for (DType dt : new DType[] {DType.F32, DType.BF16, DType.I32}) {
            for (int w : WIDTHS) {
                for (int[] sh : new int[][] {{0, 0}, {1, 1}, {0, 1}}) {
                    long seed = 600L * w + sh[0] + 2 * sh[1];
                    Random r = new Random(seed);
                    int e = dt.bytes();
                    int srcLen = batch * srcStride * w, dstLen = batch * dstStride * w;
                    String what = "copyRows " + dt + " width " + w + " shifts " + Arrays.toString(sh);
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf dst = DeviceArrays.poisoned(m, (long) dstLen * e, sh[1] * e);
                        int[] want, got;
                        if (e == 4) {
                            int[] src = new int[srcLen];
                            for (int i = 0; i < srcLen; i++) {
                                src[i] = r.nextInt();
                            }
                            DeviceArrays.Buf s = DeviceArrays.upload(m, src, sh[0] * e);
                            CopyRows.copyRows(s.addr(), srcStride, srcRow0, dst.addr(), dstStride, dstRow0, batch, rows,
                                    w, dt, 0);
                            want = new int[dstLen];
                            Arrays.fill(want, -1);
                            CopyRowsReference.copyRows(src, 0, srcStride, srcRow0, want, 0, dstStride, dstRow0, batch,
                                    rows, w);
                            got = dst.i32();
                        } else {
                            short[] src = new short[srcLen];
                            for (int i = 0; i < srcLen; i++) {
                                src[i] = (short) r.nextInt();
                            }
                            DeviceArrays.Buf s = DeviceArrays.upload(m, src, sh[0] * e);
                            CopyRows.copyRows(s.addr(), srcStride, srcRow0, dst.addr(), dstStride, dstRow0, batch, rows,
                                    w, dt, 0);
                            short[] wantS = new short[dstLen];
                            Arrays.fill(wantS, (short) -1);
                            CopyRowsReference.copyRows(src, 0, srcStride, srcRow0, wantS, 0, dstStride, dstRow0, batch,
                                    rows, w);
                            want = DeviceArrays.ints(wantS);
                            got = DeviceArrays.ints(dst.bf16());
                        }
                        DeviceArrays.assertSameInts(what, seed, want, got);
                        dst.assertGuards(what);
                    }
                }
            }
        }
    }

    /**
     * appendAt at rows 0, a middle row and dstStride - 1 (from device memory) against the reference, every 2- and
     * 4-byte dtype, widths up to past one 2 KiB segment, src and dst on and off 16-byte boundaries, the rest of dst
     * poisoned (it must not change), and the key mask's append (an I32 (batch, 1) source of ones). Rows -1,
     * dstStride and Integer.MIN_VALUE write nothing at all.
     */
    @Test
    void appendAtWritesTheDeviceRow() {
        int batch = 3, dstStride = 11;
        for (DType dt : new DType[] {DType.F32, DType.BF16, DType.I32}) {
            for (int w : WIDTHS) {
                for (int[] sh : new int[][] {{0, 0}, {1, 1}, {0, 1}}) {
                    for (int row : new int[] {0, 6, dstStride - 1, -1, dstStride, Integer.MIN_VALUE}) {
                        long seed = 800L * w + sh[0] + 2 * sh[1] + 7L * row;
                        Random r = new Random(seed);
                        int e = dt.bytes();
                        int srcLen = batch * w, dstLen = batch * dstStride * w;
                        boolean inRange = row >= 0 && row < dstStride;
                        String what = "appendAt " + dt + " width " + w + " row " + row + " shifts "
                                + Arrays.toString(sh);
                        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                            DeviceArrays.Buf dst = DeviceArrays.poisoned(m, (long) dstLen * e, sh[1] * e);
                            DeviceArrays.Buf rowDev = DeviceArrays.upload(m, new int[] {row}, 0);
                            int[] want, got;
                            if (e == 4) {
                                int[] src = new int[srcLen];
                                for (int i = 0; i < srcLen; i++) {
                                    src[i] = r.nextInt();
                                }
                                DeviceArrays.Buf s = DeviceArrays.upload(m, src, sh[0] * e);
                                CopyRows.appendAt(s.addr(), dst.addr(), rowDev.addr(), batch, dstStride, w, dt, 0);
                                want = new int[dstLen];
                                Arrays.fill(want, -1);
                                if (inRange) {
                                    CopyRowsReference.appendAt(src, 0, want, 0, row, batch, dstStride, w);
                                }
                                got = dst.i32();
                            } else {
                                short[] src = new short[srcLen];
                                for (int i = 0; i < srcLen; i++) {
                                    src[i] = (short) r.nextInt();
                                }
                                DeviceArrays.Buf s = DeviceArrays.upload(m, src, sh[0] * e);
                                CopyRows.appendAt(s.addr(), dst.addr(), rowDev.addr(), batch, dstStride, w, dt, 0);
                                short[] wantS = new short[dstLen];
                                Arrays.fill(wantS, (short) -1);
                                if (inRange) {
                                    CopyRowsReference.appendAt(src, 0, wantS, 0, row, batch, dstStride, w);
                                }
                                want = DeviceArrays.ints(wantS);
                                got = DeviceArrays.ints(dst.bf16());
                            }
                            DeviceArrays.assertSameInts(what, seed, want, got);
                            dst.assertGuards(what);
                        }
                    }
                }
            }
        }
        // the key mask: ones into an I32 (batch, dstStride) mask of zeros
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            int[] mask = new int[batch * dstStride];
            DeviceArrays.Buf dm = DeviceArrays.upload(m, mask, 0);
            DeviceArrays.Buf ones = DeviceArrays.upload(m, new int[] {1, 1, 1}, 4);
            DeviceArrays.Buf rowDev = DeviceArrays.upload(m, new int[] {4}, 0);
            CopyRows.appendAt(ones.addr(), dm.addr(), rowDev.addr(), batch, dstStride, 1, DType.I32, 0);
            CopyRowsReference.appendAt(new int[] {1, 1, 1}, 0, mask, 0, 4, batch, dstStride, 1);
            DeviceArrays.assertSameInts("appendAt key mask", 0, mask, dm.i32());
        }
    }

    @Test
    void gatherRowsWithOutOfRangeIndicesGivesNaNRows() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int w : new int[] {1, 7, 33, 4097, 151936}) {
                int srcRows = w > 10000 ? 4 : 37;
                int n = w > 10000 ? 5 : 50;
                long seed = 700L * w;
                Random r = new Random(seed);
                float[] src = DeviceArrays.held(GpuSupport.randn(r, srcRows * w, 1f), dt);
                int[] idx = new int[n];
                for (int i = 0; i < n; i++) {
                    idx[i] = r.nextInt(srcRows);
                }
                int[] bad = {-1, srcRows, Integer.MIN_VALUE};
                for (int k = 0; k < bad.length && 1 + 2 * k < n; k++) {
                    idx[1 + 2 * k] = bad[k];
                }
                float[] want = new float[n * w];
                for (int i = 0; i < n; i++) {
                    if (idx[i] < 0 || idx[i] >= srcRows) {
                        Arrays.fill(want, i * w, (i + 1) * w, Float.NaN);
                    } else {
                        CopyRowsReference.gatherRows(src, 0, srcRows, idx, i, 1, want, i * w, w);
                    }
                }
                for (int shift : new int[] {0, 1}) {
                    String what = "gatherRows " + dt + " width " + w + " shift " + shift;
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf s = DeviceArrays.upload(m, src, dt, shift * dt.bytes());
                        DeviceArrays.Buf ix = DeviceArrays.upload(m, idx, 0);
                        DeviceArrays.Buf out = DeviceArrays.poisoned(m, (long) n * w * dt.bytes(), shift * dt.bytes());
                        // valid rows must really be written: fill the output with a number first
                        Elementwise.fill(out.addr(), dt, (long) n * w, 7f, 0);
                        CopyRows.gatherRows(s.addr(), dt, srcRows, ix.addr(), n, out.addr(), w, 0);
                        float[] got = out.floats(dt);
                        DeviceArrays.assertSameValues(what, seed, want, got);
                        for (int i = 0; i < n; i++) {
                            if (idx[i] < 0 || idx[i] >= srcRows) {
                                for (int j = 0; j < w; j++) {
                                    assertTrue(Float.isNaN(got[i * w + j]), what + ": row " + i + " (index " + idx[i]
                                            + ") must be NaN at " + j);
                                }
                            }
                        }
                        out.assertGuards(what);
                    }
                }
            }
        }
    }
}
