package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The SIMT semantics the kernels rely on (test_kernels.cu): barriers, every warp shuffle / vote with widths 1..32,
 * block reductions, 3-D grids and blocks, atomics, dynamic shared memory, barrier counts and early exit, partial
 * warps. Every expected value is derived here from the CUDA programming guide, exactly (integers, or floats that are
 * exact), so the same test checks the CUDA emulator in CI and a real GPU in the GPU check.
 */
@Tag("gpu")
class SimtGpuTest {
    private static CudaContext ctx;
    private static CudaModule module;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        ctx = CudaContext.open(0);
        module = TestKernels.load(TestKernels.KERNELS);
    }

    @AfterAll
    static void close() {
        if (module != null) {
            module.close();
        }
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
    }

    private static void launch(String kernel, int gx, int gy, int gz, int bx, int by, int bz, int shared,
            KernelArgs args) {
        CudaDriver.launchKernel(module.function(kernel), gx, gy, gz, bx, by, bz, shared, 0, args);
        CudaDriver.contextSynchronize();
    }

    @Test
    void barrierExchangesThroughSharedMemory() {
        for (int n : new int[] {1024, 96, 33, 1}) {
            int blocks = 3;
            try (DeviceBuffer out = DeviceBuffer.alloc(4L * blocks * n); KernelArgs a = KernelArgs.of().ptr(out)) {
                launch("emu_barrier_reverse_kernel", blocks, 1, 1, n, 1, 1, 0, a);
                int[] got = out.toIntArray();
                for (int b = 0; b < blocks; b++) {
                    for (int t = 0; t < n; t++) {
                        assertEquals(2 * (t + 1000 * b), got[b * n + t], "block " + b + " thread " + t + " of " + n);
                    }
                }
            }
        }
    }

    /** Source lane of a shuffle per the programming guide; -1 when the lane keeps its own value. */
    private static int source(String kind, int lane, int arg, int width) {
        int group = lane / width, first = group * width;
        return switch (kind) {
            case "idx" -> first + Math.floorMod(arg, width);
            case "up" -> lane - first >= arg ? lane - arg : -1;          // the lower delta lanes are unchanged
            case "down" -> lane - first + arg < width ? lane + arg : -1; // the upper delta lanes are unchanged
            case "xor" -> (lane ^ arg) / width > group ? -1 : lane ^ arg; // a later group returns the own value
            default -> throw new IllegalArgumentException(kind);
        };
    }

    @Test
    void everyWarpPrimitiveWithEveryWidth() {
        int blocks = 2, threads = 64;
        for (int width : new int[] {32, 16, 8, 4, 2, 1}) {
            try (DeviceBuffer out = DeviceBuffer.alloc(40L * blocks * threads);
                    KernelArgs a = KernelArgs.of().ptr(out).i32(width)) {
                launch("emu_warp_ops_kernel", blocks, 1, 1, threads, 1, 1, 0, a);
                int[] got = out.toIntArray();
                int ballot = 0;
                for (int l = 0; l < 32; l += 3) {
                    ballot |= 1 << l;
                }
                for (int t = 0; t < blocks * threads; t++) {
                    int lane = t & 31, warpBase = t - lane;
                    String at = " (thread " + t + ", width " + width + ")";
                    String[] kinds = {"idx", "up", "down", "xor"};
                    int[] args = {5, 3, 3, 6};
                    for (int q = 0; q < 4; q++) {
                        int src = source(kinds[q], lane, args[q], width);
                        int expect = 100 * (src < 0 ? t : warpBase + src) + 7;
                        assertEquals(expect, got[10 * t + q], "__shfl_" + kinds[q] + at);
                    }
                    assertEquals(ballot, got[10 * t + 4], "__ballot_sync" + at);
                    assertEquals(1, got[10 * t + 5], "__any_sync" + at);
                    assertEquals(0, got[10 * t + 6], "__all_sync" + at);
                    assertEquals(t ^ 1, got[10 * t + 7], "__shfl_xor_sync of a float" + at);
                    assertEquals(lane < 16 ? t + 16 : t, got[10 * t + 8], "__shfl_down_sync of an unsigned" + at);
                    assertEquals(-1, got[10 * t + 9], "__activemask after __syncwarp" + at);
                }
            }
        }
    }

    @Test
    void blockSumOverWarpsAndSharedMemory() {
        SplittableRandom r = new SplittableRandom(21);
        for (int threads : new int[] {1024, 256, 32}) {
            int blocks = 5;
            int[] in = new int[blocks * threads];
            for (int i = 0; i < in.length; i++) {
                in[i] = r.nextInt(-1000, 1000);
            }
            try (DeviceBuffer din = DeviceBuffer.of(in); DeviceBuffer out = DeviceBuffer.alloc(4L * blocks);
                    KernelArgs a = KernelArgs.of().ptr(din).ptr(out)) {
                launch("emu_block_sum_kernel", blocks, 1, 1, threads, 1, 1, 0, a);
                int[] got = out.toIntArray();
                for (int b = 0; b < blocks; b++) {
                    int sum = 0;
                    for (int t = 0; t < threads; t++) {
                        sum += in[b * threads + t];
                    }
                    assertEquals(sum, got[b], "block " + b + " of " + threads + " threads");
                }
            }
        }
    }

    @Test
    void threeDimensionalGridsAndBlocks() {
        int gx = 3, gy = 2, gz = 2, bx = 5, by = 3, bz = 2; // 30 threads: the block ends inside its first warp
        int threads = bx * by * bz, total = gx * gy * gz * threads;
        try (DeviceBuffer out = DeviceBuffer.alloc(24L * total); KernelArgs a = KernelArgs.of().ptr(out)) {
            out.fill((byte) 0xff);
            launch("emu_index_3d_kernel", gx, gy, gz, bx, by, bz, 0, a);
            int[] got = out.toIntArray();
            for (int z = 0; z < gz; z++) {
                for (int y = 0; y < gy; y++) {
                    for (int x = 0; x < gx; x++) {
                        for (int tz = 0; tz < bz; tz++) {
                            for (int ty = 0; ty < by; ty++) {
                                for (int tx = 0; tx < bx; tx++) {
                                    int g = (x + gx * (y + gy * z)) * threads + tx + bx * (ty + by * tz);
                                    assertArrayEquals(new int[] {tx, ty, tz, x, y, z},
                                            java.util.Arrays.copyOfRange(got, 6 * g, 6 * g + 6), "thread " + g);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void atomicsFromEveryThread() {
        int blocks = 7, threads = 192, total = blocks * threads;
        try (DeviceBuffer counters = DeviceBuffer.of(new int[] {0, Integer.MIN_VALUE, Integer.MAX_VALUE, 0, 0});
                DeviceBuffer fsum = DeviceBuffer.of(new float[] {0f}); DeviceBuffer ull = DeviceBuffer.alloc(8);
                KernelArgs a = KernelArgs.of().ptr(counters).ptr(fsum).ptr(ull)) {
            CudaDriver.memsetD8(ull.address(), (byte) 0, 8);
            launch("emu_atomics_kernel", blocks, 1, 1, threads, 1, 1, 0, a);
            int xor = 0;
            for (int t = 0; t < total; t++) {
                xor ^= t;
            }
            assertArrayEquals(new int[] {total, total - 1, 0, total, xor}, counters.toIntArray());
            assertEquals(total, fsum.toFloatArray()[0], "a float atomicAdd of 1.0 is exact below 2^24");
            int[] halves = ull.toIntArray();
            assertEquals((long) total * (total - 1) / 2, (halves[0] & 0xffffffffL) | ((long) halves[1] << 32));
        }
    }

    @Test
    void dynamicSharedMemoryAndItsLimit() {
        int blocks = 3, threads = 1000;
        float[] in = GpuTestSupport.random(23, blocks * threads);
        try (DeviceBuffer din = DeviceBuffer.of(in); DeviceBuffer out = DeviceBuffer.alloc(4L * in.length);
                KernelArgs a = KernelArgs.of().ptr(din).ptr(out)) {
            launch("emu_dynamic_smem_reverse_kernel", blocks, 1, 1, threads, 1, 1, 4 * threads, a);
            float[] got = out.toFloatArray();
            for (int b = 0; b < blocks; b++) {
                for (int t = 0; t < threads; t++) {
                    assertEquals(in[b * threads + threads - 1 - t], got[b * threads + t], "block " + b + " thread " + t);
                }
            }
            // more than 48 KiB needs the function attribute first, on a GPU and here alike
            long fn = module.function("emu_dynamic_smem_reverse_kernel");
            CudaException e = assertThrows(CudaException.class,
                    () -> CudaDriver.launchKernel(fn, 1, 1, 1, 32, 1, 1, 64 * 1024, 0, a));
            assertEquals("CUDA_ERROR_INVALID_VALUE", e.errorName(), e.getMessage());
            CudaDriver.funcSetAttribute(fn, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 64 * 1024);
            launch("emu_dynamic_smem_reverse_kernel", 1, 1, 1, 32, 1, 1, 64 * 1024, a);
            float[] again = out.toFloatArray();
            for (int t = 0; t < 32; t++) {
                assertEquals(in[31 - t], again[t], "thread " + t + " with 64 KiB of dynamic shared memory");
            }
        }
    }

    @Test
    void barrierCountsAndThreadsThatReturnedEarly() {
        int blocks = 2, threads = 128, live = 64;
        try (DeviceBuffer out = DeviceBuffer.alloc(16L * blocks); KernelArgs a = KernelArgs.of().ptr(out).i32(live)) {
            launch("emu_barrier_ops_kernel", blocks, 1, 1, threads, 1, 1, 0, a);
            int[] got = out.toIntArray();
            for (int b = 0; b < blocks; b++) {
                assertArrayEquals(new int[] {threads / 2, 1, 1, live}, java.util.Arrays.copyOfRange(got, 4 * b,
                        4 * b + 4), "__syncthreads_count/and/or and the threads that reached the end, block " + b);
            }
        }
    }

    @Test
    void votesInAPartialWarpSeeOnlyItsLanes() {
        int blocks = 2, threads = 48;
        try (DeviceBuffer out = DeviceBuffer.alloc(4L * blocks * threads); KernelArgs a = KernelArgs.of().ptr(out)) {
            launch("emu_partial_warp_vote_kernel", blocks, 1, 1, threads, 1, 1, 0, a);
            int[] got = out.toIntArray();
            for (int i = 0; i < got.length; i++) {
                int t = i % threads;
                assertEquals(t < 32 ? 0x55555555 : 0x5555, got[i], "thread " + t);
            }
        }
    }
}
