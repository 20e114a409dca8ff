package dev.rlsr.kernels;

import static dev.rlsr.kernels.GpuSupport.assertClose;

import dev.rlsr.bindings.CudaDriver;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Times the kernels at the sizes of the design targets (CUDA events, median of 30 launches after 5 warm-ups) and
 * prints them next to the bandwidth floor; validates a slice of each result against the CPU reference first.
 * It asserts correctness only, never a time. Floors use 4.17 TB/s (device copy measured on an H200); on an H100
 * the floor is higher, so compare within one card.
 */
@Tag("gpu")
class KernelTimingGpuTest {
    private static final double COPY_BANDWIDTH = 4.17e12; // bytes/s, H200 device-to-device copy (shared/anchors)
    private static final StringBuilder TABLE = new StringBuilder();

    @BeforeEach
    void gpu() {
        GpuSupport.skipOnEmulator("it times kernels, and times on the CPU emulator say nothing about a GPU");
        GpuSupport.assumeGpu();
    }

    /** Fills {@code bytes} of device memory with a random tile repeated (fast for GB-sized inputs, never zeros). */
    private static void fillRandom(long dst, long bytes, boolean bf16, long seed) {
        int tileFloats = 1 << 22; // 16 MiB of fp32 or 8 MiB of bf16
        float[] tile = GpuSupport.randn(new Random(seed), tileFloats, 3f);
        long tileBytes;
        if (bf16) {
            short[] t = BF16.fromFloat(tile);
            tileBytes = 2L * t.length;
            CudaDriver.memcpyHtoD(dst, MemorySegment.ofArray(t), Math.min(tileBytes, bytes));
        } else {
            tileBytes = 4L * tile.length;
            CudaDriver.memcpyHtoD(dst, MemorySegment.ofArray(tile), Math.min(tileBytes, bytes));
        }
        for (long off = tileBytes; off < bytes; off += tileBytes) {
            CudaDriver.memcpyDtoD(dst + off, dst, Math.min(tileBytes, bytes - off));
        }
    }

    private static double medianMs(Runnable launch) {
        long start = CudaDriver.eventCreate(), end = CudaDriver.eventCreate();
        try {
            for (int i = 0; i < 5; i++) {
                launch.run();
            }
            float[] ms = new float[30];
            for (int i = 0; i < ms.length; i++) {
                CudaDriver.eventRecord(start, 0);
                launch.run();
                CudaDriver.eventRecord(end, 0);
                CudaDriver.eventSynchronize(end);
                ms[i] = CudaDriver.eventElapsedMs(start, end);
            }
            Arrays.sort(ms);
            return ms[ms.length / 2];
        } finally {
            CudaDriver.eventDestroy(start);
            CudaDriver.eventDestroy(end);
        }
    }

    private static void report(String what, double ms, double bytes) {
        double floor = bytes / COPY_BANDWIDTH * 1e3;
        String line = String.format("%-58s %8.4f ms %7.0f GB/s  floor %.4f ms (%.0f%% of floor speed)%n", what, ms,
                bytes / (ms * 1e-3) / 1e9, floor, 100 * floor / ms);
        TABLE.append(line);
        System.out.print(line);
    }

    @Test
    void cosineSimilarity() {
        for (int[] s : new int[][] {{16384, 4096}, {4096, 1024}}) {
            int n = s[0], d = s[1];
            long bytes = 4L * n * d;
            int sets = bytes * 2 < (256L << 20) ? 4 : 1; // rotate inputs that would otherwise stay in L2
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long[] a = new long[sets], b = new long[sets];
                for (int i = 0; i < sets; i++) {
                    a[i] = m.alloc(bytes);
                    b[i] = m.alloc(bytes);
                    fillRandom(a[i], bytes, false, 10 + i);
                    fillRandom(b[i], bytes, false, 20 + i);
                }
                long out = m.poisonedF32(n);
                CosineSimilarity.pairs(a[0], b[0], DType.F32, out, n, d, 0);
                int check = 64;
                float[] ha = download(a[0], check * d), hb = download(b[0], check * d);
                assertClose("timed cosine, first rows", 10, CosineSimilarityReference.pairs(ha, hb, check, d),
                        Arrays.copyOf(GpuSupport.getF32(out, n), check), 1e-5, 1e-5);
                int[] k = {0};
                double ms = medianMs(() -> {
                    int i = k[0]++ % sets;
                    CosineSimilarity.pairs(a[i], b[i], DType.F32, out, n, d, 0);
                });
                report("cosine pairs f32 " + n + " x " + d, ms, 2.0 * bytes + 4.0 * n);
            }
        }
    }

    private static float[] download(long src, int n) {
        return GpuSupport.getF32(src, n);
    }

    @Test
    void logprobGather() {
        for (int[] s : new int[][] {{16 * 512, 151936}, {16 * 1024, 32000}}) {
            int n = s[0], v = s[1];
            long bytes = 2L * n * v;
            try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                long logits = m.alloc(bytes);
                fillRandom(logits, bytes, true, 30);
                int[] targets = new int[n];
                Random r = new Random(31);
                for (int i = 0; i < n; i++) {
                    targets[i] = r.nextInt(v);
                }
                long dt = m.upload(targets);
                long logp = m.poisonedF32(n), lse = m.poisonedF32(n);
                LogprobGather.forward(logits, DType.BF16, dt, logp, lse, n, v, 1f, 0);
                int check = 8;
                short[] head = GpuSupport.getBf16(logits, check * v);
                float[] refLogp = new float[check], refLse = new float[check];
                LogprobGatherReference.forward(head, Arrays.copyOf(targets, check), check, v, 1f, refLogp, refLse);
                assertClose("timed logp, first rows", 30, refLogp, Arrays.copyOf(GpuSupport.getF32(logp, n), check), 2e-5,
                        1e-5);
                double ms = medianMs(() -> LogprobGather.forward(logits, DType.BF16, dt, logp, lse, n, v, 1f, 0));
                report("logprob forward bf16 (" + n + ", " + v + ")", ms, bytes + 12.0 * n);
                long dlogp = m.upload(GpuSupport.randn(r, n, 1f));
                long out = m.alloc(bytes);
                double msB = medianMs(() -> LogprobGather.backward(logits, DType.BF16, dt, lse, dlogp, out, n, v, 1f, 0));
                report("logprob backward bf16 out of place (" + n + ", " + v + ")", msB, 2.0 * bytes + 12.0 * n);
            }
        }
    }

    @Test
    void groupAdvantages() {
        int p = 4096, g = 16;
        float[] rewards = new float[p * g];
        Random r = new Random(40);
        for (int i = 0; i < rewards.length; i++) {
            rewards[i] = r.nextFloat();
        }
        try (GpuSupport.Mem m = new GpuSupport.Mem()) {
            long in = m.upload(rewards), out = m.poisonedF32(p * g);
            GroupAdvantages.compute(in, out, p, g, 0);
            assertClose("timed advantages", 40, GroupAdvantagesReference.compute(rewards, p, g, true, GroupAdvantages.DEFAULT_EPS),
                    GpuSupport.getF32(out, p * g), 1e-5, 1e-5);
            double ms = medianMs(() -> GroupAdvantages.compute(in, out, p, g, 0));
            report("group advantages " + p + " x " + g + " (launch-bound)", ms, 8.0 * p * g);
        }
    }

    @AfterAll
    static void printTable() {
        if (!TABLE.isEmpty()) {
            System.out.print("---- kernel timings (" + CudaDriver.deviceName(CudaDriver.device(0)) + ") ----\n" + TABLE);
        }
    }
}
