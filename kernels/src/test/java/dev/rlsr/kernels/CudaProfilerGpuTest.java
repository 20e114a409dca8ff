package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaException;
import dev.rlsr.bindings.CudaProfiler;
import dev.rlsr.bindings.CudaProfiler.Profile;
import dev.rlsr.bindings.CudaProfiler.Row;
import dev.rlsr.bindings.CudaStream;
import dev.rlsr.bindings.KernelArgs;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@link CudaProfiler} on a device (the CUDA emulator in CI): every op of the profiled thread is counted once under
 * its name (a kernel's, a GEMM's shape, a copy's kind), an op inside a GEMM counts toward the GEMM, a capturing
 * stream and a failed launch are left out without disturbing the ops after them, and the results do not change.
 */
@Tag("gpu")
class CudaProfilerGpuTest {
    private static final String FILL_F32 = "elementwise_fill_b32_kernel";

    private CudaStream stream;
    private Gemm gemm;
    private GpuSupport.Mem mem;

    @BeforeEach
    void open() {
        GpuSupport.assumeGpu();
        stream = CudaStream.create();
        gemm = Gemm.create(stream.handle());
        mem = new GpuSupport.Mem();
    }

    @AfterEach
    void close() {
        if (stream != null) {
            stream.synchronize();
            gemm.close();
            mem.close();
            stream.close();
        }
        assertFalse(CudaProfiler.isActive(), "a test left a profiler active");
    }

    /** Row-major (m, k) x (k, n) in double: the expected product. */
    private static float[] product(float[] a, float[] b, int m, int n, int k, float[] c) {
        float[] d = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = c == null ? 0 : c[i * n + j];
                for (int p = 0; p < k; p++) {
                    s += (double) a[i * k + p] * b[p * n + j];
                }
                d[i * n + j] = (float) s;
            }
        }
        return d;
    }

    private static float[] ints(int n, int offset) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (i + offset) % 5 - 2; // small integers: every sum is exact in fp32 and bf16
        }
        return x;
    }

    @Test
    void everyOpIsCountedOnceUnderItsName() {
        long s = stream.handle();
        int m = 3;
        int n = 5;
        int k = 7;
        float[] a = ints(m * k, 0);
        float[] b = ints(k * n, 3);
        float[] c0 = ints(m * n, 1);
        long a32 = mem.upload(a);
        long b32 = mem.upload(b);
        long d32 = mem.poisonedF32(m * n);
        long a16 = mem.upload(BF16.fromFloat(a));
        long b16 = mem.upload(BF16.fromFloat(b));
        long d16 = mem.upload(BF16.fromFloat(c0));
        long filled = mem.alloc(4L * 100);
        long zeroed = mem.alloc(4L * 10);
        Profile p;
        try (CudaProfiler prof = CudaProfiler.start()) {
            assertTrue(CudaProfiler.isActive());
            for (int i = 0; i < 3; i++) {
                Elementwise.fill(filled, DType.F32, 100, 2.5f, s);
            }
            gemm.matmul(false, false, m, n, k, 1f, a32, k, b32, n, DType.F32, 0f, 0, n, d32, n, DType.F32);
            gemm.matmul(false, false, m, n, k, 1f, a32, k, b32, n, DType.F32, 0f, 0, n, d32, n, DType.F32);
            // bf16 accumulation in place: Gemm copies C first (a DtoD copy inside the GEMM)
            gemm.matmul(false, false, m, n, k, 1f, a16, k, b16, n, DType.BF16, 1f, d16, n, d16, n, DType.BF16);
            CudaDriver.memsetD32Async(zeroed, 0, 10, s);
            p = prof.stop();
        }
        assertFalse(CudaProfiler.isActive());
        System.out.print(p.table(10));

        assertEquals(7, p.ops(), "3 fills + 3 GEMMs + 1 memset, the GEMM's inner copy not counted on its own");
        assertEquals(4, p.rows().size(), p.table(10));
        assertCalls(p, FILL_F32, 3);
        assertCalls(p, "gemm NN 3x5x7 f32->f32", 2);
        assertCalls(p, "gemm NN 3x5x7 bf16->bf16 +C", 1);
        assertCalls(p, "memset D32", 1);
        assertNull(p.row("memcpy DtoD"), "the copy of C belongs to its GEMM");
        assertEquals(0, p.dropped());
        assertEquals(0, p.skippedCapturing());

        double sum = 0;
        for (Row r : p.rows()) {
            assertTrue(Double.isFinite(r.gpuMs()) && r.gpuMs() >= 0, r.toString());
            assertTrue(Double.isFinite(r.hostMs()) && r.hostMs() >= 0, r.toString());
            sum += r.gpuMs();
        }
        assertEquals(sum, p.gpuMs(), 1e-9 * Math.max(1, sum));
        // the span from the first start event to the last end event holds every op; event times resolve ~0.5 us
        assertTrue(p.spanMs() + 1e-3 * p.ops() >= p.gpuMs(), p.table(10));
        assertTrue(p.wallMs() >= p.spanMs(), p.table(10));
        assertTrue(p.rows().get(0).gpuMs() >= p.rows().get(p.rows().size() - 1).gpuMs(), "largest first");

        // the results are those of an unprofiled run
        float[] filledBack = GpuSupport.getF32(filled, 100);
        for (float v : filledBack) {
            assertEquals(2.5f, v);
        }
        assertArrayEquals(product(a, b, m, n, k, null), GpuSupport.getF32(d32, m * n));
        assertArrayEquals(product(a, b, m, n, k, c0), BF16.toFloat(GpuSupport.getBf16(d16, m * n)));
        assertArrayEquals(new float[10], GpuSupport.getF32(zeroed, 10));
    }

    private static void assertCalls(Profile p, String label, int calls) {
        Row r = p.row(label);
        assertNotNull(r, label + " is missing from\n" + p.table(20));
        assertEquals(calls, r.calls(), label);
    }

    @Test
    void aFailedLaunchIsLeftOutAndTheNextOpsAreStillCounted() {
        long s = stream.handle();
        long t = mem.alloc(4L * 64);
        Kernel fill = Kernel.of("elementwise", FILL_F32);
        Profile p;
        try (CudaProfiler prof = CudaProfiler.start()) {
            // 2048 threads per block: no device takes it, the driver refuses the launch
            assertThrows(CudaException.class, () -> fill.launch(1, 2048, s,
                    KernelArgs.local().ptr(t).i64(64).i32(Float.floatToRawIntBits(1f))));
            Elementwise.fill(t, DType.F32, 64, 1f, s);
            Elementwise.fill(t, DType.F32, 64, 1f, s);
            p = prof.stop();
        }
        assertEquals(2, p.ops(), p.table(10));
        assertCalls(p, FILL_F32, 2);
    }

    @Test
    void aCapturingStreamIsCountedButNotTimed() {
        long s = stream.handle();
        long t = mem.alloc(4L * 64);
        Profile p;
        try (CudaProfiler prof = CudaProfiler.start()) {
            CudaDriver.streamBeginCapture(s);
            Elementwise.fill(t, DType.F32, 64, 1f, s);
            CudaDriver.graphDestroy(CudaDriver.streamEndCapture(s));
            Elementwise.fill(t, DType.F32, 64, 3f, s);
            p = prof.stop();
        }
        assertEquals(1, p.skippedCapturing(), p.table(10));
        assertEquals(1, p.ops());
        assertCalls(p, FILL_F32, 1);
        assertEquals(3f, GpuSupport.getF32(t, 64)[63]);
    }

    @Test
    void oneProfilerAtATimeAndNothingIsRecordedAfterStop() {
        long s = stream.handle();
        long t = mem.alloc(4L * 64);
        CudaProfiler prof = CudaProfiler.start();
        try {
            IllegalStateException twice = assertThrows(IllegalStateException.class, CudaProfiler::start);
            assertTrue(twice.getMessage().contains("already active"), twice.getMessage());
            Elementwise.fill(t, DType.F32, 64, 1f, s);
        } finally {
            Profile p = prof.stop();
            assertEquals(1, p.ops());
        }
        assertThrows(IllegalStateException.class, prof::stop);
        prof.close(); // after stop: nothing left to do
        Elementwise.fill(t, DType.F32, 64, 1f, s);
        assertFalse(CudaProfiler.isActive());
        // a new profiler starts from nothing
        try (CudaProfiler again = CudaProfiler.start()) {
            Profile p = again.stop();
            assertEquals(0, p.ops());
            assertTrue(p.rows().isEmpty());
            assertEquals(0, p.spanMs());
        }
    }

    @Test
    void anotherThreadsWorkIsNotRecorded() throws Exception {
        long s = stream.handle();
        long t = mem.alloc(4L * 64);
        long ctx = CudaDriver.contextGetCurrent();
        Profile p;
        try (CudaProfiler prof = CudaProfiler.start()) {
            Thread other = new Thread(() -> {
                CudaDriver.contextSetCurrent(ctx);
                Elementwise.fill(t, DType.F32, 64, 1f, s);
                CudaDriver.streamSynchronize(s);
            });
            other.start();
            other.join();
            p = prof.stop();
        }
        assertEquals(0, p.ops(), p.table(10));
    }
}
