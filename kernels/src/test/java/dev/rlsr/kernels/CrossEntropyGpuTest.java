package dev.rlsr.kernels;

import static dev.rlsr.kernels.GpuSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * cross_entropy.cu vs {@link CrossEntropyReference} over real vocabulary sizes (151936 Qwen, 32000 Llama), odd V (rows
 * off 16-byte boundaries), ignored rows (target -100) and a batch where every row is ignored, in place and out of place
 * (aligned like the logits, and shifted by one element: the scalar path), outputs poisoned with NaN, the loss sum
 * accumulated onto a nonzero value and repeated bit for bit.
 *
 * <p>Tolerances, |got - ref| &lt;= atol + rtol |ref|: row loss atol 2e-5, rtol 1e-5 (lse from fp32 partial sums in
 * another order and ex2.approx, ~1e-6 relative, on lse ~ 12); loss sum atol 2e-5 N, rtol 1e-5 (the rows' errors add
 * up; the device sums fp32 rows where the CPU sums double ones); dlogits atol 1e-6 |gs| per row and rtol 5e-5 in
 * fp32 (the lse error becomes a relative error of exp(x - lse), and p - 1 at the target cancels to ~ulp(1) |gs|),
 * rtol 1e-2 in bf16 (one bf16 rounding on top).
 */
@Tag("gpu")
class CrossEntropyGpuTest {
    private static final double L_ATOL = 2e-5, L_RTOL = 1e-5;
    private static final double G_ATOL = 1e-6, G32_RTOL = 5e-5, G16_RTOL = 1e-2;
    /** {N, V}. */
    private static final int[][] SHAPES = {{16, 151936}, {40, 32000}, {37, 1}, {129, 7}, {100, 1001}, {3, 50257}};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void f32() {
        for (int[] s : SHAPES) {
            check(s[0], s[1], DType.F32, 41L * s[0] + s[1], false);
        }
    }

    @Test
    void bf16() {
        for (int[] s : SHAPES) {
            check(s[0], s[1], DType.BF16, 43L * s[0] + s[1], false);
        }
    }

    @Test
    void everyRowIgnored() {
        check(9, 1001, DType.F32, 5, true);
        check(9, 1001, DType.BF16, 6, true);
    }

    private static void check(int n, int v, DType t, long seed, boolean allIgnored) {
        String tag = t + " N=" + n + " V=" + v + (allIgnored ? " all ignored" : "");
        Random r = new Random(seed);
        float[] logits = Dev.held(GpuSupport.randn(r, n * v, 3f), t);
        int[] targets = new int[n];
        for (int i = 0; i < n; i++) {
            targets[i] = allIgnored ? -100 : r.nextInt(v);
        }
        if (n > 2) {
            targets[1] = -100;
        }
        float gs = 1f / n;
        float[] refGrad = new float[n * v], refRows = new float[n];
        double refSum = CrossEntropyReference.forwardBackward(logits, 0, targets, 0, n, v, gs, refGrad, 0, refRows, 0);
        float[] heldGrad = Dev.held(refGrad, t);
        float start = 0.75f; // lossSum accumulates onto what it holds
        float[] rowScale = new float[n];
        Arrays.fill(rowScale, gs);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long dLogits = Dev.act(m, logits, t, 0);
            long dTargets = m.upload(targets);
            for (int shift : new int[] {0, 1, -1}) { // -1: in place over a copy of the logits
                String st = tag + (shift < 0 ? " in place" : " out of place shift " + shift);
                long rows = m.poisonedF32(n);
                long sum = m.upload(new float[] {start});
                long out = shift < 0 ? Dev.act(m, logits, t, 0) : Dev.poisoned(m, (long) n * v, t, shift);
                long in = shift < 0 ? out : dLogits;
                CrossEntropy.forwardBackward(in, t, dTargets, rows, sum, out, n, v, gs, 0);
                float[] gotRows = GpuSupport.getF32(rows, n);
                assertClose("row loss " + st, seed, refRows, gotRows, L_ATOL, L_RTOL);
                float gotSum = GpuSupport.getF32(sum, 1)[0];
                assertClose("loss sum " + st, seed, new float[] {(float) (start + refSum)}, new float[] {gotSum},
                        L_ATOL * n, L_RTOL);
                float[] got = Dev.read(out, n * v, t);
                assertClose("dlogits " + st, seed, heldGrad, got, rowScale, v, G_ATOL,
                        t == DType.F32 ? G32_RTOL : G16_RTOL);
                for (int q = 0; q < n; q++) {
                    if (targets[q] < 0) {
                        assertEquals(0f, gotRows[q], "ignored row loss " + st);
                        for (int j = 0; j < v; j++) {
                            assertEquals(0f, got[q * v + j], "ignored row gradient " + st);
                        }
                    }
                }
                // the same rows summed again: the same bits
                long sum2 = m.upload(new float[] {start});
                long out2 = Dev.poisoned(m, (long) n * v, t, 0);
                CrossEntropy.forwardBackward(dLogits, t, dTargets, rows, sum2, out2, n, v, gs, 0);
                assertArrayEquals(new float[] {gotSum}, GpuSupport.getF32(sum2, 1), "loss sum repeats " + st);
            }
        }
    }

    /** A target outside the vocabulary cannot be checked on the host; its loss, and so the sum, become NaN. */
    @Test
    void targetOutsideVocabularyGivesNaN() {
        int n = 2, v = 33;
        float[] logits = GpuSupport.randn(new Random(5), n * v, 1f);
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long rows = m.poisonedF32(n), sum = m.upload(new float[] {0f});
            long grad = m.poisonedF32(n * v);
            CrossEntropy.forwardBackward(m.upload(logits), DType.F32, m.upload(new int[] {v, 3}), rows, sum, grad, n, v,
                    1f, 0);
            float[] got = GpuSupport.getF32(rows, n);
            assertTrue(Float.isNaN(got[0]), "target == V must give NaN, got " + got[0]);
            assertTrue(got[1] >= 0f, "a valid row is unaffected: " + got[1]);
            assertTrue(Float.isNaN(GpuSupport.getF32(sum, 1)[0]), "the sum shows it");
        }
    }
}
