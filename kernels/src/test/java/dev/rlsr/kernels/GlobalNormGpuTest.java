package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * global_norm.cu against the sum of squares in double and {@link GlobalNormReference#clipScale}: sizes around the
 * vector width and the partial count (1, 3, 4097, 1e6+3, 5e6+11 elements), buffers starting 4 bytes past a 16-byte
 * boundary (the scalar head), outputs and partials poisoned with NaN, repeated runs giving the same bits.
 *
 * <p>Tolerances: the sum of squares rtol 2e-7 (the device accumulates in double; one rounding to fp32); the clip
 * scale one fp32 ulp (the norm's root and the division, from a sum that differs from the double one by that
 * rounding).
 */
@Tag("gpu")
class GlobalNormGpuTest {
    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void sumOfSquaresAndClipScale() {
        for (int n : new int[] {1, 3, 4097, 1_000_003, 5_000_011}) {
            for (int off : new int[] {0, 1}) {
                long seed = 3L * n + off;
                float[] x = GpuSupport.randn(new Random(seed), n, 0.01f);
                double want = 0;
                for (float v : x) {
                    want += (double) v * v;
                }
                String tag = "n=" + n + " offset " + off;
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    long dx = Dev.act(m, x, DType.F32, off);
                    long parts = m.alloc(GlobalNorm.scratchBytes(n));
                    dev.rlsr.bindings.CudaDriver.memsetD8(parts, (byte) 0xff, GlobalNorm.scratchBytes(n));
                    long sum = m.poisonedF32(1), scale = m.poisonedF32(1);
                    GlobalNorm.sumOfSquares(dx, n, parts, sum, 0);
                    float got = GpuSupport.getF32(sum, 1)[0];
                    assertEquals(want, got, 2e-7 * want, "seed " + seed + " sum of squares " + tag);
                    double norm = Math.sqrt(want);
                    for (float maxNorm : new float[] {0f, -1f, (float) (norm * 2), (float) (norm * 0.3)}) {
                        GlobalNorm.clipScale(dx, n, parts, sum, maxNorm, scale, 0);
                        float s = GpuSupport.getF32(scale, 1)[0];
                        float ref = GlobalNormReference.clipScale(want, maxNorm);
                        assertEquals(ref, s, Math.ulp(ref), "clip scale " + tag + " maxNorm " + maxNorm);
                        if (!(maxNorm > 0) || maxNorm > norm) {
                            assertEquals(1f, s, "no clipping " + tag + " maxNorm " + maxNorm);
                        }
                        assertArrayEquals(new float[] {got}, GpuSupport.getF32(sum, 1), "the same bits " + tag);
                    }
                }
            }
        }
    }

    /** An infinite gradient clips everything to 0 (as torch and the CPU); a NaN one makes the scale NaN, visibly. */
    @Test
    void nonFiniteGradients() {
        for (float bad : new float[] {Float.POSITIVE_INFINITY, Float.NaN}) {
            float[] x = GpuSupport.randn(new Random(3), 5000, 1f);
            x[1234] = bad;
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long parts = m.alloc(GlobalNorm.scratchBytes(x.length));
                long sum = m.poisonedF32(1), scale = m.poisonedF32(1);
                GlobalNorm.clipScale(m.upload(x), x.length, parts, sum, 1f, scale, 0);
                float s = GpuSupport.getF32(scale, 1)[0];
                float ref = GlobalNormReference.clipScale(Float.isNaN(bad) ? Double.NaN : Double.POSITIVE_INFINITY, 1f);
                assertEquals(ref, s, "clip scale with a gradient of " + bad);
                assertEquals(Float.isNaN(bad) ? Float.NaN : 0f, s, "clip scale with a gradient of " + bad);
                GlobalNorm.clipScale(m.upload(x), x.length, parts, sum, 0f, scale, 0);
                assertEquals(1f, GpuSupport.getF32(scale, 1)[0], "maxNorm 0: no clipping, whatever the norm");
            }
        }
    }
}
