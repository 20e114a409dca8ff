package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * gelu.cu against the exact GELU in double ({@link Erfc}, independent of both the kernel and {@link GeluReference}),
 * on the held inputs: odd n, output one element off the input (the scalar path), in place, outputs poisoned with NaN.
 *
 * <p>Tolerance, fp32: {@code |got - exact| <= (5e-7 + 3e-7 x^2) |exact|}: CUDA's erfcf is within a few ulp, and the
 * rounding of {@code -x/sqrt2} before it moves erfc by {@code 2 z^2 2^-24} relative (1.9e-6 at |x| = 6, the largest
 * input here). bf16: one bf16 ulp of the exact value on top (the fp32 result rounded once).
 */
@Tag("gpu")
class GeluGpuTest {
    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void matchesExactGelu() {
        for (DType t : new DType[] {DType.F32, DType.BF16}) {
            for (int n : new int[] {1, 7, 4097, 100_003}) {
                for (int outOff : new int[] {0, 1}) {
                    check(n, t, outOff, 5L * n + outOff + (t == DType.F32 ? 0 : 9));
                }
            }
        }
    }

    private static void check(int n, DType t, int outOff, long seed) {
        Random r = new Random(seed);
        float[] x = GpuSupport.randn(r, n, 2f);
        for (int i = 0; i < n; i++) {
            x[i] = Math.max(-6f, Math.min(6f, x[i]));
        }
        x = Dev.held(x, t);
        double[] want = new double[n], scale = new double[n];
        for (int i = 0; i < n; i++) {
            want[i] = Erfc.gelu(x[i]);
            scale[i] = Math.abs(want[i]) * ((5e-7 + 3e-7 * x[i] * x[i]) + (t == DType.BF16 ? Dev.BF16_ULP : 0));
        }
        String tag = t + " n=" + n + " out offset " + outOff;
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long dx = Dev.act(m, x, t, 0), out = Dev.poisoned(m, n, t, outOff);
            Gelu.forward(dx, out, t, n, 0);
            float[] got = Dev.read(out, n, t);
            Near.assertNear("gelu " + tag, seed, want, scale, got, 1.0);
            long in = Dev.act(m, x, t, outOff);
            Gelu.forward(in, in, t, n, 0);
            assertArrayEquals(got, Dev.read(in, n, t), "in place " + tag);
        }
    }
}
