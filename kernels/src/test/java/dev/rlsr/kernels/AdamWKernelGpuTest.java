package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * adamw.cu against {@link AdamWReference} <b>bit for bit</b>: the kernel performs the same fp32 operations in the same
 * order, without fused multiply-adds, and fp32 division and square root are correctly rounded on both sides. Odd n,
 * a decayed prefix ending mid-vector, with and without the device clip scale and the bf16 compute copy (poisoned with
 * NaN), aligned buffers (16-byte vectors) and buffers one element off (the scalar path).
 */
@Tag("gpu")
class AdamWKernelGpuTest {
    private static final float LR = 3e-4f, B1 = 0.9f, B2 = 0.95f, EPS = 1e-8f, WD = 0.1f;

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void matchesTheCpuBitForBit() {
        for (int n : new int[] {1, 7, 10_007, 1_000_003}) {
            for (int off : new int[] {0, 1}) {
                for (boolean clip : new boolean[] {false, true}) {
                    check(n, off, clip, 7L * n + off + (clip ? 1 : 0));
                }
            }
        }
    }

    private static void check(int n, int off, boolean clip, long seed) {
        Random r = new Random(seed);
        float[] p = GpuSupport.randn(r, n, 1f), g = GpuSupport.randn(r, n, 1f), m = GpuSupport.randn(r, n, 0.1f);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) Math.abs(r.nextGaussian() * 0.01);
        }
        int decayEnd = n / 2 + (n > 4 ? 1 : 0);
        int step = 5;
        double bc1 = 1 - Math.pow(B1, step), bc2 = 1 - Math.pow(B2, step);
        float scale = clip ? 0.37f : 1f;
        float[] ep = p.clone(), em = m.clone(), ev = v.clone();
        short[] copy = new short[n];
        AdamWReference.step(ep, 0, g, 0, em, 0, ev, 0, copy, 0, n, decayEnd, scale, LR, B1, B2, EPS, WD, bc1, bc2);
        String tag = "seed " + seed + " n=" + n + " offset " + off + (clip ? " clip" : "");
        try (GpuSupport.Mem mem = new GpuSupport.Mem()) {
            long dp = Dev.act(mem, p, DType.F32, off), dg = Dev.act(mem, g, DType.F32, off);
            long dm = Dev.act(mem, m, DType.F32, off), dv = Dev.act(mem, v, DType.F32, off);
            long dc = Dev.poisoned(mem, n, DType.BF16, off);
            long ds = clip ? mem.upload(new float[] {scale}) : 0;
            AdamWKernel.step(dp, dg, dm, dv, dc, ds, n, decayEnd, LR, B1, B2, EPS, WD, bc1, bc2, 0);
            assertArrayEquals(ep, GpuSupport.getF32(dp, n), "param " + tag);
            assertArrayEquals(em, GpuSupport.getF32(dm, n), "m " + tag);
            assertArrayEquals(ev, GpuSupport.getF32(dv, n), "v " + tag);
            assertArrayEquals(copy, GpuSupport.getBf16(dc, n), "bf16 compute copy " + tag);
            assertArrayEquals(g, GpuSupport.getF32(dg, n), "the gradient is read only " + tag);
            // without a compute copy
            long dp2 = Dev.act(mem, p, DType.F32, off), dm2 = Dev.act(mem, m, DType.F32, off);
            long dv2 = Dev.act(mem, v, DType.F32, off);
            AdamWKernel.step(dp2, dg, dm2, dv2, 0, ds, n, decayEnd, LR, B1, B2, EPS, WD, bc1, bc2, 0);
            assertArrayEquals(ep, GpuSupport.getF32(dp2, n), "param without a copy " + tag);
            // decayEnd past n decays everything (clamped), as the CPU does
            float[] all = p.clone(), am = m.clone(), av = v.clone();
            AdamWReference.step(all, 0, g, 0, am, 0, av, 0, null, 0, n, Long.MAX_VALUE, scale, LR, B1, B2, EPS, WD, bc1,
                    bc2);
            long dp3 = Dev.act(mem, p, DType.F32, off), dm3 = Dev.act(mem, m, DType.F32, off);
            long dv3 = Dev.act(mem, v, DType.F32, off);
            AdamWKernel.step(dp3, dg, dm3, dv3, 0, ds, n, Long.MAX_VALUE, LR, B1, B2, EPS, WD, bc1, bc2, 0);
            assertArrayEquals(all, GpuSupport.getF32(dp3, n), "decayEnd past n " + tag);
        }
    }
}
