package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaStream;
import dev.rlsr.kernels.GemmOracle.Data;
import dev.rlsr.kernels.GemmOracle.Problem;

import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@link Gemm} on a device (the CUDA emulator in CI, a GPU in the GPU check) against the double loop of
 * {@link GemmOracle}. Tolerances (see there): fp32 D within {@code f * gamma(K+4) * (|alpha| sum|a b| + |beta c| +
 * |bias|)}, f = 1 for F32 inputs (plain fp32 FMA: a TF32 product fails this) and f = 2 for BF16 inputs (tensor
 * cores may truncate inside their sums); a BF16 D adds one bf16 rounding. Outputs start NaN, padding included, and
 * padding must stay NaN. The emulator gets small problems; a GPU also gets the Qwen2.5-0.5B shapes at 8192 tokens.
 */
@Tag("gpu")
class GemmGpuTest {
    private static final int[][] SIZES = {{1, 1, 1}, {7, 33, 65}, {65, 7, 33}, {33, 65, 7}};
    private static final DType[][] TYPES = {{DType.F32, DType.F32}, {DType.BF16, DType.F32}, {DType.BF16, DType.BF16}};

    private CudaStream stream;
    private Gemm gemm;
    /** The CUDA emulator runs the GEMM as a plain loop on the CPU: small problems only. */
    private boolean emulator;

    @BeforeEach
    void open() {
        GpuSupport.assumeGpu();
        emulator = CudaDriver.isEmulator();
        stream = CudaStream.create();
        gemm = Gemm.create(stream.handle());
    }

    @AfterEach
    void close() {
        if (gemm != null) {
            stream.synchronize();
            gemm.close();
            stream.close();
        }
    }

    private static double factor(Problem p) {
        return p.abType() == DType.BF16 ? 2 : 1;
    }

    private static long put(GpuSupport.Mem mem, float[] values, DType type, int misalign) {
        long p = mem.alloc((long) (values.length + misalign) * type.bytes()) + (long) misalign * type.bytes();
        if (type == DType.F32) {
            GpuSupport.put(p, values);
        } else {
            GpuSupport.put(p, BF16.fromFloat(values));
        }
        return p;
    }

    private static float[] get(long p, int n, DType type) {
        return type == DType.F32 ? GpuSupport.getF32(p, n) : BF16.toFloat(GpuSupport.getBf16(p, n));
    }

    private static float[] nan(int n) {
        float[] x = new float[n];
        Arrays.fill(x, Float.NaN);
        return x;
    }

    /**
     * Uploads the problem (every pointer {@code misalign} elements past an allocation's start), runs it, returns D as
     * stored; a bias gradient goes to {@code dbias}.
     */
    private float[] run(Gemm g, Problem p, Data x, float[] dbias, int misalign) {
        try (GpuSupport.Mem mem = new GpuSupport.Mem()) {
            long a = put(mem, x.a(), p.abType(), misalign);
            long b = put(mem, x.b(), p.abType(), misalign);
            long c, d;
            if (p.inPlace()) {
                d = put(mem, x.c(), p.cdType(), misalign);
                c = d;
            } else {
                c = put(mem, x.c(), p.cdType(), misalign);
                d = put(mem, nan(p.lengthD()), p.cdType(), misalign);
            }
            long bias = switch (p.epilogue()) {
                case NONE -> 0;
                case BIAS -> put(mem, x.bias(), p.biasType(), 0);
                case BIAS_GRADIENT -> put(mem, nan(p.m()), p.biasType(), 0);
            };
            g.matmulStridedBatched(p.transA(), p.transB(), p.m(), p.n(), p.k(), p.alpha(), a, p.lda(), p.strideA(), b,
                    p.ldb(), p.strideB(), p.abType(), p.beta(), c, p.ldc(), p.strideC(), d, p.ldd(), p.strideD(),
                    p.cdType(), p.batch(), p.epilogue(), bias, p.biasType());
            if (dbias != null) {
                System.arraycopy(get(bias, p.m(), p.biasType()), 0, dbias, 0, p.m());
            }
            return get(d, p.lengthD(), p.cdType());
        }
    }

    private void check(String what, long seed, Problem p) {
        Data x = Data.random(p, new Random(seed));
        GemmOracle.assertD(what, seed, p, x, run(gemm, p, x, null, 0), null, factor(p));
    }

    @Test
    void everyTransposePairOddSizesTypesAndBeta() {
        long seed = 100;
        for (int[] s : SIZES) {
            for (DType[] t : TYPES) {
                for (int tr = 0; tr < 4; tr++) {
                    for (float beta : new float[] {0f, 1f}) {
                        check("gemm", seed, Problem.of((tr & 1) != 0, (tr & 2) != 0, s[0], s[1], s[2], 3, t[0], t[1],
                                1.5f, beta));
                        seed++;
                    }
                }
            }
        }
    }

    @Test
    void inPlaceAccumulationAndNullC() {
        long seed = 300;
        for (DType[] t : TYPES) {
            for (int tr = 0; tr < 4; tr++) {
                check("gemm in place", seed++, Problem.of((tr & 1) != 0, (tr & 2) != 0, 17, 23, 41, 2, t[0], t[1],
                        0.5f, 1f).asInPlace());
            }
            // beta = 0 with c = 0: D is written without C
            Problem p = Problem.of(false, true, 9, 14, 20, 1, t[0], t[1], 1f, 0f);
            Data x = Data.random(p, new Random(seed));
            float[] got;
            try (GpuSupport.Mem mem = new GpuSupport.Mem()) {
                long d = put(mem, nan(p.lengthD()), p.cdType(), 0);
                gemm.matmul(false, true, p.m(), p.n(), p.k(), 1f, put(mem, x.a(), t[0], 0), p.lda(),
                        put(mem, x.b(), t[0], 0), p.ldb(), t[0], 0f, 0, p.ldc(), d, p.ldd(), t[1]);
                got = get(d, p.lengthD(), t[1]);
            }
            GemmOracle.assertD("gemm c=0", seed++, p, x, got, null, factor(p));
        }
    }

    /**
     * BF16 accumulation in place at the shape where cuBLASLt 13.1's algorithm 66 on an H200 misreads C when it is D
     * (a 13 x 48 x 40 input gradient, seen by LtRoundingProbe): Gemm reads C from a copy, so the sum is rounded once.
     */
    @Test
    void bf16InPlaceAccumulationWhereCublasLtMisreadsAnAliasedC() {
        long seed = 400;
        for (int pad : new int[] {0, 3}) {
            check("gemm bf16 in place", seed++, Problem.of(false, false, 13, 48, 40, pad, DType.BF16, DType.BF16, 1f, 1f)
                    .asInPlace());
            check("gemm bf16 in place, bias", seed++, Problem.of(false, true, 130, 3, 160, pad, DType.BF16, DType.BF16,
                    1f, 1f).asInPlace().withEpilogue(Gemm.Epilogue.BIAS, DType.BF16));
        }
    }

    @Test
    void biasEpilogue() {
        long seed = 500;
        for (DType[] t : TYPES) {
            // F32 or the type of D, which for a BF16 D is BF16 (cuBLASLt refuses an F32 bias there)
            for (DType biasType : t[1] == DType.BF16 ? new DType[] {DType.BF16} : new DType[] {DType.F32}) {
                for (int tr = 0; tr < 4; tr++) {
                    for (float beta : new float[] {0f, 1f}) {
                        check("gemm bias", seed++, Problem.of((tr & 1) != 0, (tr & 2) != 0, 9, 31, 19, 1, t[0], t[1],
                                1f, beta).withEpilogue(Gemm.Epilogue.BIAS, biasType));
                    }
                }
            }
        }
    }

    @Test
    void stridedBatches() {
        long seed = 700;
        for (DType[] t : TYPES) {
            // gaps between batches, and one B shared by all batches (stride 0)
            check("gemm batched", seed++, Problem.of(false, true, 5, 12, 9, 1, t[0], t[1], 1f, 1f).batched(3, 4, true));
            check("gemm batched", seed++, Problem.of(true, false, 6, 7, 8, 0, t[0], t[1], 2f, 0f).batched(4, 1, false));
            check("gemm batched in place", seed++, Problem.of(true, true, 7, 5, 33, 2, t[0], t[1], 1f, 1f)
                    .asInPlace().batched(2, 3, false));
            check("gemm batched bias", seed++, Problem.of(false, false, 6, 10, 12, 0, t[0], t[1], 1f, 1f)
                    .batched(3, 0, false).withEpilogue(Gemm.Epilogue.BIAS, t[1]));
        }
    }

    /** The linear layer's weight gradient dW (out,in) += dY^T X with its bias gradient db (out) = column sums of dY. */
    @Test
    void biasGradientNextToTheWeightGradient() {
        long seed = 900;
        for (DType ab : new DType[] {DType.F32, DType.BF16}) {
            for (int[] s : new int[][] {{13, 10, 37}, {64, 48, 256}}) {
                Problem p = Problem.of(true, false, s[0], s[1], s[2], 1, ab, DType.F32, 1f, 1f).asInPlace()
                        .withEpilogue(Gemm.Epilogue.BIAS_GRADIENT, DType.F32);
                Data x = Data.random(p, new Random(seed));
                float[] dbias = new float[p.m()];
                float[] d = run(gemm, p, x, dbias, 0);
                GemmOracle.assertD("gemm bgrad D", seed, p, x, d, null, factor(p));
                GemmOracle.assertBiasGrad("gemm bgrad", seed, p, x, dbias, factor(p));
                seed++;
            }
        }
    }

    /** Exact fp32 products: 1 + 2^-20 keeps its last bit (TF32 would round it to 1). */
    @Test
    void fp32InputsAreMultipliedInFp32NotTf32() {
        int m = 16, n = 16, k = 2;
        float[] a = new float[m * k], b = new float[k * n];
        for (int i = 0; i < m; i++) {
            a[i * k] = 1f + 0x1p-20f * (1 + i % 4);
            a[i * k + 1] = 0x1p-21f;
        }
        Arrays.fill(b, 1f);
        float[] got;
        try (GpuSupport.Mem mem = new GpuSupport.Mem()) {
            long d = mem.poisonedF32(m * n);
            gemm.matmul(false, false, m, n, k, 1f, mem.upload(a), k, mem.upload(b), n, DType.F32, 0f, 0, n, d, n,
                    DType.F32);
            got = GpuSupport.getF32(d, m * n);
        }
        for (int i = 0; i < m; i++) {
            float exact = 1f + 0x1p-20f * (1 + i % 4) + 0x1p-21f; // every partial sum is exact in fp32
            for (int j = 0; j < n; j++) {
                assertEquals(exact, got[i * n + j], 0f, "D[" + i + "," + j + "]");
            }
        }
    }

    @Test
    void cachedProblemsQueryTheHeuristicOnce() {
        Problem p = Problem.of(false, true, 8, 12, 16, 0, DType.BF16, DType.BF16, 1f, 0f)
                .withEpilogue(Gemm.Epilogue.BIAS, DType.BF16);
        Problem q = Problem.of(true, false, 8, 12, 16, 0, DType.BF16, DType.F32, 1f, 1f);
        assertEquals(0, gemm.heuristicQueries());
        long seed = 1100;
        for (int round = 0; round < 3; round++) {
            // new data (so new device pointers and a new bias) every round, same problem
            Data x = Data.random(p, new Random(seed));
            GemmOracle.assertD("cached round " + round, seed, p, x, run(gemm, p, x, null, 0), null, factor(p));
            assertEquals(1, gemm.heuristicQueries(), "a cached problem must not query the heuristic");
            seed++;
        }
        Data y = Data.random(q, new Random(seed));
        GemmOracle.assertD("second problem", seed, q, y, run(gemm, q, y, null, 0), null, factor(q));
        assertEquals(2, gemm.heuristicQueries());
        Data x = Data.random(p, new Random(++seed));
        GemmOracle.assertD("first problem again", seed, p, x, run(gemm, p, x, null, 0), null, factor(p));
        assertEquals(2, gemm.heuristicQueries());
        // a less aligned view is another problem for the heuristic
        GemmOracle.assertD("misaligned", seed, p, x, run(gemm, p, x, null, 1), null, factor(p));
        assertEquals(3, gemm.heuristicQueries());
        assertEquals(3, gemm.cachedPlans());
    }

    /** A cached plan with a bias takes each call's bias pointer (both vectors alive, so their addresses differ). */
    @Test
    void aCachedPlanUsesEachCallsBias() {
        long seed = 1200;
        Problem p = Problem.of(false, true, 6, 10, 12, 0, DType.BF16, DType.F32, 1f, 0f)
                .withEpilogue(Gemm.Epilogue.BIAS, DType.F32);
        Random r = new Random(seed);
        Data x1 = Data.random(p, r);
        Data x2 = new Data(x1.a(), x1.b(), x1.c(), GemmOracle.randn(r, p.n()));
        try (GpuSupport.Mem mem = new GpuSupport.Mem()) {
            long a = put(mem, x1.a(), p.abType(), 0), b = put(mem, x1.b(), p.abType(), 0);
            long bias1 = put(mem, x1.bias(), DType.F32, 0), bias2 = put(mem, x2.bias(), DType.F32, 0);
            for (int round = 0; round < 2; round++) {
                for (Data x : new Data[] {x1, x2}) {
                    long d = put(mem, nan(p.lengthD()), p.cdType(), 0);
                    gemm.matmulBias(false, true, p.m(), p.n(), p.k(), 1f, a, p.lda(), b, p.ldb(), p.abType(), 0f, 0,
                            p.ldc(), d, p.ldd(), p.cdType(), x == x1 ? bias1 : bias2, DType.F32);
                    GemmOracle.assertD("bias " + (x == x1 ? 1 : 2) + " round " + round, seed, p, x,
                            get(d, p.lengthD(), p.cdType()), null, factor(p));
                }
            }
        }
        assertEquals(1, gemm.heuristicQueries());
    }

    /** Views into larger buffers (offset by one element) are less aligned than an allocation. */
    @Test
    void misalignedViews() {
        long seed = 1300;
        for (DType[] t : TYPES) {
            for (int tr = 0; tr < 4; tr++) {
                Problem p = Problem.of((tr & 1) != 0, (tr & 2) != 0, 11, 24, 40, 1, t[0], t[1], 1f, 1f);
                Data x = Data.random(p, new Random(seed));
                GemmOracle.assertD("misaligned", seed, p, x, run(gemm, p, x, null, 1), null, factor(p));
                seed++;
            }
        }
    }

    /**
     * The linear layers of a Qwen2.5-0.5B training step (hidden 896, 14 heads and 2 KV heads of 64, MLP 4864, vocabulary
     * 151936 in a chunk): forward {@code y = x W^T (+ b)}, backward {@code dX = dY W} and {@code dW += dY^T X}, bf16 with
     * fp32 weight gradients. N = 8192 tokens on a GPU (checked on sampled rows), 16 on the emulator (all rows).
     */
    @Test
    void qwen25HalfBillionLinearLayers() {
        int tokens = emulator ? 16 : 8192;
        int vocabChunk = emulator ? 512 : 16384;
        // {in, out, has bias}
        int[][] layers = {{896, 1152, 1}, {896, 896, 0}, {896, 9728, 0}, {4864, 896, 0}, {896, vocabChunk, 0}};
        String[] names = {"qkv", "o", "gate_up", "down", "lm_head chunk"};
        long seed = 2000;
        for (int l = 0; l < layers.length; l++) {
            int in = layers[l][0], out = layers[l][1];
            boolean bias = layers[l][2] == 1;
            Problem fwd = Problem.of(false, true, tokens, out, in, 0, DType.BF16, DType.BF16, 1f, 0f);
            if (bias) {
                fwd = fwd.withEpilogue(Gemm.Epilogue.BIAS, DType.BF16);
            }
            Problem dx = Problem.of(false, false, tokens, in, out, 0, DType.BF16, DType.BF16, 1f, 0f);
            Problem dw = Problem.of(true, false, out, in, tokens, 0, DType.BF16, DType.F32, 1f, 1f).asInPlace();
            if (bias) {
                dw = dw.withEpilogue(Gemm.Epilogue.BIAS_GRADIENT, DType.F32);
            }
            for (Problem p : new Problem[] {fwd, dx, dw}) {
                Data x = Data.random(p, new Random(seed));
                float[] dbias = p.epilogue() == Gemm.Epilogue.BIAS_GRADIENT ? new float[p.m()] : null;
                float[] d = run(gemm, p, x, dbias, 0);
                int[] rows = emulator ? null : sampleRows(p.m(), seed);
                GemmOracle.assertD("qwen2.5-0.5b " + names[l], seed, p, x, d, rows, factor(p));
                if (dbias != null) {
                    GemmOracle.assertBiasGrad("qwen2.5-0.5b " + names[l], seed, p, x, dbias, factor(p));
                }
                seed++;
            }
        }
    }

    private static int[] sampleRows(int m, long seed) {
        Random r = new Random(seed);
        return java.util.stream.IntStream.of(0, 1, m / 2, m - 1, r.nextInt(m), r.nextInt(m)).distinct().toArray();
    }

    @Test
    void closeIsIdempotentAndUseAfterCloseFails() {
        Gemm g = Gemm.create(stream.handle(), 0);
        Problem p = Problem.of(false, false, 3, 4, 5, 0, DType.F32, DType.F32, 1f, 0f);
        Data x = Data.random(p, new Random(1));
        GemmOracle.assertD("no workspace", 1, p, x, run(g, p, x, null, 0), null, 1);
        g.close();
        assertDoesNotThrow(g::close);
        assertThrows(IllegalStateException.class, () -> run(g, p, x, null, 0));
    }
}
