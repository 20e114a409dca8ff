package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.Test;

/** {@link CastReference} against {@link Bf16Exact}: exact (bit for bit), both directions, views at offsets. */
class CastReferenceTest {
    private static final long SEED = 11L;

    /** Values across the whole float range plus the edge cases of rounding. */
    static float[] interesting(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = switch (i % 4) {
                case 0 -> (float) r.nextGaussian();
                case 1 -> Float.intBitsToFloat(r.nextInt()); // any bit pattern: subnormals, huge, NaN payloads
                case 2 -> Float.intBitsToFloat((r.nextInt() & 0xffff0000) | 0x8000); // exact ties
                default -> (float) (r.nextGaussian() * Math.scalb(1.0, r.nextInt(200) - 100));
            };
        }
        float[] special = {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MAX_VALUE, -Float.MAX_VALUE,
                Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, Float.intBitsToFloat(0x7f7f8000),
                Float.intBitsToFloat(0x7f7f7fff), Float.intBitsToFloat(0x3f808000), Float.intBitsToFloat(0x3f818000),
                Float.intBitsToFloat(0x0000ffff), Float.intBitsToFloat(0x00008000)};
        System.arraycopy(special, 0, x, 0, Math.min(n, special.length));
        return x;
    }

    @Test
    void f32ToBf16RoundsToNearestEven() {
        Random r = new Random(SEED);
        int n = 100_003, off = 5;
        float[] src = new float[n + 2 * off];
        float[] vals = interesting(r, n);
        System.arraycopy(vals, 0, src, off, n);
        short[] dst = new short[n + 3];
        dst[0] = 0x1234;
        CastReference.f32ToBf16(src, off, dst, 1, n);
        for (int i = 0; i < n; i++) {
            short want = Bf16Exact.nearest(vals[i]);
            boolean nan = Float.isNaN(vals[i]);
            if (nan) {
                assertTrue((dst[1 + i] & 0x7fff) > 0x7f80, "NaN must stay NaN at " + i);
            } else {
                assertEquals(want, dst[1 + i], "seed " + SEED + " element " + i + " value " + vals[i]);
            }
        }
        assertEquals(0x1234, dst[0], "element before the view untouched");
        assertEquals(0, dst[n + 1], "element after the view untouched");
    }

    @Test
    void bf16ToF32IsExact() {
        short[] all = new short[65536 + 2];
        for (int b = 0; b < 65536; b++) {
            all[b + 2] = (short) b;
        }
        float[] out = new float[65536];
        CastReference.bf16ToF32(all, 2, out, 0, 65536);
        for (int b = 0; b < 65536; b++) {
            double want = Bf16Exact.value((short) b);
            if (Double.isNaN(want)) {
                assertTrue(Float.isNaN(out[b]), "bits " + Integer.toHexString(b));
            } else {
                assertEquals(want, out[b], 0.0, "bits " + Integer.toHexString(b));
                assertEquals(Math.copySign(1.0, want), Math.copySign(1.0, out[b]), "sign of bits " + Integer.toHexString(b));
            }
        }
    }
}
