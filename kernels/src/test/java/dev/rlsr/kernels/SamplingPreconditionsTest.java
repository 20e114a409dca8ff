package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@link Sampling}'s launchers and {@link SamplingReference} reject bad arguments on the host, before any CUDA call,
 * so this runs without a GPU. Addresses are made up; only their values matter here.
 */
class SamplingPreconditionsTest {
    private static void rejects(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' should mention " + fragment);
    }

    private static final long M = 1L << 20;

    /** Logits at 1 MiB (8 x 1000 fp32), every other buffer 1 MiB apart after it. */
    private static void sample(long logits, DType dt, int rows, int vocab, int group, long stopIds, int stopCount,
            int padId, long tokens, long tokenHistory, int historyLen) {
        Sampling.sample(logits, dt, rows, vocab, group, 2 * M, 3 * M, 4 * M, stopIds, stopCount, padId, 5 * M, 6 * M,
                7 * M, tokens, 9 * M, tokenHistory, 0, historyLen, 0);
    }

    @Test
    void launcher() {
        rejects("dtype", () -> sample(M, DType.I32, 8, 1000, 1, 0, 0, 0, 8 * M, 0, 0));
        rejects("rows must be positive", () -> sample(M, DType.F32, 0, 1000, 1, 0, 0, 0, 8 * M, 0, 0));
        rejects("multiple of group", () -> sample(M, DType.F32, 8, 1000, 3, 0, 0, 0, 8 * M, 0, 0));
        rejects("vocab must be in [1, 4194304]", () -> sample(M, DType.F32, 8, 0, 1, 0, 0, 0, 8 * M, 0, 0));
        rejects("vocab must be in", () -> sample(M, DType.F32, 8, Sampling.MAX_VOCAB + 1, 1, 0, 0, 0, 8 * M, 0, 0));
        rejects("padId 1000 is outside", () -> sample(M, DType.F32, 8, 1000, 1, 0, 0, 1000, 8 * M, 0, 0));
        rejects("stopIds is a null", () -> sample(M, DType.F32, 8, 1000, 1, 0, 2, 0, 8 * M, 0, 0));
        rejects("stopCount", () -> sample(M, DType.F32, 8, 1000, 1, 0, -1, 0, 8 * M, 0, 0));
        rejects("historyLen > 0", () -> sample(M, DType.F32, 8, 1000, 1, 0, 0, 0, 8 * M, 10 * M, 0));
        rejects("logits (0x100001) must be aligned to 2", () -> sample(M + 1, DType.BF16, 8, 1000, 1, 0, 0, 0, 8 * M,
                0, 0));
        rejects("tokens and logits overlap", () -> sample(M, DType.F32, 8, 1000, 1, 0, 0, 0, M + 64, 0, 0));
        rejects("tokens and finished overlap", () -> sample(M, DType.F32, 8, 1000, 1, 0, 0, 0, 6 * M + 4, 0, 0));
        rejects("rows must be positive", () -> Sampling.reset(M, 2 * M, 3 * M, 0, 1, 0));
        rejects("steps is a null", () -> Sampling.reset(M, 2 * M, 0, 4, 1, 0));
    }

    @Test
    void reference() {
        rejects("vocabulary size", () -> new SamplingReference.Workspace(0));
        rejects("logits: view of 10 elements", () -> new SamplingReference.Workspace(10).sample(new float[9], 0, 1f, 0,
                1f, 1, 0, 0));
        float[] one = {1f};
        rejects("multiple of group", () -> SamplingReference.sample(new float[4], 0, 3, 2, 2, one, new int[3],
                new float[3], new int[0], 0, new int[4], new int[3], new int[3], new int[3], new float[3], null, null,
                0));
        rejects("counters", () -> SamplingReference.reset(new int[3], new int[2], new int[2], 2, 1));
    }
}
