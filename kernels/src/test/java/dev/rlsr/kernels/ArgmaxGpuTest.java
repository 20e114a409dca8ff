package dev.rlsr.kernels;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * argmax.cu vs {@link ArgmaxReference}, exact: rows with ties of the maximum (first index wins), NaNs (the first NaN
 * wins), all -inf (0), +0/-0 maxima, widths 1 to 151936 (Qwen's vocabulary), rows on and off 16-byte boundaries
 * (odd widths, shifted views), output poisoned with -1.
 */
@Tag("gpu")
class ArgmaxGpuTest {
    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void matchesTheReference() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int w : new int[] {1, 2, 7, 33, 4097, 151936}) {
                int rows = w > 10000 ? 7 : 25;
                long seed = 800L + w;
                float[] x = DeviceArrays.held(ArgmaxReferenceTest.rows(new Random(seed), rows, w), dt);
                int[] want = new int[rows];
                ArgmaxReference.rows(x, 0, rows, w, want, 0);
                for (int shift : new int[] {0, 1, 3}) {
                    String what = "argmax " + dt + " width " + w + " shift " + shift;
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf dx = DeviceArrays.upload(m, x, dt, shift * dt.bytes());
                        DeviceArrays.Buf out = DeviceArrays.poisoned(m, 4L * rows, 4 * shift);
                        Argmax.rows(dx.addr(), dt, rows, w, out.addr(), 0);
                        DeviceArrays.assertSameInts(what, seed, want, out.i32());
                        out.assertGuards(what);
                    }
                }
            }
        }
    }
}
