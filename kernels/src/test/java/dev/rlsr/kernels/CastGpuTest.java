package dev.rlsr.kernels;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * cast.cu vs {@link CastReference}: bit for bit (both round to nearest even with the same NaN), all finite, special
 * and tie values, sizes 1 to 65539, views at offsets that allow the vector path (both sides reach a 16-byte
 * boundary together) and offsets that force the scalar path; outputs NaN-poisoned with guard bytes around them.
 */
@Tag("gpu")
class CastGpuTest {
    private static final int[] SIZES = {1, 7, 33, 4097, 65539};
    /** {src shift, dst shift} in bytes: both aligned, aligned after a 7-element head, never aligned together. */
    private static final int[][] SHIFTS_F32_TO_BF16 = {{0, 0}, {4, 2}, {4, 0}, {8, 12}};
    private static final int[][] SHIFTS_BF16_TO_F32 = {{0, 0}, {2, 4}, {2, 0}, {14, 8}};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void f32ToBf16() {
        for (int n : SIZES) {
            long seed = 100 + n;
            float[] x = CastReferenceTest.interesting(new Random(seed), n);
            short[] want = new short[n];
            CastReference.f32ToBf16(x, 0, want, 0, n);
            for (int[] sh : SHIFTS_F32_TO_BF16) {
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    DeviceArrays.Buf src = DeviceArrays.upload(m, x, sh[0]);
                    DeviceArrays.Buf dst = DeviceArrays.poisoned(m, 2L * n, sh[1]);
                    Cast.f32ToBf16(src.addr(), dst.addr(), n, 0);
                    String what = "f32->bf16 n=" + n + " shifts " + sh[0] + "/" + sh[1];
                    DeviceArrays.assertSameInts(what, seed, DeviceArrays.ints(want), DeviceArrays.ints(dst.bf16()));
                    dst.assertGuards(what);
                }
            }
        }
    }

    @Test
    void bf16ToF32() {
        for (int n : SIZES) {
            long seed = 200 + n;
            Random r = new Random(seed);
            short[] x = new short[n];
            for (int i = 0; i < n; i++) {
                x[i] = (short) (n >= 65536 ? i : r.nextInt(65536)); // the largest size covers every bit pattern
            }
            float[] ref = new float[n];
            CastReference.bf16ToF32(x, 0, ref, 0, n);
            // exact widening is the bits shifted up; as ints, so NaN payloads are compared too
            int[] want = new int[n];
            for (int i = 0; i < n; i++) {
                want[i] = (x[i] & 0xffff) << 16;
            }
            for (int[] sh : SHIFTS_BF16_TO_F32) {
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    DeviceArrays.Buf src = DeviceArrays.upload(m, x, sh[0]);
                    DeviceArrays.Buf dst = DeviceArrays.poisoned(m, 4L * n, sh[1]);
                    Cast.bf16ToF32(src.addr(), dst.addr(), n, 0);
                    String what = "bf16->f32 n=" + n + " shifts " + sh[0] + "/" + sh[1];
                    DeviceArrays.assertSameInts(what, seed, want, DeviceArrays.ints(dst.f32()));
                    DeviceArrays.assertSameValues(what + " vs the reference", seed, ref, dst.f32());
                    dst.assertGuards(what);
                }
            }
        }
    }
}
