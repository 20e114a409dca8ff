package dev.rlsr.kernels;

import static dev.rlsr.kernels.GpuSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * group_advantages.cu vs {@link GroupAdvantagesReference}: warp kernel (G <= 32) and block kernel (G > 32), with and
 * without std scaling. fp32 tolerance |out - ref| <= 1e-5 + 1e-5 |ref| (advantages are O(1); the float mean and
 * std of <= 1000 rewards in [0,1) are good to ~1e-7).
 */
@Tag("gpu")
class GroupAdvantagesGpuTest {
    private static final double ATOL = 1e-5, RTOL = 1e-5;

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void matchesReference() {
        int[][] shapes = {{4096, 16}, {1000, 1}, {333, 64}, {77, 7}, {10, 32}, {5, 33}, {3, 1000}, {1, 2}};
        for (int[] s : shapes) {
            int p = s[0], g = s[1];
            long seed = 131L * p + g;
            Random r = new Random(seed);
            float[] rewards = new float[p * g];
            for (int i = 0; i < rewards.length; i++) {
                rewards[i] = r.nextFloat();
            }
            for (boolean scale : new boolean[] {true, false}) {
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    long out = m.poisonedF32(p * g);
                    GroupAdvantages.compute(m.upload(rewards), out, p, g, scale, 1e-4f, 0);
                    assertClose("advantages P=" + p + " G=" + g + " scale=" + scale, seed,
                            GroupAdvantagesReference.compute(rewards, p, g, scale, 1e-4f), GpuSupport.getF32(out, p * g),
                            ATOL, RTOL);
                }
            }
        }
    }

    /** All-equal groups (e.g. every response got reward 1) carry no signal: exactly 0, for both kernels. */
    @Test
    void equalRewardsGiveExactlyZero() {
        for (int g : new int[] {3, 16, 48}) {
            int p = 4;
            float[] rewards = new float[p * g];
            for (int q = 0; q < p; q++) {
                java.util.Arrays.fill(rewards, q * g, (q + 1) * g, 0.1f + 0.3f * q);
            }
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long out = m.poisonedF32(p * g);
                GroupAdvantages.compute(m.upload(rewards), out, p, g, true, 1e-6f, 0);
                float[] got = GpuSupport.getF32(out, p * g);
                for (int i = 0; i < got.length; i++) {
                    assertEquals(0f, got[i], "G=" + g + " element " + i);
                }
            }
        }
    }
}
