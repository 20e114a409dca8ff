package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link GlobalNormReference} against sums in double and torch's clip formula. Tolerance of the sum of squares: rtol
 * 1e-5; fp32 lanes over blocks of 4096 hold up to 512 positive terms each (worst case 512 * 2^-24 = 3e-5 relative,
 * in practice ~1e-6).
 */
class GlobalNormReferenceTest {
    @Test
    void sumOfSquaresMatchesDouble() {
        for (int n : new int[] {1, 7, 4096, 4097, 100_003}) {
            long seed = n;
            float[] x = Near.randn(new Random(seed), n, 1.5);
            double want = 0;
            for (float v : x) {
                want += (double) v * v;
            }
            double got = GlobalNormReference.sumOfSquares(Near.embed(x, 3), 3, n);
            assertEquals(want, got, 1e-5 * want, "seed " + seed + " n=" + n);
        }
    }

    @Test
    void clipScaleIsTorchsFactor() {
        assertEquals(1f, GlobalNormReference.clipScale(1e6, 0f), "maxNorm 0 disables clipping");
        assertEquals(1f, GlobalNormReference.clipScale(1e6, -1f), "maxNorm < 0 disables clipping");
        assertEquals(1f, GlobalNormReference.clipScale(0.25, 1f), "a norm of 0.5 under 1 is not clipped");
        assertEquals(1f, GlobalNormReference.clipScale(0, 1f), "zero gradients");
        double ss = 9.0; // norm 3
        float want = (float) (1.0 / (3.0 + 1e-6));
        assertEquals(want, GlobalNormReference.clipScale(ss, 1f), Math.ulp(want));
        assertEquals((float) (2.5 / (Math.sqrt(1e4) + 1e-6)), GlobalNormReference.clipScale(1e4, 2.5f),
                Math.ulp(0.025f));
        assertEquals(0f, GlobalNormReference.clipScale(Double.POSITIVE_INFINITY, 1f), "an infinite norm clips to 0");
        assertEquals(Float.NaN, GlobalNormReference.clipScale(Double.NaN, 1f), "a NaN norm stays visible");
        assertEquals(1f, GlobalNormReference.clipScale(Double.NaN, 0f), "no clipping asked: 1");
    }
}
