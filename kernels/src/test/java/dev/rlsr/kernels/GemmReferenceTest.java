package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.kernels.GemmOracle.Data;
import dev.rlsr.kernels.GemmOracle.Problem;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link GemmReference} against the double loop of {@link GemmOracle}, with its fp32 bound (factor 1: Sgemm is IEEE
 * fp32) and, for a BF16 D, one bf16 rounding on top.
 */
class GemmReferenceTest {
    private static final int[][] SIZES = {{1, 1, 1}, {7, 33, 65}, {65, 7, 33}, {33, 65, 7}, {70, 90, 300}};
    private static final DType[][] TYPES = {{DType.F32, DType.F32}, {DType.BF16, DType.F32}, {DType.BF16, DType.BF16}};

    /** Runs the reference on a problem: D starts NaN (or as C when in place), dbias is returned through Data. */
    static float[] run(Problem p, Data x, float[] dbias) {
        float[] d;
        float[] c;
        if (p.inPlace()) {
            d = x.c().clone();
            c = d;
        } else {
            d = new float[p.lengthD()];
            Arrays.fill(d, Float.NaN);
            c = x.c();
        }
        float[] bias = p.epilogue() == Gemm.Epilogue.BIAS ? x.bias() : dbias;
        GemmReference.matmulStridedBatched(p.transA(), p.transB(), p.m(), p.n(), p.k(), p.alpha(), x.a(), 0, p.lda(),
                p.strideA(), x.b(), 0, p.ldb(), p.strideB(), p.abType(), p.beta(), c, 0, p.ldc(), p.strideC(), d, 0,
                p.ldd(), p.strideD(), p.cdType(), p.batch(), p.epilogue(), bias, 0, p.biasType());
        return d;
    }

    @Test
    void everyTransposePairOddSizesTypesAndBeta() {
        long seed = 11;
        for (int[] s : SIZES) {
            for (DType[] t : TYPES) {
                for (int tr = 0; tr < 4; tr++) {
                    for (float beta : new float[] {0f, 1f}) {
                        Random r = new Random(seed);
                        Problem p = Problem.of((tr & 1) != 0, (tr & 2) != 0, s[0], s[1], s[2], 3, t[0], t[1], 1.5f,
                                beta);
                        Data x = Data.random(p, r);
                        GemmOracle.assertD("reference", seed, p, x, run(p, x, null), null, 1);
                        seed++;
                    }
                }
            }
        }
    }

    @Test
    void inPlaceAndBias() {
        long seed = 500;
        for (DType[] t : TYPES) {
            for (int tr = 0; tr < 4; tr++) {
                Random r = new Random(seed);
                Problem p = Problem.of((tr & 1) != 0, (tr & 2) != 0, 17, 23, 41, 2, t[0], t[1], 0.5f, 1f).asInPlace();
                Data x = Data.random(p, r);
                GemmOracle.assertD("reference in place", seed, p, x, run(p, x, null), null, 1);
                // F32 or the type of D; a BF16 D takes only a BF16 bias (as cuBLASLt)
                for (DType biasType : t[1] == DType.BF16 ? new DType[] {DType.BF16} : new DType[] {DType.F32}) {
                    Problem pb = Problem.of((tr & 1) != 0, (tr & 2) != 0, 9, 31, 19, 1, t[0], t[1], 1f, 1f)
                            .withEpilogue(Gemm.Epilogue.BIAS, biasType);
                    Data xb = Data.random(pb, r);
                    GemmOracle.assertD("reference bias", seed, pb, xb, run(pb, xb, null), null, 1);
                }
                seed++;
            }
        }
    }

    @Test
    void stridedBatchesWithSharedB() {
        long seed = 900;
        for (DType[] t : TYPES) {
            Random r = new Random(seed);
            Problem p = Problem.of(false, true, 5, 12, 9, 1, t[0], t[1], 1f, 1f).batched(3, 4, true);
            Data x = Data.random(p, r);
            GemmOracle.assertD("reference batched", seed, p, x, run(p, x, null), null, 1);
            Problem pb = Problem.of(true, false, 6, 7, 8, 0, t[0], t[1], 2f, 0f).batched(4, 1, false)
                    .withEpilogue(Gemm.Epilogue.BIAS, t[1]);
            Data xb = Data.random(pb, r);
            GemmOracle.assertD("reference batched bias", seed, pb, xb, run(pb, xb, null), null, 1);
            seed++;
        }
    }

    @Test
    void biasGradientIsTheRowSumOfOpA() {
        long seed = 1300;
        for (DType[] t : TYPES) {
            for (boolean transA : new boolean[] {true, false}) {
                Random r = new Random(seed);
                // dW (out,in) = dY^T X: A = dY stored (T,out), B = X (T,in)
                Problem p = Problem.of(transA, false, 13, 10, 37, 2, t[0], t[1], 1f, 1f).asInPlace()
                        .withEpilogue(Gemm.Epilogue.BIAS_GRADIENT, DType.F32);
                Data x = Data.random(p, r);
                float[] dbias = new float[p.m()];
                GemmOracle.assertD("reference bgrad D", seed, p, x, run(p, x, dbias), null, 1);
                GemmOracle.assertBiasGrad("reference bgrad", seed, p, x, dbias, 1);
                seed++;
            }
        }
    }

    @Test
    void bf16OutputIsRoundedOnceAfterBetaAndBias() {
        // exact D = 1*1 + 2^-8 (C) + 2^-9 (bias) = 1 + 3*2^-9, between the bf16 neighbours 1 and 1 + 2^-7 and above
        // their midpoint: one rounding gives 1 + 2^-7. Rounding 1 + 2^-8 (a tie, to even: 1) before adding the bias
        // would give 1.
        float[] a = {1f}, b = {1f}, c = {0x1p-8f}, bias = {0x1p-9f}, d = {Float.NaN};
        GemmReference.matmulBias(false, false, 1, 1, 1, 1f, a, 0, 1, b, 0, 1, DType.BF16, 1f, c, 0, 1, d, 0, 1,
                DType.BF16, bias, 0, DType.BF16);
        assertEquals(1f + 0x1p-7f, d[0], 0f);
    }

    /** The fp32 bound is tight enough that a TF32 product (inputs cut to 10 mantissa bits) fails it. */
    @Test
    void theFp32BoundRejectsTf32() {
        Random r = new Random(21);
        Problem p = Problem.of(false, false, 16, 16, 33, 0, DType.F32, DType.F32, 1f, 0f);
        Data x = Data.random(p, r);
        Data tf32 = new Data(tf32(x.a()), tf32(x.b()), x.c(), null);
        float[] d = run(p, tf32, null);
        assertThrows(org.opentest4j.AssertionFailedError.class, () -> GemmOracle.assertD("tf32", 21, p, x, d, null, 1));
        assertThrows(org.opentest4j.AssertionFailedError.class, () -> GemmOracle.assertD("tf32", 21, p, x, d, null, 2));
    }

    private static float[] tf32(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            int u = Float.floatToRawIntBits(x[i]);
            out[i] = Float.intBitsToFloat((u + 0xfff + ((u >>> 13) & 1)) & 0xffffe000); // nearest even, 10 bits
        }
        return out;
    }

    @Test
    void writesNothingOutsideD() {
        Random r = new Random(7);
        Problem p = Problem.of(false, false, 4, 5, 6, 3, DType.F32, DType.F32, 1f, 0f);
        Data x = Data.random(p, r);
        float[] d = new float[p.lengthD() + 10];
        Arrays.fill(d, Float.NaN);
        GemmReference.matmul(false, false, 4, 5, 6, 1f, x.a(), 0, p.lda(), x.b(), 0, p.ldb(), DType.F32, 0f, null, 0,
                p.ldc(), d, 0, p.ldd(), DType.F32);
        for (int e = p.lengthD(); e < d.length; e++) {
            assertTrue(Float.isNaN(d[e]), "element " + e + " after D was written");
        }
    }

    @Test
    void rejectsWhatTheGpuRejects() {
        float[] x = new float[64];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GemmReference.matmul(false,
                false, 2, 2, 2, 1f, x, 0, 2, x, 0, 2, DType.F32, 0f, null, 0, 2, x, 0, 2, DType.BF16));
        assertTrue(e.getMessage().contains("F32 inputs need an F32 output"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GemmReference.matmul(false, false, 2, 2, 2, 1f, x, 0, 2,
                x, 0, 2, DType.F32, 1f, null, 0, 2, x, 0, 2, DType.F32));
        assertTrue(e.getMessage().contains("c is null"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GemmReference.matmulBias(false, false, 2, 3, 2, 1f, x,
                0, 2, x, 0, 3, DType.F32, 0f, null, 0, 3, x, 0, 3, DType.F32, new float[2], 0, DType.F32));
        assertTrue(e.getMessage().contains("needs 3 elements"), e.getMessage());
    }
}
