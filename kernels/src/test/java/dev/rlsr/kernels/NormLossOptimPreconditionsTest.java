package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The launchers of the norm, loss and optimizer kernels reject bad arguments on the host, before any CUDA call, so
 * this runs without a GPU. Addresses are made up; only their values matter here.
 */
class NormLossOptimPreconditionsTest {
    private static void rejects(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' should mention " + fragment);
    }

    private static final long A = 1L << 20, B = 2L << 20, C = 3L << 20, D = 4L << 20, E = 5L << 20, F = 6L << 20,
            G = 7L << 20, H = 8L << 20;

    @Test
    void rmsNorm() {
        rejects("dtype", () -> RmsNorm.forward(A, B, C, D, DType.I32, 4, 8, 1e-6f, 0));
        rejects("x is a null", () -> RmsNorm.forward(0, B, C, D, DType.F32, 4, 8, 1e-6f, 0));
        rejects("aligned to 2", () -> RmsNorm.forward(A, B + 1, C, D, DType.BF16, 4, 8, 1e-6f, 0));
        rejects("eps", () -> RmsNorm.forward(A, B, C, D, DType.F32, 4, 8, -1f, 0));
        rejects("out and x overlap", () -> RmsNorm.forward(A, B, A + 4, D, DType.F32, 4, 8, 1e-6f, 0));
        rejects("rows must be positive", () -> RmsNorm.forward(A, B, C, D, DType.F32, 0, 8, 1e-6f, 0));
        rejects("dx and dOut overlap", () -> RmsNorm.backward(A, B, C, D, A + 4, F, G, DType.F32, 4, 8, false, 0));
        rejects("dx and x overlap", () -> RmsNorm.backward(A, B, C, D, B, F, G, DType.F32, 4, 8, false, 0));
        rejects("dw and partials overlap", () -> RmsNorm.backward(A, B, C, D, E, F, F, DType.F32, 4, 8, false, 0));
        assertEquals(8, RmsNorm.lanes(DType.BF16, 64), "8 bf16 vectors: 8 lanes");
        assertEquals(16, RmsNorm.lanes(DType.F32, 64), "16 fp32 vectors: 16 lanes");
        assertEquals(32, RmsNorm.lanes(DType.BF16, 896));
        assertEquals(0, RmsNorm.lanes(DType.BF16, 1025), "a block per row");
        assertEquals(1, RmsNorm.backwardPartials(DType.BF16, 3, 64), "3 rows fit one block of 32 row groups");
        assertEquals(2, RmsNorm.backwardPartials(DType.BF16, 33, 64));
        assertEquals(512, RmsNorm.backwardPartials(DType.F32, 1 << 20, 64));
        assertEquals(7, RmsNorm.backwardPartials(DType.F32, 7, 2048), "block rows: one partial per row below 512");
        assertEquals(4L * 512 * 896, RmsNorm.backwardScratchBytes(DType.BF16, 8192, 896));
    }

    @Test
    void crossEntropy() {
        rejects("dLogits and logits overlap", () -> CrossEntropy.forwardBackward(A, DType.F32, B, C, D, A + 4, 4, 8,
                1f, 0));
        rejects("gradScale", () -> CrossEntropy.forwardBackward(A, DType.F32, B, C, D, E, 4, 8, Float.NaN, 0));
        rejects("targets", () -> CrossEntropy.forwardBackward(A, DType.F32, B + 2, C, D, E, 4, 8, 1f, 0));
        rejects("rowLoss and lossSum overlap", () -> CrossEntropy.forwardBackward(A, DType.F32, B, C, C + 4, E, 4, 8,
                1f, 0));
    }

    @Test
    void grpoLoss() {
        rejects("refLogp (needed when beta > 0)", () -> GrpoLossKernel.compute(A, B, 0, D, E, F, G, H, 2, 8, 0.2, 0.2,
                0.04, GrpoLevel.TOKEN, 0, 0));
        rejects("clip epsilons", () -> GrpoLossKernel.compute(A, B, C, D, E, F, G, H, 2, 8, 1.0, 0.2, 0,
                GrpoLevel.TOKEN, 0, 0));
        rejects("aggregation level", () -> GrpoLossKernel.compute(A, B, C, D, E, F, G, H, 2, 8, 0.2, 0.2, 0, null, 0,
                0));
        rejects("dLogp and logp overlap", () -> GrpoLossKernel.compute(A, B, C, D, E, A, G, H, 2, 8, 0.2, 0.2, 0,
                GrpoLevel.TOKEN, 0, 0));
        rejects("maxCompletionLength", () -> GrpoLossKernel.compute(A, B, C, D, E, F, G, H, 2, 8, 0.2, 0.2, 0,
                GrpoLevel.DR_GRPO, -1, 0));
    }

    @Test
    void globalNormAndAdamW() {
        rejects("n must be positive", () -> GlobalNorm.sumOfSquares(A, 0, B, C, 0));
        rejects("aligned to 8", () -> GlobalNorm.sumOfSquares(A, 10, B + 4, C, 0));
        rejects("maxNorm is NaN", () -> GlobalNorm.clipScale(A, 10, B, C, Float.NaN, D, 0));
        assertEquals(1, GlobalNorm.partials(1));
        assertEquals(1024, GlobalNorm.partials(494_032_768L));
        assertEquals(1024, GlobalNorm.partials(5_000_000_000L), "n beyond 2^31 elements");
        rejects("lr must be finite", () -> AdamWKernel.step(A, B, C, D, 0, 0, 10, 10, Float.NaN, 0.9f, 0.95f, 1e-8f,
                0.1f, 0.1, 0.05, 0));
        rejects("bias corrections", () -> AdamWKernel.step(A, B, C, D, 0, 0, 10, 10, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f,
                0, 0.05, 0));
        rejects("grad and m overlap", () -> AdamWKernel.step(A, B, B + 8, D, 0, 0, 10, 10, 1e-3f, 0.9f, 0.95f, 1e-8f,
                0.1f, 0.1, 0.05, 0));
        rejects("computeCopy", () -> AdamWKernel.step(A, B, C, D, E + 1, 0, 10, 10, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f,
                0.1, 0.05, 0));
    }

    @Test
    void encoderOps() {
        rejects("out and b overlap", () -> LayerNorm.forward(A, B, C, C, DType.F32, 4, 8, 1e-5f, 0));
        rejects("out and x overlap", () -> Gelu.forward(A, A + 4, DType.F32, 100, 0));
        rejects("pooled and x overlap", () -> Pooling.meanPool(A, 0, A, DType.F32, 2, 3, 4, 0));
        rejects("mask", () -> Pooling.meanPool(A, B + 1, C, DType.F32, 2, 3, 4, 0));
        rejects("eps", () -> Pooling.l2NormalizeRows(A, DType.BF16, 2, 3, Float.POSITIVE_INFINITY, 0));
    }
}
