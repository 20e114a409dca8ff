package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.bindings.CudaDriver;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * sampling.cu against {@link SamplingReference}, token for token: several decode steps of B rows with mixed per-row
 * settings (plain, temperature, top-k, top-p, both, greedy, top-k 1, k beyond the live tokens), logits that spread,
 * that tie in long runs (a top-k or top-p boundary inside a run of equal logits), -inf entries, a NaN row and an
 * all -inf row, stop ids, a shared first-step logits row per group, odd V (rows off 16-byte boundaries) and Qwen's
 * V = 151936, F32 and BF16. Tokens, finished flags, step counters, counters and the token history must be equal;
 * the log-probabilities agree within the rounding of the device's fp32 formula (the reference's is double).
 * Outputs are poisoned (0xff) with guard bytes around them.
 */
@Tag("gpu")
class SamplingGpuTest {
    // per-row settings, row b takes entry b % 10: T, k, p
    private static final float[] TEMP = {1f, 0.7f, 1.3f, 0f, 0.6f, 1f, 1f, 2f, 1f, 0.8f};
    private static final int[] TOP_K = {0, 20, 50, 0, 1, 0, 5, 0, 1_000_000, 3};
    private static final float[] TOP_P = {1f, 1f, 0.95f, 1f, 1f, 0.9f, 0.5f, 0.3f, 0.8f, 1f};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void oddVocabularyBothDtypes() {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            Coverage c = new Coverage();
            run(dt, 20, 259, 2, 4, 0, 100, c);
            run(dt, 13, 259, 1, 3, 1, 101, c);
            run(dt, 10, 7, 1, 3, 3, 102, c);
            run(dt, 10, 1, 1, 2, 0, 103, c);
            run(dt, 12, 4099, 3, 3, 1, 104, c);
            c.assertExercised(dt);
        }
    }

    @Test
    void qwenVocabulary64Rows() {
        for (DType dt : new DType[] {DType.BF16, DType.F32}) {
            Coverage c = new Coverage();
            run(dt, 64, 151936, 4, 2, 1, 200 + dt.ordinal(), c);
            c.assertExercised(dt);
        }
    }

    /**
     * The decode-loop shape: one launch captured as a CUDA graph and replayed every step, new logits copied into the
     * same buffer in between, the host reading only the 4-byte count of unfinished rows; the graph draws what the
     * reference draws at each step (the step counters and the seed live in device memory), and the token history
     * fills column by column.
     */
    @Test
    void oneCapturedLaunchReplaysEveryStep() {
        int rows = 8, v = 259, len = 6;
        DType dt = DType.BF16;
        float[] temp = {1f, 0.7f, 0f, 1.3f, 1f, 0.5f, 2f, 0f};
        int[] topK = {0, 20, 0, 5, 0, 0, 3, 0};
        float[] topP = {1f, 0.9f, 1f, 0.8f, 0.95f, 1f, 1f, 1f};
        Random r = new Random(31);
        float[][] held = new float[len][];
        for (int step = 0; step < len; step++) {
            float[] x = new float[rows * v];
            for (int row = 0; row < rows; row++) {
                fill(x, row * v, v, (row + step) % 3, r);
            }
            held[step] = DeviceArrays.held(x, dt);
        }
        // the greedy row 2 stops at step 3, on its argmax there
        int[] am = new int[1];
        ArgmaxReference.rows(held[3], 2 * v, 1, v, am, 0);
        int[] stops = {am[0]};
        int pad = 0;
        long seed = 0xfeed_beef_1234L;
        int[] counters = new int[Sampling.COUNTERS], finished = new int[rows], stepOf = new int[rows];
        int[] tokenHistory = new int[rows * len];
        float[] logprobHistory = new float[rows * len];
        SamplingReference.reset(counters, finished, stepOf, rows, seed);
        long stream = CudaDriver.streamCreate();
        long graph = 0, exec = 0;
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long dTemp = m.upload(temp), dTopK = m.upload(topK), dTopP = m.upload(topP), dStops = m.upload(stops);
            long dCounters = m.alloc(4L * Sampling.COUNTERS), dFinished = m.alloc(4L * rows), dSteps = m.alloc(4L * rows);
            DeviceArrays.Buf dx = DeviceArrays.upload(m, held[0], dt, 2);
            DeviceArrays.Buf tokens = DeviceArrays.poisoned(m, 4L * rows, 0);
            DeviceArrays.Buf logp = DeviceArrays.poisoned(m, 4L * rows, 0);
            DeviceArrays.Buf tokHist = DeviceArrays.poisoned(m, 4L * rows * len, 0);
            DeviceArrays.Buf logpHist = DeviceArrays.poisoned(m, 4L * rows * len, 0);
            Runnable launch = () -> Sampling.sample(dx.addr(), dt, rows, v, 1, dTemp, dTopK, dTopP, dStops,
                    stops.length, pad, dCounters, dFinished, dSteps, tokens.addr(), logp.addr(), tokHist.addr(),
                    logpHist.addr(), len, stream);
            Sampling.reset(dCounters, dFinished, dSteps, rows, seed, stream);
            launch.run(); // step 0 eagerly: the module is loaded before the capture
            CudaDriver.streamBeginCapture(stream);
            launch.run();
            graph = CudaDriver.streamEndCapture(stream);
            exec = CudaDriver.graphInstantiate(graph);
            for (int step = 0; step < len; step++) {
                int[] want = new int[rows];
                float[] wantLogp = new float[rows];
                SamplingReference.sample(held[step], 0, rows, v, 1, temp, topK, topP, stops, pad, counters, finished,
                        stepOf, want, wantLogp, tokenHistory, logprobHistory, len);
                if (step > 0) {
                    DeviceArrays.put(dx, held[step], dt);
                    CudaDriver.graphLaunch(exec, stream);
                }
                CudaDriver.streamSynchronize(stream);
                int[] unfinished = new int[1]; // the loop's one read: 4 bytes
                CudaDriver.memcpyDtoH(MemorySegment.ofArray(unfinished), dCounters + 4L * Sampling.UNFINISHED, 4);
                String at = "graph replay step " + step;
                assertEquals(counters[Sampling.UNFINISHED], unfinished[0], at + ": unfinished rows");
                DeviceArrays.assertSameInts(at + " tokens", 31, want, tokens.i32());
                DeviceArrays.assertWithin(at + " logprobs", 31, wantLogp, logp.f32(), logprobTolerance(wantLogp, v));
            }
            assertEquals(rows - 1, counters[Sampling.UNFINISHED], "row 2 stopped at step 3");
            DeviceArrays.assertSameInts("graph replay token history", 31, tokenHistory, tokHist.i32());
            DeviceArrays.assertWithin("graph replay log-prob history", 31, logprobHistory, logpHist.f32(),
                    logprobTolerance(logprobHistory, v));
        } finally {
            if (exec != 0) {
                CudaDriver.graphExecDestroy(exec);
            }
            if (graph != 0) {
                CudaDriver.graphDestroy(graph);
            }
            CudaDriver.streamDestroy(stream);
        }
    }

    /**
     * Which hard cases the inputs contained, judged on the host from the logits alone (approximately, in double): a
     * top-k boundary inside a run of equal logits, a top-p boundary inside one, a rank span that needs every radix
     * level (3 for fp32 keys, 2 for bf16's). A test whose inputs miss one of them fails, so the comparisons above
     * cover those paths.
     */
    private static final class Coverage {
        int kCut, pCut, deep;

        void tally(float[] x, int off, int v, float temp, int k, float p, DType dt) {
            if (!(temp > 0) || k == 1) {
                return;
            }
            float[] sorted = Arrays.copyOfRange(x, off, off + v);
            for (float f : sorted) {
                if (Float.isNaN(f)) {
                    return;
                }
            }
            Arrays.sort(sorted);
            double max = sorted[v - 1];
            if (Double.isInfinite(max)) {
                return;
            }
            int live = 0;
            double[] w = new double[v]; // descending
            for (int i = 0; i < v; i++) {
                float f = sorted[v - 1 - i];
                w[i] = Math.exp((f - max) / temp);
                if ((f - max) / temp / Math.log(2) >= -40) {
                    live++;
                }
            }
            if (live < 2) {
                return;
            }
            float lowest = sorted[v - live];
            int span = (SamplingReference.key((float) max) >>> (dt == DType.BF16 ? 16 : 0))
                    - (SamplingReference.key(lowest) >>> (dt == DType.BF16 ? 16 : 0));
            boolean filter = (k > 0 && k < live) || p < 1;
            if (filter && Integer.toUnsignedLong(span) >= (dt == DType.BF16 ? 1L << 11 : 1L << 22)) {
                deep++;
            }
            int nk = k > 0 && k < live ? k : live;
            if (nk < live && sorted[v - nk] == sorted[v - 1 - nk]) {
                kCut++;
            }
            if (p < 1) {
                double mk = 0;
                for (int i = 0; i < nk; i++) {
                    mk += w[i];
                }
                double before = 0;
                int j = 0;
                while (j < nk && (j == 0 || before < p * mk)) {
                    before += w[j++];
                }
                if (j < nk && sorted[v - j] == sorted[v - 1 - j]) {
                    pCut++;
                }
            }
        }

        void assertExercised(DType dt) {
            assertTrue(kCut > 0 && pCut > 0 && deep > 0, dt + ": the inputs must put top-k and top-p boundaries inside"
                    + " runs of ties and span every radix level; got " + kCut + ", " + pCut + ", " + deep);
        }
    }

    /** Logits of one row: kind 0 spread, 1 a few outliers over a flat bulk, 2 long runs of ties, 3 with -inf. */
    private static void fill(float[] x, int off, int v, int kind, Random r) {
        for (int i = 0; i < v; i++) {
            double g = r.nextGaussian();
            x[off + i] = switch (kind) {
                case 0 -> (float) (g * 3);
                case 1 -> (float) (g * 0.5 + (r.nextInt(50) == 0 ? 8 : 0));
                case 2 -> (float) (Math.rint(g * 2) / 2); // steps of 0.5: hundreds of equal logits per value
                default -> r.nextInt(4) == 0 ? Float.NEGATIVE_INFINITY : (float) (g * 2 - 5);
            };
        }
        if (kind == 3) {
            x[off + r.nextInt(v)] = 1f; // at least one finite logit
        }
    }

    private static int[] ints(long src, int n) {
        CudaDriver.contextSynchronize();
        int[] out = new int[n];
        CudaDriver.memcpyDtoH(MemorySegment.ofArray(out), src, 4L * n);
        return out;
    }

    /**
     * The device computes the log-prob in fp32 ((x - xmax) / T, float(M), logf within 1 ulp, the difference), the
     * reference in double: 4 ulps of the terms, |logp| + ln(M / 2^40) <= |logp| + 2 ln V.
     */
    private static double[] logprobTolerance(float[] ref, int v) {
        double[] tol = new double[ref.length];
        for (int i = 0; i < ref.length; i++) {
            tol[i] = 0x1p-21 * (Math.abs(ref[i]) + 2 * Math.log(v) + 1);
        }
        return tol;
    }

    /**
     * {@code steps} decode steps of {@code rows} rows; the first step reads one logits row per {@code group} rows,
     * the later ones one per row. {@code shift} elements put the logits off a 16-byte boundary.
     */
    private static void run(DType dt, int rows, int v, int group, int steps, int shift, long seed, Coverage cover) {
        String what = "sampling " + dt + " B " + rows + " V " + v + " group " + group;
        Random r = new Random(seed);
        float[] temp = new float[rows], topP = new float[rows];
        int[] topK = new int[rows];
        for (int b = 0; b < rows; b++) {
            temp[b] = TEMP[b % 10];
            topK[b] = TOP_K[b % 10];
            topP[b] = TOP_P[b % 10];
        }
        int pad = v - 1;
        long samplerSeed = r.nextLong();
        int[] counters = new int[Sampling.COUNTERS], finished = new int[rows], stepOf = new int[rows];
        int[] tokenHistory = new int[rows * steps];
        float[] logprobHistory = new float[rows * steps];
        Arrays.fill(tokenHistory, -1); // what the poisoned device buffers hold where nothing is written
        Arrays.fill(logprobHistory, Float.intBitsToFloat(-1));
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long dTemp = m.upload(temp), dTopK = m.upload(topK), dTopP = m.upload(topP);
            long dCounters = m.alloc(4L * Sampling.COUNTERS), dFinished = m.alloc(4L * rows), dSteps = m.alloc(4L * rows);
            CudaDriver.memsetD8(dCounters, (byte) 0x5a, 4L * Sampling.COUNTERS);
            CudaDriver.memsetD8(dFinished, (byte) 0x5a, 4L * rows);
            CudaDriver.memsetD8(dSteps, (byte) 0x5a, 4L * rows);
            DeviceArrays.Buf dTokHist = DeviceArrays.poisoned(m, 4L * rows * steps, 4);
            DeviceArrays.Buf dLogpHist = DeviceArrays.poisoned(m, 4L * rows * steps, 8);
            Sampling.reset(dCounters, dFinished, dSteps, rows, samplerSeed, 0);
            SamplingReference.reset(counters, finished, stepOf, rows, samplerSeed);
            DeviceArrays.assertSameInts(what + " counters after reset", seed, counters, ints(dCounters, 4));
            DeviceArrays.assertSameInts(what + " steps after reset", seed, stepOf, ints(dSteps, rows));
            int[] stops = null;
            long dStops = 0;
            for (int step = 0; step < steps; step++) {
                int g = step == 0 ? group : 1, lrows = rows / g;
                float[] x = new float[lrows * v];
                for (int row = 0; row < lrows; row++) {
                    fill(x, row * v, v, (row + step) % 4, r);
                }
                if (step == 1 && rows > 7) {
                    x[5 * v + v / 2] = Float.NaN; // row 5: no distribution
                    Arrays.fill(x, 7 * v, 8 * v, Float.NEGATIVE_INFINITY); // row 7: nothing finite
                }
                float[] held = DeviceArrays.held(x, dt);
                if (stops == null) {
                    // the greedy row 3's first token stops it; another id that sampled rows may hit
                    int row3 = Math.min(3, rows - 1) / g;
                    int[] am = new int[1];
                    ArgmaxReference.rows(held, row3 * v, 1, v, am, 0);
                    stops = new int[] {am[0], r.nextInt(v)};
                    dStops = m.upload(stops);
                }
                for (int b = 0; b < rows; b++) {
                    if (finished[b] == 0) {
                        cover.tally(held, (b / g) * v, v, temp[b], topK[b], topP[b], dt);
                    }
                }
                int[] want = new int[rows];
                float[] wantLogp = new float[rows];
                SamplingReference.sample(held, 0, rows, v, g, temp, topK, topP, stops, pad, counters, finished, stepOf,
                        want, wantLogp, tokenHistory, logprobHistory, steps);

                DeviceArrays.Buf dx = DeviceArrays.upload(m, x, dt, shift * dt.bytes());
                DeviceArrays.Buf tokens = DeviceArrays.poisoned(m, 4L * rows, 0);
                DeviceArrays.Buf logp = DeviceArrays.poisoned(m, 4L * rows, 4);
                Sampling.sample(dx.addr(), dt, rows, v, g, dTemp, dTopK, dTopP, dStops, stops.length, pad, dCounters,
                        dFinished, dSteps, tokens.addr(), logp.addr(), dTokHist.addr(), dLogpHist.addr(), steps, 0);
                String at = what + " step " + step;
                DeviceArrays.assertSameInts(at + " tokens", seed, want, tokens.i32());
                // fp32 on the device: (x - xmax) / T, float(M), logf (1 ulp), the difference: 4 ulps of the terms
                DeviceArrays.assertWithin(at + " logprobs", seed, wantLogp, logp.f32(), logprobTolerance(wantLogp, v));
                tokens.assertGuards(at + " tokens");
                logp.assertGuards(at + " logprobs");
                DeviceArrays.assertSameInts(at + " finished", seed, finished, ints(dFinished, rows));
                DeviceArrays.assertSameInts(at + " steps", seed, stepOf, ints(dSteps, rows));
                DeviceArrays.assertSameInts(at + " counters", seed, counters, ints(dCounters, 4));
            }
            DeviceArrays.assertSameInts(what + " token history", seed, tokenHistory, dTokHist.i32());
            DeviceArrays.assertWithin(what + " log-prob history", seed, logprobHistory, dLogpHist.f32(),
                    logprobTolerance(logprobHistory, v));
            dTokHist.assertGuards(what + " token history");
            dLogpHist.assertGuards(what + " log-prob history");
            if (rows > 7 && steps > 1 && v > 16) { // (at V = 1 the only token is the stop id: all rows end at step 0)
                assertTrue(counters[Sampling.NON_FINITE] >= 1, what + ": the NaN or the -inf row was sampled");
            }
        }
    }
}
