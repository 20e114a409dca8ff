package dev.rlsr.kernels;

import static dev.rlsr.kernels.GpuSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.bindings.CudaDriver;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * logprob_gather.cu vs {@link LogprobGatherReference} over real vocabulary sizes (151936 Qwen, 32000 Llama), odd V
 * (rows off 16-byte boundaries), N not a multiple of anything, ignored rows (target -100).
 *
 * <p>Tolerances, |out - ref| <= atol + rtol |ref|:
 * logp, lse (fp32 out, fp32 or exactly-widened bf16 in): atol 2e-5, rtol 1e-5 — fp32 partial sums of up to ~600
 * terms per thread and a float log2(e)/T prescale leave a few 1e-6 on lse ~ 12;
 * dlogits fp32: atol 1e-6 |dlogp/T| per row, rtol 5e-5 — the gradient is exp(x/T - lse), so the lse error (~1e-5
 * absolute, GPU lse vs CPU lse) becomes a relative one, and the target's p - 1 cancels down to ~ulp(1) of the row's
 * scale dlogp/T;
 * dlogits bf16: same atol, rtol 1e-2 — one bf16 rounding (2^-9) on top.
 */
@Tag("gpu")
class LogprobGatherGpuTest {
    private static final double LP_ATOL = 2e-5, LP_RTOL = 1e-5;
    private static final double G_ATOL = 1e-6, G32_RTOL = 5e-5, G16_RTOL = 1e-2;
    /** {N, V}: rows kept small for V = 151936 so the double CPU reference stays quick. */
    private static final int[][] SHAPES = {{64, 151936}, {200, 32000}, {37, 1}, {129, 7}, {100, 1001}, {3, 50257}};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    private record Case(long seed, int n, int v, float t, float[] logits, int[] targets, float[] dlogp) {
    }

    private static Case makeCase(int n, int v, float t, long seed) {
        Random r = new Random(seed);
        float[] logits = GpuSupport.randn(r, n * v, 3f);
        int[] targets = new int[n];
        for (int i = 0; i < n; i++) {
            targets[i] = r.nextInt(v);
        }
        if (n > 2) {
            targets[1] = -100; // ignore index
        }
        float[] dlogp = GpuSupport.randn(r, n, 1f);
        return new Case(seed, n, v, t, logits, targets, dlogp);
    }

    @Test
    void forwardAndBackwardF32() {
        for (int[] s : SHAPES) {
            for (float t : new float[] {1f, 0.7f}) {
                Case c = makeCase(s[0], s[1], t, 31L * s[0] + s[1] + (t == 1f ? 0 : 1));
                check(c, DType.F32);
            }
        }
    }

    @Test
    void forwardAndBackwardBf16() {
        for (int[] s : SHAPES) {
            Case c = makeCase(s[0], s[1], 0.9f, 77L * s[0] + s[1]);
            check(c, DType.BF16);
        }
    }

    private static void check(Case c, DType dtype) {
        int n = c.n(), v = c.v();
        String tag = dtype + " N=" + n + " V=" + v + " T=" + c.t();
        float[] logitsF = dtype == DType.F32 ? c.logits() : BF16.round(c.logits());
        short[] logitsB = dtype == DType.BF16 ? BF16.fromFloat(c.logits()) : null;
        float[] refLogp = new float[n], refLse = new float[n];
        LogprobGatherReference.forward(logitsF, c.targets(), n, v, c.t(), refLogp, refLse);
        float[] refGrad = new float[n * v];
        LogprobGatherReference.backward(logitsF, c.targets(), refLse, c.dlogp(), n, v, c.t(), refGrad);
        long bytes = (long) n * v * dtype.bytes();
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long logits = dtype == DType.F32 ? m.upload(c.logits()) : m.upload(logitsB);
            long targets = m.upload(c.targets());
            long dlogp = m.upload(c.dlogp());
            long logp = m.poisonedF32(n), lse = m.poisonedF32(n);
            LogprobGather.forward(logits, dtype, targets, logp, lse, n, v, c.t(), 0);
            float[] gotLogp = GpuSupport.getF32(logp, n);
            assertClose("logp " + tag, c.seed(), refLogp, gotLogp, LP_ATOL, LP_RTOL);
            assertClose("lse " + tag, c.seed(), refLse, GpuSupport.getF32(lse, n), LP_ATOL, LP_RTOL);
            if (n > 2) {
                assertEquals(0f, gotLogp[1], "ignored row must have logp exactly 0");
            }

            // out of place, aligned like the logits (vector path) and shifted by one element (scalar path)
            for (int shift : new int[] {0, 1}) {
                long out = m.alloc(bytes + 16) + (long) shift * dtype.bytes();
                CudaDriver.memsetD8(out, (byte) 0xff, bytes); // 0xffffffff and 0xffff are NaN in fp32 and bf16
                LogprobGather.backward(logits, dtype, targets, lse, dlogp, out, n, v, c.t(), 0);
                checkGrad("dlogits out of place shift " + shift + " " + tag, c, dtype, refGrad, out);
            }
            // in place over a copy of the logits
            long inPlace = m.alloc(bytes);
            CudaDriver.memcpyDtoD(inPlace, logits, bytes);
            LogprobGather.backwardInPlace(inPlace, dtype, targets, lse, dlogp, n, v, c.t(), 0);
            checkGrad("dlogits in place " + tag, c, dtype, refGrad, inPlace);
        }
    }

    private static void checkGrad(String what, Case c, DType dtype, float[] refGrad, long dev) {
        int n = c.n(), v = c.v();
        float[] got = dtype == DType.F32 ? GpuSupport.getF32(dev, n * v) : BF16.toFloat(GpuSupport.getBf16(dev, n * v));
        float[] rowScale = new float[n];
        for (int r = 0; r < n; r++) {
            rowScale[r] = c.dlogp()[r] / c.t();
        }
        assertClose(what, c.seed(), refGrad, got, rowScale, v, G_ATOL, dtype == DType.F32 ? G32_RTOL : G16_RTOL);
        if (n > 2) {
            for (int j = 0; j < v; j++) {
                assertEquals(0f, got[v + j], "ignored row must have a zero gradient (" + what + ")");
            }
        }
    }

    /** A target outside the vocabulary cannot be checked on the host; the kernel flags it with NaN. */
    @Test
    void targetOutsideVocabularyGivesNaN() {
        int n = 2, v = 33;
        float[] logits = GpuSupport.randn(new Random(5), n * v, 1f);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long logp = m.poisonedF32(n), lse = m.poisonedF32(n);
            LogprobGather.forward(m.upload(logits), DType.F32, m.upload(new int[] {v, 3}), logp, lse, n, v, 1f, 0);
            float[] got = GpuSupport.getF32(logp, n);
            assertTrue(Float.isNaN(got[0]), "target == V must give NaN, got " + got[0]);
            assertTrue(got[1] <= 0f, "a valid row is unaffected");
        }
    }

    /**
     * Masked (-inf) logits in the backward pass, both dtypes, out of place with the output shifted by 3 elements (a
     * row start off the logits' alignment: scalar path) and in place, against double formulas: the gradient of a
     * masked logit is exactly 0, and the others are (onehot - exp(x/T - lse)) dlogp / T.
     */
    @Test
    void maskedLogitsBackwardBothTypesShiftedAndInPlace() {
        int n = 4, v = 4099;
        float t = 0.8f;
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            long seed = 9 + dtype.ordinal();
            Random r = new Random(seed);
            float[] logits = GpuSupport.randn(r, n * v, 3f);
            for (int i = 0; i < logits.length; i += 3) {
                logits[i] = Float.NEGATIVE_INFINITY;
            }
            if (dtype == DType.BF16) {
                logits = BF16.round(logits);
            }
            int[] targets = {1, -100, 4097, 2};
            float[] dlogp = GpuSupport.randn(r, n, 1f);
            float[] lse = new float[n], expect = new float[n * v];
            for (int row = 0; row < n; row++) {
                double mx = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j < v; j++) {
                    mx = Math.max(mx, logits[row * v + j] / (double) t);
                }
                for (int j = 0; j < v; j++) {
                    sum += Math.exp(logits[row * v + j] / (double) t - mx);
                }
                double l = mx + Math.log(sum);
                lse[row] = (float) l;
                for (int j = 0; j < v; j++) {
                    double p = Math.exp(logits[row * v + j] / (double) t - l);
                    expect[row * v + j] = targets[row] < 0 ? 0f
                            : (float) (((j == targets[row] ? 1.0 : 0.0) - p) * dlogp[row] / t);
                }
            }
            float[] rowScale = new float[n];
            for (int row = 0; row < n; row++) {
                rowScale[row] = dlogp[row] / t;
            }
            long bytes = (long) n * v * dtype.bytes();
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long in = dtype == DType.F32 ? m.upload(logits) : m.upload(BF16.fromFloat(logits));
                long dTargets = m.upload(targets), dLse = m.upload(lse), dDlogp = m.upload(dlogp);
                long out = m.alloc(bytes + 16) + 3L * dtype.bytes();
                CudaDriver.memsetD8(out, (byte) 0xff, bytes);
                LogprobGather.backward(in, dtype, dTargets, dLse, dDlogp, out, n, v, t, 0);
                checkMasked("masked backward shifted by 3 " + dtype, seed, dtype, expect, out, n, v, rowScale, logits);
                LogprobGather.backwardInPlace(in, dtype, dTargets, dLse, dDlogp, n, v, t, 0);
                checkMasked("masked backward in place " + dtype, seed, dtype, expect, in, n, v, rowScale, logits);
            }
        }
    }

    private static void checkMasked(String what, long seed, DType dtype, float[] expect, long dev, int n, int v,
            float[] rowScale, float[] logits) {
        float[] got = dtype == DType.F32 ? GpuSupport.getF32(dev, n * v) : BF16.toFloat(GpuSupport.getBf16(dev, n * v));
        assertClose(what, seed, expect, got, rowScale, v, G_ATOL, dtype == DType.F32 ? G32_RTOL : G16_RTOL);
        for (int i = 0; i < got.length; i++) {
            if (logits[i] == Float.NEGATIVE_INFINITY) {
                assertEquals(0f, Math.abs(got[i]), what + ": a masked logit's gradient is exactly 0 (element " + i + ")");
            }
        }
    }

    /** Masked (-inf) logits contribute nothing and do not turn the result into NaN. */
    @Test
    void maskedLogits() {
        int n = 3, v = 4099;
        long seed = 8;
        float[] logits = GpuSupport.randn(new Random(seed), n * v, 2f);
        for (int j = 0; j < v; j += 3) {
            logits[j] = Float.NEGATIVE_INFINITY; // row 0: every third entry masked
        }
        for (int j = 1; j < v; j++) {
            logits[v + j] = Float.NEGATIVE_INFINITY; // row 1: only entry 0 left
        }
        int[] targets = {1, 0, 2};
        float[] refLogp = new float[n], refLse = new float[n];
        LogprobGatherReference.forward(logits, targets, n, v, 1f, refLogp, refLse);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long logp = m.poisonedF32(n), lse = m.poisonedF32(n);
            LogprobGather.forward(m.upload(logits), DType.F32, m.upload(targets), logp, lse, n, v, 1f, 0);
            assertClose("masked logp", seed, refLogp, GpuSupport.getF32(logp, n), LP_ATOL, LP_RTOL);
            assertClose("masked lse", seed, refLse, GpuSupport.getF32(lse, n), LP_ATOL, LP_RTOL);
        }
    }
}
