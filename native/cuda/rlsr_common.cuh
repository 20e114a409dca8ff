// Shared device helpers of the kernels in this folder. A kernel file pulls them in with
//     #include "rlsr_common.cuh"
// CudaKernels (Java) pastes this text in place of that line before NVRTC compiles the file, nvcc and the emulator
// find it with -I native/cuda. Everything here is header-only, guarded, and free of host code and of includes.
#ifndef RLSR_COMMON_CUH
#define RLSR_COMMON_CUH

#define RLSR_NEG_INF __uint_as_float(0xff800000u)
#define RLSR_POS_INF __uint_as_float(0x7f800000u)
#define RLSR_NAN __uint_as_float(0x7fc00000u)

// ---- bf16 as raw bits (unsigned short): widened with a shift, narrowed with round-to-nearest-even as torch and
// cuda_bf16.h do; NaN stays a quiet NaN.
__device__ __forceinline__ float rlsr_bf16_to_float(unsigned short h) {
    return __uint_as_float(((unsigned int) h) << 16);
}

__device__ __forceinline__ unsigned short rlsr_float_to_bf16(float f) {
    const unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short) 0x7fc0u;
    return (unsigned short) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Element access for templates over the activation type: F32 = float, BF16 = unsigned short bits.
struct RlsrF32 {
    typedef float T;
    static __device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
    static __device__ __forceinline__ void store(float* p, long long i, float f) { p[i] = f; }
};

struct RlsrBF16 {
    typedef unsigned short T;
    static __device__ __forceinline__ float load(const unsigned short* p, long long i) {
        return rlsr_bf16_to_float(p[i]);
    }
    static __device__ __forceinline__ void store(unsigned short* p, long long i, float f) {
        p[i] = rlsr_float_to_bf16(f);
    }
};

// ---- reductions (full warps only: every lane of the warp must call them)
__device__ __forceinline__ float rlsr_warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float rlsr_warp_max(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// scratch: __shared__ float[32] of the caller. Contains two barriers; call it from all threads of the block.
__device__ __forceinline__ float rlsr_block_sum(float v, float* scratch) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    v = rlsr_warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.f;
    return rlsr_warp_sum(v);
}

__device__ __forceinline__ float rlsr_block_max(float v, float* scratch) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    v = rlsr_warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : RLSR_NEG_INF;
    return rlsr_warp_max(v);
}

#endif  // RLSR_COMMON_CUH
