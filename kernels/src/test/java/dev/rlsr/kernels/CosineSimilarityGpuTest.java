package dev.rlsr.kernels;

import static dev.rlsr.kernels.GpuSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * cosine_similarity.cu vs {@link CosineSimilarityReference}. The output is fp32 for both input types and bf16
 * inputs widen exactly to fp32, so both are held to the fp32 tolerance: |out - ref| <= 1e-5 + 1e-5 |ref| (fp32
 * accumulation over D <= 4096 of unit-variance data stays far below it).
 */
@Tag("gpu")
class CosineSimilarityGpuTest {
    private static final double ATOL = 1e-5, RTOL = 1e-5;
    // {N, D}; the launcher's warps per row for these: f32 1 (D < 2048), 2 (2051), 4 (>= 4096); bf16 1, 2, 4 (8200)
    private static final int[][] PAIR_SHAPES = {{1, 1}, {37, 3}, {9, 8}, {1000, 768}, {513, 1023}, {5, 2051},
            {2048, 4096}, {3, 4097}, {3, 8200}};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void pairsF32() {
        for (int[] s : PAIR_SHAPES) {
            long seed = 1000L * s[0] + s[1];
            Random r = new Random(seed);
            int n = s[0], d = s[1];
            float[] a = GpuSupport.randn(r, n * d, 1f), b = GpuSupport.randn(r, n * d, 1f);
            if (n > 2) {
                System.arraycopy(a, 0, b, 0, d); // row 0 identical: cos 1
                java.util.Arrays.fill(b, d, 2 * d, 0f); // row 1 against zero: cos 0 through eps
            }
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long out = m.poisonedF32(n);
                CosineSimilarity.pairs(m.upload(a), m.upload(b), DType.F32, out, n, d, 0);
                assertClose("cosine pairs f32 n=" + n + " d=" + d, seed, CosineSimilarityReference.pairs(a, b, n, d),
                        GpuSupport.getF32(out, n), ATOL, RTOL);
            }
        }
    }

    @Test
    void pairsBf16() {
        for (int[] s : PAIR_SHAPES) {
            long seed = 7000L * s[0] + s[1];
            Random r = new Random(seed);
            int n = s[0], d = s[1];
            short[] a = BF16.fromFloat(GpuSupport.randn(r, n * d, 1f)), b = BF16.fromFloat(GpuSupport.randn(r, n * d, 1f));
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long out = m.poisonedF32(n);
                CosineSimilarity.pairs(m.upload(a), m.upload(b), DType.BF16, out, n, d, 0);
                assertClose("cosine pairs bf16 n=" + n + " d=" + d, seed,
                        CosineSimilarityReference.pairs(a, b, n, d, CosineSimilarity.DEFAULT_EPS), GpuSupport.getF32(out, n),
                        ATOL, RTOL);
            }
        }
    }

    @Test
    void againstReferenceBothTypes() {
        for (int[] s : new int[][] {{7, 1, 384}, {5, 16, 1024}, {3, 64, 129}, {64, 16, 4096}, {11, 3, 5}}) {
            int p = s[0], g = s[1], d = s[2];
            long seed = 31L * p + 17L * g + d;
            Random r = new Random(seed);
            float[] ref = GpuSupport.randn(r, p * d, 1f), resp = GpuSupport.randn(r, p * g * d, 1f);
            for (int k = 0; k < d; k++) {
                resp[k] = 2.5f * ref[k]; // response (0,0) is a scaled reference: cos 1
            }
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long out = m.poisonedF32(p * g);
                CosineSimilarity.againstReference(m.upload(ref), m.upload(resp), DType.F32, out, p, g, d, 0);
                float[] expect = CosineSimilarityReference.againstReference(ref, resp, p, g, d);
                float[] got = GpuSupport.getF32(out, p * g);
                assertClose("cosine vs reference f32 P=" + p + " G=" + g + " D=" + d, seed, expect, got, ATOL, RTOL);
                assertEquals(1.0, got[0], 1e-5);

                short[] refB = BF16.fromFloat(ref), respB = BF16.fromFloat(resp);
                long outB = m.poisonedF32(p * g);
                CosineSimilarity.againstReference(m.upload(refB), m.upload(respB), DType.BF16, outB, p, g, d, 0);
                assertClose("cosine vs reference bf16 P=" + p + " G=" + g + " D=" + d, seed,
                        CosineSimilarityReference.againstReference(refB, respB, p, g, d, CosineSimilarity.DEFAULT_EPS),
                        GpuSupport.getF32(outB, p * g), ATOL, RTOL);
            }
        }
    }

    /**
     * The kernels launched directly with every warps-per-row value they accept (1, 2, 4, 8; the launcher picks only
     * some of them for a given D), group > 1 and bases off 16-byte boundaries, against the double formula
     * cos = sum(ab) / max(sqrt(sum(aa)) sqrt(sum(bb)), eps).
     */
    @Test
    void everyWarpsPerRowAgainstTheDoubleFormula() {
        // {rows, group, d, byte offset of a, byte offset of b, bf16}
        int[][] cases = {{37, 1, 3, 0, 0, 0}, {11, 1, 4096, 0, 0, 0}, {11, 1, 4096, 0, 0, 1}, {7, 1, 4099, 4, 4, 0},
            {7, 1, 2051, 2, 6, 1}, {48, 16, 1029, 0, 0, 0}, {48, 16, 129, 0, 0, 1}, {13, 1, 515, 4, 8, 0},
            {13, 1, 515, 2, 2, 1}, {17, 1, 7, 14, 0, 1}, {13, 1, 1, 0, 0, 1}};
        Kernel f32 = Kernel.of("cosine_similarity", "cosine_similarity_f32_kernel");
        Kernel bf16 = Kernel.of("cosine_similarity", "cosine_similarity_bf16_kernel");
        for (int[] c : cases) {
            int rows = c[0], group = c[1], d = c[2];
            boolean isBf16 = c[5] == 1;
            long seed = 17L * rows + 31L * d + c[3] + c[4];
            Random r = new Random(seed);
            float[] a = GpuSupport.randn(r, rows / group * d, 1f), b = GpuSupport.randn(r, rows * d, 1f);
            if (isBf16) {
                a = BF16.round(a);
                b = BF16.round(b);
            }
            float[] expect = new float[rows];
            for (int i = 0; i < rows; i++) {
                double ab = 0, aa = 0, bb = 0;
                for (int k = 0; k < d; k++) {
                    double x = a[(i / group) * d + k], y = b[i * d + k];
                    ab += x * y;
                    aa += x * x;
                    bb += y * y;
                }
                expect[i] = (float) (ab / Math.max(Math.sqrt(aa) * Math.sqrt(bb), CosineSimilarity.DEFAULT_EPS));
            }
            int es = isBf16 ? 2 : 4;
            for (int wpr : new int[] {1, 2, 4, 8}) {
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    long pa = m.alloc((long) es * a.length + 16) + c[3], pb = m.alloc((long) es * b.length + 16) + c[4];
                    if (isBf16) {
                        GpuSupport.put(pa, BF16.fromFloat(a));
                        GpuSupport.put(pb, BF16.fromFloat(b));
                    } else {
                        GpuSupport.put(pa, a);
                        GpuSupport.put(pb, b);
                    }
                    long out = m.poisonedF32(rows);
                    int rowsPerBlock = 8 / wpr;
                    dev.rlsr.bindings.KernelArgs args = dev.rlsr.bindings.KernelArgs.local().ptr(pa).ptr(pb).ptr(out)
                            .i32(rows).i32(group).i32(d).f32(CosineSimilarity.DEFAULT_EPS).i32(wpr);
                    (isBf16 ? bf16 : f32).launch((rows + rowsPerBlock - 1) / rowsPerBlock, 256, 0, args);
                    assertClose("cosine " + (isBf16 ? "bf16" : "f32") + " rows=" + rows + " group=" + group + " d=" + d
                            + " offsets " + c[3] + "," + c[4] + " wpr=" + wpr, seed, expect, GpuSupport.getF32(out, rows),
                            ATOL, RTOL);
                }
            }
        }
    }

    /** Bases off a 16-byte boundary: equal offsets take the realigning head, unequal ones the scalar path. */
    @Test
    void misalignedBases() {
        long seed = 99;
        Random r = new Random(seed);
        int n = 67, d = 515;
        float[] a = GpuSupport.randn(r, n * d, 1f), b = GpuSupport.randn(r, n * d, 1f);
        float[] expect = CosineSimilarityReference.pairs(a, b, n, d);
        int[][] offsets = {{4, 4}, {4, 8}, {12, 0}};
        for (int[] off : offsets) {
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long pa = m.alloc(4L * n * d + 16) + off[0], pb = m.alloc(4L * n * d + 16) + off[1];
                GpuSupport.put(pa, a);
                GpuSupport.put(pb, b);
                long out = m.poisonedF32(n);
                CosineSimilarity.pairs(pa, pb, DType.F32, out, n, d, 0);
                assertClose("cosine f32 offsets " + off[0] + "," + off[1], seed, expect, GpuSupport.getF32(out, n), ATOL, RTOL);
            }
        }
        short[] ab = BF16.fromFloat(a), bb = BF16.fromFloat(b);
        float[] expectB = CosineSimilarityReference.pairs(ab, bb, n, d, CosineSimilarity.DEFAULT_EPS);
        for (int[] off : new int[][] {{2, 2}, {2, 6}, {14, 0}}) {
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long pa = m.alloc(2L * n * d + 16) + off[0], pb = m.alloc(2L * n * d + 16) + off[1];
                GpuSupport.put(pa, ab);
                GpuSupport.put(pb, bb);
                long out = m.poisonedF32(n);
                CosineSimilarity.pairs(pa, pb, DType.BF16, out, n, d, 0);
                assertClose("cosine bf16 offsets " + off[0] + "," + off[1], seed, expectB, GpuSupport.getF32(out, n), ATOL, RTOL);
            }
        }
    }
}
