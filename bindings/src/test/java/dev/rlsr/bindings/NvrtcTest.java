package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Compiles without a GPU; skips where libnvrtc is absent (override with -Drlsr.lib.nvrtc=...). */
class NvrtcTest {
    static final String AXPY = """
            extern "C" __global__ void axpy_kernel(float* y, const float* x, float a, int n) {
                int i = blockIdx.x * blockDim.x + threadIdx.x;
                if (i < n) y[i] = a * x[i] + y[i];
            }
            """;

    static final String BF16 = """
            #include <cuda_bf16.h>
            extern "C" __global__ void bf16_scale_kernel(__nv_bfloat16* out, const __nv_bfloat16* in, float s, int n) {
                int i = blockIdx.x * blockDim.x + threadIdx.x;
                if (i < n) out[i] = __float2bfloat16(__bfloat162float(in[i]) * s);
            }
            """;

    /** bf16 without any header: raw bits, round-to-nearest-even on the way out; compiles with every NVRTC. */
    static final String BF16_RAW = """
            __device__ __forceinline__ float bf16_to_f32(unsigned short b) {
                return __uint_as_float(((unsigned int) b) << 16);
            }
            __device__ __forceinline__ unsigned short f32_to_bf16(float f) {
                unsigned int u = __float_as_uint(f);
                u += 0x7fffu + ((u >> 16) & 1u);
                return (unsigned short) (u >> 16);
            }
            extern "C" __global__ void bf16_raw_scale_kernel(unsigned short* out, const unsigned short* in, float s,
                                                             int n) {
                int i = blockIdx.x * blockDim.x + threadIdx.x;
                if (i < n) out[i] = f32_to_bf16(bf16_to_f32(in[i]) * s);
            }
            """;

    static final List<String> OPTIONS = List.of("-default-device", "--std=c++17", "-lineinfo");

    @BeforeAll
    static void requireNvrtc() {
        assumeTrue(Nvrtc.isAvailable(), "NVRTC not available, skipping: " + Nvrtc.unavailableReason());
        assumeFalse(CudaDriver.isEmulator(), "the CUDA emulator's NVRTC compiles nothing (it accepts only the kernel "
                + "files it was built with; CudaEmulatorGpuTest covers that): these tests need the real NVRTC");
    }

    private static void assertElf(byte[] cubin) {
        assertTrue(cubin.length > 64, "cubin too small: " + cubin.length);
        assertTrue(KernelCache.isElf(cubin), "cubin must start with the ELF magic 7f 45 4c 46");
    }

    @Test
    void versionLooksLikeMajorDotMinor() {
        String v = Nvrtc.version();
        System.out.println("NVRTC " + v);
        assertTrue(v.matches("\\d+\\.\\d+"), v);
    }

    @ParameterizedTest
    @ValueSource(strings = {"sm_80", "sm_90"})
    void plainKernelCompilesToCubin(String arch) {
        byte[] cubin = Nvrtc.compileToCubin(AXPY, "axpy.cu", arch, OPTIONS);
        assertElf(cubin);
        assertTrue(new String(cubin, java.nio.charset.StandardCharsets.ISO_8859_1).contains("axpy_kernel"),
                "the extern \"C\" name must appear unmangled in the cubin");
    }

    @ParameterizedTest
    @ValueSource(strings = {"sm_80", "sm_90"})
    void bf16KernelWithCudaHeaderCompilesToCubin(String arch) {
        assumeTrue(!Nvrtc.toolkitIncludeOptions().isEmpty(), "no CUDA toolkit headers of NVRTC's major version "
                + Nvrtc.version() + " found (CUDA_HOME, /usr/local/cuda/include): skipping the <cuda_bf16.h> case");
        byte[] cubin = Nvrtc.compileToCubin(BF16, "bf16_scale.cu", arch, OPTIONS);
        assertElf(cubin);
    }

    @ParameterizedTest
    @ValueSource(strings = {"sm_80", "sm_90"})
    void bf16KernelWithoutHeadersCompilesToCubin(String arch) {
        assertElf(Nvrtc.compileToCubin(BF16_RAW, "bf16_raw_scale.cu", arch, OPTIONS));
    }

    @Test
    void ptxForAVirtualArchitecture() {
        String ptx = Nvrtc.compileToPtx(AXPY, "axpy.cu", "compute_80", OPTIONS);
        assertTrue(ptx.contains(".entry axpy_kernel"), ptx.substring(0, Math.min(400, ptx.length())));
    }

    @Test
    void compileErrorCarriesTheLog() {
        String broken = "extern \"C\" __global__ void broken_kernel(float* y) { y[0] = undefined_name; }";
        NvrtcException e = assertThrows(NvrtcException.class,
                () -> Nvrtc.compileToCubin(broken, "broken.cu", "sm_90", OPTIONS));
        assertEquals(Nvrtc.NVRTC_ERROR_COMPILATION, e.code());
        assertTrue(e.log().contains("undefined_name"), e.log());
        assertTrue(e.getMessage().contains("broken.cu") && e.getMessage().contains("undefined_name"), e.getMessage());
    }

    @Test
    void kernelCacheCompilesOnceThenHits(@TempDir Path dir) {
        String old = System.getProperty("rlsr.kernel.cache");
        System.setProperty("rlsr.kernel.cache", dir.toString());
        try {
            long t0 = System.nanoTime();
            byte[] a = KernelCache.cubin(AXPY, "axpy", "sm_90", OPTIONS);
            long t1 = System.nanoTime();
            byte[] b = KernelCache.cubin(AXPY, "axpy", "sm_90", OPTIONS);
            long t2 = System.nanoTime();
            assertElf(a);
            assertTrue(java.util.Arrays.equals(a, b));
            System.out.printf("KernelCache: compile %.1f ms, hit %.1f ms%n", (t1 - t0) / 1e6, (t2 - t1) / 1e6);
        } finally {
            if (old == null) {
                System.clearProperty("rlsr.kernel.cache");
            } else {
                System.setProperty("rlsr.kernel.cache", old);
            }
        }
    }
}
