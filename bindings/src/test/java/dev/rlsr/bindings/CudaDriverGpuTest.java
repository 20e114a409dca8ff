package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Driver API on a real GPU; skips without one. */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
@Tag("gpu")
class CudaDriverGpuTest {
    private static CudaContext ctx;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        ctx = CudaContext.open(0);
    }

    @AfterAll
    static void close() {
        if (ctx != null) {
            ctx.close();
            ctx.close(); // idempotent
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
    }

    @Test
    void deviceProperties() {
        assertTrue(CudaDriver.deviceCount() >= 1);
        String name = ctx.name();
        int[] cc = ctx.computeCapability();
        long total = ctx.totalMem();
        long[] info = CudaDriver.memInfo();
        System.out.printf("device 0: %s, sm_%d%d, %.1f GiB, driver %d, %d SMs%n", name, cc[0], cc[1],
                total / (double) (1L << 30), CudaDriver.driverVersion(),
                CudaDriver.attribute(ctx.device(), CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT));
        assertTrue(!name.isBlank());
        assertTrue(cc[0] >= 5 && cc[1] >= 0, "compute capability " + cc[0] + "." + cc[1]);
        assertEquals("sm_" + cc[0] + cc[1], ctx.arch());
        assertTrue(total > (1L << 30), "total memory " + total);
        assertTrue(info[0] > 0 && info[0] <= info[1] && info[1] <= total, java.util.Arrays.toString(info));
        assertEquals(32, CudaDriver.attribute(ctx.device(), CudaDriver.CU_DEVICE_ATTRIBUTE_WARP_SIZE));
        assertTrue(CudaDriver.driverVersion() >= 12000);
        assertEquals(ctx.handle(), CudaDriver.contextGetCurrent());
        assertEquals(ctx.device(), CudaDriver.contextGetDevice());
        if (CudaDriver.isEmulator()) {
            assertEquals("RLSR CUDA emulator", name);
            assertEquals("sm_90", ctx.arch());
        }
    }

    @Test
    void syncCopiesRoundTripAndMemsetWrites() {
        long seed = 11;
        float[] x = GpuTestSupport.random(seed, 4099);
        try (DeviceBuffer a = DeviceBuffer.of(x); DeviceBuffer b = DeviceBuffer.alloc(a.bytes())) {
            assertArrayEquals(x, a.toFloatArray());
            CudaDriver.memcpyDtoD(b.address(), a.address(), a.bytes());
            assertArrayEquals(x, b.toFloatArray());

            b.fill(Float.NaN);
            for (float v : b.toFloatArray()) {
                assertTrue(Float.isNaN(v));
            }
            b.fill((byte) 0);
            for (float v : b.toFloatArray()) {
                assertEquals(0f, v);
            }
            CudaDriver.memsetD8(b.address(), (byte) 0xff, 4); // first float becomes all-ones bits
            assertEquals(-1, Float.floatToRawIntBits(b.toFloatArray()[0]));

            short[] bits = GpuTestSupport.toBf16(x);
            try (DeviceBuffer h = DeviceBuffer.of(bits)) {
                assertArrayEquals(bits, h.toShortArray());
            }
            int[] ints = {1, -2, 3, Integer.MIN_VALUE, Integer.MAX_VALUE};
            try (DeviceBuffer h = DeviceBuffer.of(ints)) {
                assertArrayEquals(ints, h.toIntArray());
            }
        }
    }

    @Test
    void asyncCopiesThroughPinnedMemory() {
        int n = 1 << 16;
        long bytes = 4L * n;
        float[] x = GpuTestSupport.random(12, n);
        long hostIn = CudaDriver.memAllocHost(bytes);
        long hostOut = CudaDriver.memAllocHost(bytes);
        try (CudaStream s = CudaStream.create(); DeviceBuffer d = DeviceBuffer.alloc(bytes);
                DeviceBuffer d2 = DeviceBuffer.alloc(bytes)) {
            MemorySegment in = MemorySegment.ofAddress(hostIn).reinterpret(bytes);
            MemorySegment out = MemorySegment.ofAddress(hostOut).reinterpret(bytes);
            MemorySegment.copy(x, 0, in, JAVA_FLOAT, 0, n);
            out.fill((byte) 0);
            CudaDriver.memsetD8Async(d2.address(), (byte) 0x7f, bytes, s.handle());
            CudaDriver.memsetD32Async(d2.address(), Float.floatToRawIntBits(Float.NaN), n, s.handle());
            CudaDriver.memcpyHtoDAsync(d.address(), in, bytes, s.handle());
            CudaDriver.memcpyDtoDAsync(d2.address(), d.address(), bytes, s.handle());
            CudaDriver.memcpyDtoHAsync(out, d2.address(), bytes, s.handle());
            s.synchronize();
            assertArrayEquals(x, out.toArray(JAVA_FLOAT));
        } finally {
            CudaDriver.memFreeHost(hostIn);
            CudaDriver.memFreeHost(hostOut);
        }
    }

    @Test
    @SuppressWarnings("try") // closes a resource twice on purpose to check idempotence
    void eventsTimeWorkOnAStream() {
        try (CudaStream s = CudaStream.create(); CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create();
                DeviceBuffer big = DeviceBuffer.alloc(256L << 20)) {
            start.record(s);
            CudaDriver.memsetD32Async(big.address(), 7, big.bytes() / 4, s.handle());
            end.record(s);
            try (CudaStream other = CudaStream.create(CudaDriver.CU_STREAM_NON_BLOCKING)) {
                other.waitFor(end); // ordering only; nothing to check beyond the call succeeding
                other.synchronize();
            }
            end.synchronize();
            float ms = end.elapsedMsSince(start);
            System.out.printf("memset of 256 MiB: %.3f ms (%.0f GB/s)%n", ms, (256L << 20) / (ms * 1e6));
            assertTrue(Float.isFinite(ms) && ms >= 0, "elapsed " + ms);
            end.close();
            end.close(); // idempotent
        }
    }

    @Test
    void outOfMemoryIsReportedWithFunctionNameAndErrorName() {
        CudaException e = assertThrows(CudaException.class, () -> CudaDriver.memAlloc(1L << 50));
        System.out.println(e.getMessage());
        assertEquals("cuMemAlloc_v2", e.function());
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
        assertTrue(e.getMessage().startsWith("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY ("), e.getMessage());
    }

    /** axpy_kernel of the test kernels (a file the CUDA emulator was built with), through the on-disk cache. */
    private static byte[] axpyCubin(Path cacheDir) {
        GpuTestSupport.requireThat(Nvrtc.isAvailable(), () -> "NVRTC not available: " + Nvrtc.unavailableReason());
        String old = System.getProperty("rlsr.kernel.cache");
        System.setProperty("rlsr.kernel.cache", cacheDir.toString());
        try {
            return KernelCache.cubin(TestKernels.source(TestKernels.KERNELS), TestKernels.KERNELS, ctx.arch(),
                    List.of());
        } finally {
            if (old == null) {
                System.clearProperty("rlsr.kernel.cache");
            } else {
                System.setProperty("rlsr.kernel.cache", old);
            }
        }
    }

    private static float[] axpyReference(float a, float[] x, float[] y, int times) {
        float[] out = y.clone();
        for (int t = 0; t < times; t++) {
            for (int i = 0; i < out.length; i++) {
                out[i] = Math.fma(a, x[i], out[i]); // the GPU contracts a*x+y into one FMA
            }
        }
        return out;
    }

    @Test
    void nvrtcKernelLoadsLaunchesAndComputes(@TempDir Path cache) {
        byte[] cubin = axpyCubin(cache);
        int n = 10_000;
        float a = 0.75f;
        float[] x = GpuTestSupport.random(21, n);
        float[] y = GpuTestSupport.random(22, n);
        try (CudaModule m = CudaModule.load(cubin); DeviceBuffer dx = DeviceBuffer.of(x);
                DeviceBuffer dy = DeviceBuffer.of(y); KernelArgs args = KernelArgs.of().ptr(dy).ptr(dx).f32(a).i32(n)) {
            long fn = m.function("axpy_kernel");
            assertEquals(fn, m.function("axpy_kernel"), "functions are cached");
            assertTrue(CudaDriver.funcGetAttribute(fn, CudaDriver.CU_FUNC_ATTRIBUTE_NUM_REGS) > 0);
            CudaDriver.funcSetAttribute(fn, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 64 * 1024);
            CudaDriver.launchKernel(fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, 0, args);
            CudaDriver.contextSynchronize();
            GpuTestSupport.assertClose("axpy", axpyReference(a, x, y, 1), dy.toFloatArray(), 1e-6, 1e-6, 21);
            assertThrows(CudaException.class, () -> m.function("no_such_kernel"));
        }
    }

    @Test
    void capturedGraphReplaysTheLaunch(@TempDir Path cache) {
        byte[] cubin = axpyCubin(cache);
        int n = 4096;
        float a = -1.25f;
        float[] x = GpuTestSupport.random(31, n);
        float[] y = GpuTestSupport.random(32, n);
        try (CudaModule m = CudaModule.load(cubin); CudaStream s = CudaStream.create(); DeviceBuffer dx = DeviceBuffer.of(x);
                DeviceBuffer dy = DeviceBuffer.of(y); KernelArgs args = KernelArgs.of().ptr(dy).ptr(dx).f32(a).i32(n)) {
            long fn = m.function("axpy_kernel");
            CudaDriver.streamBeginCapture(s.handle());
            CudaDriver.launchKernel(fn, (n + 127) / 128, 1, 1, 128, 1, 1, 0, s.handle(), args);
            long graph = CudaDriver.streamEndCapture(s.handle());
            long exec = CudaDriver.graphInstantiate(graph);
            try {
                // capture records, it does not run: y is untouched until the first replay
                s.synchronize();
                assertArrayEquals(y, dy.toFloatArray());
                for (int i = 0; i < 3; i++) {
                    CudaDriver.graphLaunch(exec, s.handle());
                }
                s.synchronize();
                GpuTestSupport.assertClose("axpy x3 by graph", axpyReference(a, x, y, 3), dy.toFloatArray(), 1e-6, 1e-6,
                        31);
            } finally {
                CudaDriver.graphExecDestroy(exec);
                CudaDriver.graphDestroy(graph);
            }
        }
    }
}
