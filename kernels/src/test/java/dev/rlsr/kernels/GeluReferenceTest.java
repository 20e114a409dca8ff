package dev.rlsr.kernels;

import static dev.rlsr.kernels.Near.assertNear;
import static dev.rlsr.kernels.Near.embed;
import static dev.rlsr.kernels.Near.slice;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link GeluReference} (a Chebyshev fit of erfc, fractional error &lt; 1.2e-7) against the exact GELU in double
 * ({@link Erfc}). Tolerance: {@code 4e-7 (1 + x^2)} relative, for |x| &lt;= 8: inside the fit {@code exp(-z^2 + p)}
 * is computed in fp32 with {@code z = |x|/sqrt2}, and the roundings of z and z^2 move the exponent by up to
 * ~3 * 2^-24 z^2 absolute (6e-6 at |x| = 8), which is the relative error of erfc; 4e-7 covers the fit and the product.
 */
class GeluReferenceTest {
    private static final double RTOL = 4e-7;

    @Test
    void matchesExactGeluInDouble() {
        int n = 20_011;
        long seed = 21;
        Random r = new Random(seed);
        float[] x = Near.randn(r, n, 2.5);
        for (int i = 0; i < n; i++) {
            x[i] = Math.max(-8f, Math.min(8f, x[i]));
        }
        x[0] = 0f;
        x[1] = -8f;
        x[2] = 8f;
        x[3] = -1e-20f;
        double[] want = new double[n], scale = new double[n];
        for (int i = 0; i < n; i++) {
            want[i] = Erfc.gelu(x[i]);
            scale[i] = Math.abs(want[i]) * (1 + (double) x[i] * x[i]);
        }
        float[] out = embed(new float[n], 4);
        GeluReference.forward(embed(x, 1), 1, out, 4, n);
        assertNear("gelu", seed, want, scale, slice(out, 4, n), RTOL);
    }

    @Test
    void testErfcIsRight() {
        // spot values of erfc (Abramowitz & Stegun table 7.1, and erfc(3) = 2.209049699858544e-5)
        assertEquals(0.4795001221869535, Erfc.erfc(0.5), 1e-15);
        assertEquals(0.004677734981047266, Erfc.erfc(2.0), 1e-17);
        assertEquals(2.209049699858544e-5, Erfc.erfc(3.0), 1e-19);
        assertEquals(1.5204998778130465, Erfc.erfc(-0.5), 1e-15);
    }

    @Test
    void bf16IsTheRoundedFloatComputation() {
        int n = 77;
        float[] x = Near.randn(new Random(2), n, 3);
        short[] bits = BF16.fromFloat(x), out = new short[n];
        GeluReference.forward(bits, 0, out, 0, n);
        float[] f = new float[n];
        GeluReference.forward(BF16.toFloat(bits), 0, f, 0, n);
        for (int i = 0; i < n; i++) {
            assertEquals(BF16.fromFloat(f[i]), out[i]);
        }
    }
}
