package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The bugs a GPU shows only sometimes (a hang, garbage, silent corruption) are launch errors on the CUDA emulator,
 * each naming the kernel and what went wrong (emulator_faults.cu), and the context keeps working afterwards. Also the
 * emulator's NVRTC: a program text that is not the emulator's copy of the file fails with a log that says how to
 * rebuild. Runs only on the emulator: on a GPU these kernels would hang or corrupt memory.
 */
@Tag("gpu")
class EmulatorFaultsGpuTest {
    private static CudaContext ctx;
    private static CudaModule faults;
    private static CudaModule good;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        Assumptions.assumeTrue(CudaDriver.isEmulator(), "these kernels have bugs on purpose: they run on the CUDA "
                + "emulator only");
        ctx = CudaContext.open(0);
        faults = TestKernels.load(TestKernels.FAULTS);
        good = TestKernels.load(TestKernels.KERNELS);
    }

    @AfterAll
    static void close() {
        if (faults != null) {
            faults.close();
        }
        if (good != null) {
            good.close();
        }
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
    }

    /** Launches a faulty kernel, expects the error, then checks that a correct kernel still runs. */
    private static CudaException fails(String kernel, int block, int shared, KernelArgs args, String errorName,
            String... phrases) {
        CudaException e = assertThrows(CudaException.class, () -> {
            CudaDriver.launchKernel(faults.function(kernel), 1, 1, 1, block, 1, 1, shared, 0, args);
            CudaDriver.contextSynchronize();
        });
        String m = e.getMessage();
        System.out.println(m);
        assertEquals(errorName, e.errorName(), m);
        assertTrue(m.contains(kernel), "the message must name the kernel: " + m);
        for (String p : phrases) {
            assertTrue(m.contains(p), "expected \"" + p + "\" in: " + m);
        }
        stillWorks();
        return e;
    }

    private static void stillWorks() {
        float[] x = {1f, 2f, 3f}, y = {10f, 20f, 30f};
        try (DeviceBuffer dx = DeviceBuffer.of(x); DeviceBuffer dy = DeviceBuffer.of(y);
                KernelArgs a = KernelArgs.of().ptr(dy).ptr(dx).f32(2f).i32(3)) {
            CudaDriver.launchKernel(good.function("axpy_kernel"), 1, 1, 1, 32, 1, 1, 0, 0, a);
            CudaDriver.contextSynchronize();
            assertArrayEquals(new float[] {12f, 24f, 36f}, dy.toFloatArray(), "the context works after the error");
        }
    }

    @Test
    void divergentSyncthreads() {
        try (DeviceBuffer out = DeviceBuffer.alloc(4 * 64); KernelArgs a = KernelArgs.of().ptr(out)) {
            fails("fault_divergent_barrier_kernel", 64, 0, a, "CUDA_ERROR_LAUNCH_FAILED", "divergent __syncthreads",
                    "threads 0-31", "threads 32-63", "emulator_faults.cu:");
        }
    }

    @Test
    void shuffleReadingALaneThatExited() {
        try (DeviceBuffer out = DeviceBuffer.alloc(4 * 32); KernelArgs a = KernelArgs.of().ptr(out)) {
            fails("fault_partial_warp_shuffle_kernel", 32, 0, a, "CUDA_ERROR_LAUNCH_FAILED", "lane 0 reads lane 16",
                    "has exited", "a shuffle by part of a warp");
        }
    }

    @Test
    void shuffleWhileTheRestOfTheWarpWaitsAtABarrier() {
        try (DeviceBuffer out = DeviceBuffer.alloc(4 * 32); KernelArgs a = KernelArgs.of().ptr(out)) {
            fails("fault_shuffle_vs_barrier_kernel", 32, 0, a, "CUDA_ERROR_LAUNCH_FAILED", "deadlock",
                    "threads 0-15 wait at __shfl_xor_sync", "threads 16-31 wait at __syncthreads");
        }
    }

    @Test
    void lanesAtDifferentShuffles() {
        try (DeviceBuffer out = DeviceBuffer.alloc(4 * 32); KernelArgs a = KernelArgs.of().ptr(out)) {
            fails("fault_shuffle_lines_kernel", 32, 0, a, "CUDA_ERROR_LAUNCH_FAILED", "must all reach the same one");
        }
    }

    @Test
    void maskWithoutTheCallingLane() {
        try (DeviceBuffer out = DeviceBuffer.alloc(4 * 32); KernelArgs a = KernelArgs.of().ptr(out)) {
            fails("fault_mask_without_caller_kernel", 32, 0, a, "CUDA_ERROR_LAUNCH_FAILED",
                    "does not include the calling lane 1");
        }
    }

    @Test
    void writeJustPastTheEndIsCaughtByTheCanary() {
        int n = 1000; // 4000 bytes: the allocation's 256-byte rounding leaves 96 bytes of slack after it
        try (DeviceBuffer buf = DeviceBuffer.alloc(4L * n); KernelArgs a = KernelArgs.of().ptr(buf).i32(n).i32(0)) {
            fails("fault_write_past_end_kernel", 32, 0, a, "CUDA_ERROR_ILLEGAL_ADDRESS",
                    "wrote past the end of the 4000-byte allocation", "bytes 0..3 after its end");
        }
    }

    @Test
    void writeFarPastTheEndHitsTheGuardPage() {
        int n = 1000;
        try (DeviceBuffer buf = DeviceBuffer.alloc(4L * n); KernelArgs a = KernelArgs.of().ptr(buf).i32(n).i32(100)) {
            fails("fault_write_past_end_kernel", 32, 0, a, "CUDA_ERROR_ILLEGAL_ADDRESS", "illegal memory access",
                    "400 bytes past the end of the 4000-byte device allocation");
        }
    }

    @Test
    void readPastTheEndHitsTheGuardPage() {
        int n = 1024; // 4096 bytes: no slack, the next byte is the guard page
        try (DeviceBuffer in = DeviceBuffer.alloc(4L * n); DeviceBuffer out = DeviceBuffer.alloc(4);
                KernelArgs a = KernelArgs.of().ptr(in).ptr(out).i32(n).i32(0)) {
            fails("fault_read_past_end_kernel", 32, 0, a, "CUDA_ERROR_ILLEGAL_ADDRESS",
                    "0 bytes past the end of the 4096-byte device allocation");
        }
    }

    @Test
    void useAfterFree() {
        DeviceBuffer in = DeviceBuffer.alloc(4096);
        long freed = in.address();
        in.close();
        try (DeviceBuffer out = DeviceBuffer.alloc(4);
                KernelArgs a = KernelArgs.of().ptr(freed).ptr(out).i32(0).i32(5)) {
            fails("fault_read_past_end_kernel", 32, 0, a, "CUDA_ERROR_ILLEGAL_ADDRESS", "was freed");
        }
    }

    @Test
    void dynamicSharedMemoryOverflow() {
        try (KernelArgs a = KernelArgs.of().i32(256).i32(0)) {
            fails("fault_dynamic_smem_overflow_kernel", 32, 1024, a, "CUDA_ERROR_ILLEGAL_ADDRESS",
                    "dynamic shared memory", "1024 bytes");
        }
    }

    @Test
    void deviceSideAssert() {
        int[] in = new int[32];
        in[9] = 7;
        try (DeviceBuffer d = DeviceBuffer.of(in); KernelArgs a = KernelArgs.of().ptr(d)) {
            fails("fault_assert_kernel", 32, 0, a, "CUDA_ERROR_ASSERT", "in[threadIdx.x] != 7", "thread (9,0,0)");
        }
    }

    @Test
    void blockBeyondLaunchBoundsOr1024() {
        try (DeviceBuffer out = DeviceBuffer.alloc(4 * 2048); KernelArgs a = KernelArgs.of().ptr(out)) {
            fails("fault_launch_bounds_kernel", 128, 0, a, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
                    "__launch_bounds__(64)");
            fails("fault_free_early_exit_kernel", 2048, 0, a, "CUDA_ERROR_INVALID_VALUE", "at most 1024");
        }
    }

    /** Threads that return before a barrier no longer count at it (sm_70+): no error, and the right values. */
    @Test
    void earlyExitBeforeABarrierIsFine() {
        int live = 40; // ends inside the second warp
        try (DeviceBuffer out = DeviceBuffer.alloc(4 * 64); KernelArgs a = KernelArgs.of().ptr(out).i32(live)) {
            CudaDriver.launchKernel(faults.function("fault_free_early_exit_kernel"), 1, 1, 1, 64, 1, 1, 0, 0, a);
            int[] got = out.toIntArray();
            for (int t = 0; t < live; t++) {
                assertEquals(live - 1 - t, got[t], "thread " + t);
            }
        }
    }

    @Test
    void nvrtcRefusesATextThatIsNotTheEmulatorsCopy() {
        String src = TestKernels.source(TestKernels.KERNELS).replace("a * x[i] + y[i]", "a * x[i] - y[i]");
        NvrtcException e = assertThrows(NvrtcException.class,
                () -> Nvrtc.compileToCubin(src, TestKernels.KERNELS, "sm_90", List.of()));
        System.out.println(e.getMessage());
        assertEquals(Nvrtc.NVRTC_ERROR_COMPILATION, e.code());
        assertTrue(e.log().contains("differs from the emulator's copy of test_kernels.cu")
                && e.log().contains("a * x[i] - y[i]") && e.log().contains("native/emulator/build.sh"), e.log());

        NvrtcException unknown = assertThrows(NvrtcException.class,
                () -> Nvrtc.compileToCubin(NvrtcTest.AXPY, "axpy.cu", "sm_90", List.of()));
        assertTrue(unknown.log().contains("'axpy.cu' is not one of them") && unknown.log().contains("test_kernels.cu"),
                unknown.log());
        assertEquals("99.0", Nvrtc.version(), "a version no real NVRTC has, so cached images never mix");
    }

    @Test
    void moduleLoadRefusesForeignImages() {
        byte[] fake = "\177ELF a real cubin would be here".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        CudaException e = assertThrows(CudaException.class, () -> CudaDriver.moduleLoadData(fake));
        assertEquals("CUDA_ERROR_INVALID_IMAGE", e.errorName(), e.getMessage());
        CudaException missing = assertThrows(CudaException.class, () -> faults.function("no_such_kernel"));
        assertEquals("CUDA_ERROR_NOT_FOUND", missing.errorName());
        assertTrue(missing.getMessage().contains("fault_assert_kernel"), "lists the file's kernels: "
                + missing.getMessage());
    }
}
