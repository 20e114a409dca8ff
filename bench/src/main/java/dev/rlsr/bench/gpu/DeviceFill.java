package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaModule;
import dev.rlsr.bindings.KernelArgs;
import dev.rlsr.bindings.KernelCache;

import java.util.List;

/**
 * Fills large device buffers with seeded pseudo-random values on the GPU, so multi-GiB inputs (logits (N,V)) need
 * no host generation or PCIe copy. Value i is a hash of (seed, i), uniform in [lo, hi): reproducible, never all
 * zeros. bf16 is rounded to nearest even like the host's BF16.fromFloat. Validation always reads the data back from
 * the device, so the host never needs to regenerate it.
 */
final class DeviceFill implements AutoCloseable {
    private static final String SOURCE = """
            // splitmix64 finaliser: one 64-bit hash per element, no state
            __device__ __forceinline__ unsigned int rlsr_mix(unsigned long long x) {
                x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
                x ^= x >> 27; x *= 0x94d049bb133111ebULL;
                x ^= x >> 31;
                return (unsigned int) (x >> 32);
            }
            __device__ __forceinline__ float rlsr_uniform(long long i, unsigned long long seed, float lo, float scale) {
                const unsigned int h = rlsr_mix((unsigned long long) i + seed * 0x9e3779b97f4a7c15ULL);
                return fmaf((float) (h >> 8), scale, lo);   // 24 random bits -> [lo, hi)
            }
            extern "C" __global__ void fill_uniform_f32_kernel(float* out, long long n, unsigned long long seed,
                                                               float lo, float hi) {
                const float scale = (hi - lo) * (1.0f / 16777216.0f);
                for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n;
                     i += (long long) gridDim.x * blockDim.x) {
                    out[i] = rlsr_uniform(i, seed, lo, scale);
                }
            }
            extern "C" __global__ void fill_uniform_bf16_kernel(unsigned short* out, long long n,
                                                                unsigned long long seed, float lo, float hi) {
                const float scale = (hi - lo) * (1.0f / 16777216.0f);
                for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n;
                     i += (long long) gridDim.x * blockDim.x) {
                    unsigned int b = __float_as_uint(rlsr_uniform(i, seed, lo, scale));
                    b += 0x7fffu + ((b >> 16) & 1u);   // round to nearest even (finite inputs only)
                    out[i] = (unsigned short) (b >> 16);
                }
            }
            """;

    private final CudaModule module;
    private final long f32;
    private final long bf16;
    private final int grid;

    DeviceFill(GpuSession session) {
        byte[] cubin = KernelCache.cubin(SOURCE, "rlsr_bench_fill.cu", session.context.arch(), List.of());
        module = CudaModule.load(cubin);
        f32 = module.function("fill_uniform_f32_kernel");
        bf16 = module.function("fill_uniform_bf16_kernel");
        grid = 8 * session.multiprocessors(); // grid-stride: a few waves of 256-thread blocks saturate the writes
    }

    /** {@code n} fp32 values uniform in [lo, hi) at {@code dptr}, on {@code stream}. */
    void f32(long dptr, long n, long seed, float lo, float hi, long stream) {
        launch(f32, dptr, n, seed, lo, hi, stream);
    }

    /** {@code n} bf16 values (raw bits) uniform in [lo, hi) at {@code dptr}, on {@code stream}. */
    void bf16(long dptr, long n, long seed, float lo, float hi, long stream) {
        launch(bf16, dptr, n, seed, lo, hi, stream);
    }

    private void launch(long fn, long dptr, long n, long seed, float lo, float hi, long stream) {
        if (!(hi > lo) || (lo <= 0 && hi >= 0 && hi - lo < 1e-3f)) {
            throw new IllegalArgumentException("fill range [" + lo + ", " + hi + ") must be non-empty and not ~0");
        }
        try (KernelArgs args = KernelArgs.of().ptr(dptr).i64(n).i64(seed).f32(lo).f32(hi)) {
            CudaDriver.launchKernel(fn, grid, 1, 1, 256, 1, 1, 0, stream, args);
        }
    }

    /**
     * Element {@code i} of a {@link #f32} / {@link #bf16} fill, computed on the host bit for bit (the same hash, the
     * same single fma, the same rounding to bf16), so validation can regenerate any input without reading it back.
     *
     * @param i    element index
     * @param seed the fill's seed
     * @param lo   the fill's lower bound
     * @param hi   the fill's upper bound
     * @param bf16 whether the buffer holds bf16 (then the value is the widened bf16)
     * @return the value the device holds
     */
    static float hostValue(long i, long seed, float lo, float hi, boolean bf16) {
        long x = i + seed * 0x9e3779b97f4a7c15L;
        x ^= x >>> 30;
        x *= 0xbf58476d1ce4e5b9L;
        x ^= x >>> 27;
        x *= 0x94d049bb133111ebL;
        x ^= x >>> 31;
        int h = (int) (x >>> 32);
        float scale = (hi - lo) * (1.0f / 16777216.0f);
        float v = Math.fma((float) (h >>> 8), scale, lo);
        if (!bf16) {
            return v;
        }
        int b = Float.floatToRawIntBits(v);
        b += 0x7fff + ((b >>> 16) & 1);
        return Float.intBitsToFloat((b >>> 16) << 16);
    }

    @Override
    public void close() {
        module.close();
    }
}
