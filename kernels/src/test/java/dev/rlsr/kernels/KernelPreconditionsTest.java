package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The launchers reject bad arguments on the host, before any CUDA call, so this runs without a GPU. */
class KernelPreconditionsTest {
    private static void rejects(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' should mention " + fragment);
    }

    @Test
    void cosine() {
        rejects("null device pointer", () -> CosineSimilarity.pairs(0, 256, DType.F32, 512, 1, 4, 0));
        rejects("must be positive", () -> CosineSimilarity.pairs(256, 512, DType.F32, 1024, 0, 4, 0));
        rejects("aligned to 4", () -> CosineSimilarity.pairs(258, 512, DType.F32, 1024, 1, 4, 0));
        rejects("overlap", () -> CosineSimilarity.pairs(4096, 8192, DType.F32, 8192, 4, 4, 0));
        rejects("eps", () -> CosineSimilarity.pairs(256, 512, DType.BF16, 1024, 1, 4, Float.NaN, 0));
        rejects("dtype", () -> CosineSimilarity.pairs(256, 512, null, 1024, 1, 4, 0));
        rejects("exceeds", () -> CosineSimilarity.againstReference(256, 512, DType.F32, 1024, 1 << 20, 1 << 12, 4, 0));
    }

    @Test
    void logprob() {
        rejects("temperature", () -> LogprobGather.forward(256, DType.BF16, 512, 1024, 2048, 1, 8, 0f, 0));
        rejects("v (vocabulary)", () -> LogprobGather.forward(256, DType.BF16, 512, 1024, 2048, 1, 0, 1f, 0));
        rejects("targets", () -> LogprobGather.forward(256, DType.BF16, 514, 1024, 2048, 1, 8, 1f, 0));
        rejects("overlap", () -> LogprobGather.forward(256, DType.F32, 512, 1024, 1028, 4, 8, 1f, 0));
        rejects("overlap", () -> LogprobGather.backward(1 << 20, DType.F32, 512, 1024, 2048, (1 << 20) + 64, 4, 100, 1f, 0));
        rejects("aligned to 2", () -> LogprobGather.backward(256, DType.BF16, 512, 1024, 2048, 4097, 1, 8, 1f, 0));
    }

    @Test
    void advantages() {
        rejects("g (group size)", () -> GroupAdvantages.compute(256, 1024, 4, 0, 0));
        rejects("overlap", () -> GroupAdvantages.compute(256, 256, 4, 4, 0));
        rejects("eps", () -> GroupAdvantages.compute(256, 1024, 4, 4, true, -1f, 0));
    }
    @Test
    void attention() {
        // geometry: batch, qLen, kLen, kStride, qOffset, heads, kvHeads, headDim, scale
        rejects("dtype must be F32 or BF16", () -> Attention.forward(256, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 0,
                DType.I32, 1, 4, 4, 4, 0, 2, 1, 64, 0.125f, 0));
        rejects("multiple of key/value heads", () -> Attention.forward(256, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 0,
                DType.F32, 1, 4, 4, 4, 0, 3, 2, 64, 0.125f, 0));
        rejects("headDim 160", () -> Attention.forward(256, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 0, DType.F32, 1, 4,
                4, 4, 0, 2, 1, 160, 0.125f, 0));
        rejects("kStride", () -> Attention.forward(256, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 0, DType.F32, 1, 4, 8,
                4, 0, 2, 1, 64, 0.125f, 0));
        rejects("do not fit", () -> Attention.forward(256, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 0, DType.F32, 1, 4,
                4, 4, 2, 2, 1, 64, 0.125f, 0));
        rejects("keyMask", () -> Attention.forward(256, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 6, DType.F32, 1, 4, 4,
                4, 0, 2, 1, 64, 0.125f, 0));
        rejects("q is a null device pointer", () -> Attention.forward(0, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 0,
                DType.BF16, 1, 4, 4, 4, 0, 2, 1, 64, 0.125f, 0));
        rejects("out and q overlap", () -> Attention.forward(1 << 16, 1 << 17, 1 << 18, (1 << 16) + 64, 1 << 19, 0,
                DType.F32, 1, 4, 4, 4, 0, 2, 1, 64, 0.125f, 0));
        rejects("bidirectional", () -> Attention.bidirectional(256, 1 << 16, 1 << 17, 1 << 18, 0, DType.F32, 1, 2,
                4, 4, 2, 2, 1, 64, 0.125f, 0));
        rejects("dk and v overlap", () -> Attention.backward(1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21,
                1 << 22, 1 << 18, 1 << 23, 0, DType.F32, 1, 4, 4, 4, 0, 2, 1, 64, 0.125f, 0));
        rejects("workspace of 64 bytes", () -> Attention.decode(1L << 30, 2L << 30, 3L << 30, 4L << 30, 5L << 30, 0,
                6L << 30, 64, DType.F32, 1, 1, 4000, 4096, 3999, 14, 2, 64, 0.125f, 0));
        rejects("batch must be positive", () -> Attention.decodeWorkspaceBytes(0, 1, 14, 64));
        // decodeAt: ..., batch, kStride, heads, kvHeads, headDim, scale, cacheLen, stream
        rejects("cacheLen is a null device pointer", () -> Attention.decodeAt(1L << 30, 2L << 30, 3L << 30, 4L << 30,
                5L << 30, 0, 6L << 30, 1L << 28, DType.BF16, 1, 4096, 14, 2, 64, 0.125f, 0, 0));
        rejects("cacheLen (0x1c0000002) must be aligned to 4", () -> Attention.decodeAt(1L << 30, 2L << 30,
                3L << 30, 4L << 30, 5L << 30, 0, 6L << 30, 1L << 28, DType.BF16, 1, 4096, 14, 2, 64, 0.125f,
                (7L << 30) + 2, 0));
        rejects("lse and cacheLen overlap", () -> Attention.decodeAt(1L << 30, 2L << 30, 3L << 30, 4L << 30,
                5L << 30, 0, 6L << 30, 1L << 28, DType.BF16, 1, 4096, 14, 2, 64, 0.125f, (5L << 30) + 8, 0));
        rejects("kStride (cache rows per batch entry) must be positive", () -> Attention.decodeAt(1L << 30,
                2L << 30, 3L << 30, 4L << 30, 5L << 30, 0, 6L << 30, 1L << 28, DType.BF16, 1, 0, 14, 2, 64, 0.125f,
                7L << 30, 0));
        rejects("workspace of 64 bytes", () -> Attention.decodeAt(1L << 30, 2L << 30, 3L << 30, 4L << 30, 5L << 30,
                0, 6L << 30, 64, DType.F32, 1, 4096, 14, 2, 64, 0.125f, 7L << 30, 0));
        rejects("workspace and cacheLen overlap", () -> Attention.decodeAt(1L << 30, 2L << 30, 3L << 30, 4L << 30,
                5L << 30, 0, 6L << 30, 1L << 28, DType.F32, 1, 4096, 14, 2, 64, 0.125f, (6L << 30) + 64, 0));
    }
}
