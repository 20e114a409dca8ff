// 16-byte vector access to activations and the 1-D element split of the memory-bound kernels (cast, elementwise,
// swiglu, rope, argmax, embedding): included after rlsr_common.cuh, header-only, no host code, no system includes.
#ifndef RLSR_VEC_CUH
#define RLSR_VEC_CUH

#include "rlsr_common.cuh"

// An activation type with its 16-byte vector form: PER16 elements per uint4, unpacked to / packed from fp32
// registers. Little endian: the lower half of a 32-bit word is the bf16 element at the lower address.
struct RlsrVecF32 {
    typedef float T;
    enum { PER16 = 4 };
    static __device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
    static __device__ __forceinline__ void store(float* p, long long i, float f) { p[i] = f; }
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x); f[1] = __uint_as_float(v.y);
        f[2] = __uint_as_float(v.z); f[3] = __uint_as_float(v.w);
    }
    static __device__ __forceinline__ uint4 pack(const float* f) {
        return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]), __float_as_uint(f[3]));
    }
};

struct RlsrVecBF16 {
    typedef unsigned short T;
    enum { PER16 = 8 };
    static __device__ __forceinline__ float load(const unsigned short* p, long long i) {
        return rlsr_bf16_to_float(p[i]);
    }
    static __device__ __forceinline__ void store(unsigned short* p, long long i, float f) {
        p[i] = rlsr_float_to_bf16(f);
    }
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x << 16); f[1] = __uint_as_float(v.x & 0xffff0000u);
        f[2] = __uint_as_float(v.y << 16); f[3] = __uint_as_float(v.y & 0xffff0000u);
        f[4] = __uint_as_float(v.z << 16); f[5] = __uint_as_float(v.z & 0xffff0000u);
        f[6] = __uint_as_float(v.w << 16); f[7] = __uint_as_float(v.w & 0xffff0000u);
    }
    static __device__ __forceinline__ unsigned int pack2(float lo, float hi) {
        return (unsigned int) rlsr_float_to_bf16(lo) | ((unsigned int) rlsr_float_to_bf16(hi) << 16);
    }
    static __device__ __forceinline__ uint4 pack(const float* f) {
        return make_uint4(pack2(f[0], f[1]), pack2(f[2], f[3]), pack2(f[4], f[5]), pack2(f[6], f[7]));
    }
};

// Byte offset of p from the 16-byte boundary below it.
__device__ __forceinline__ unsigned int rlsr_mis16(const void* p) {
    return (unsigned int) ((unsigned long long) p & 15ull);
}

// Elements of `bytes` each before p reaches a 16-byte boundary, at most n.
__device__ __forceinline__ long long rlsr_head16(const void* p, int bytes, long long n) {
    const unsigned int mis = rlsr_mis16(p);
    const long long head = mis == 0 ? 0 : (long long) ((16u - mis) / (unsigned int) bytes);
    return head < n ? head : n;
}

// n elements split into a scalar head (until the first 16-byte boundary of the operand that sets the alignment),
// nvec vectors of `per` elements and a scalar tail [head + nvec*per, n). When the operands are not at the same offset
// from a 16-byte boundary no vector fits them all: everything is head, and the kernel runs scalar (still coalesced).
struct RlsrSplit {
    long long head, nvec;
};

__device__ __forceinline__ RlsrSplit rlsr_split(const void* p, int bytes, int per, long long n, bool coaligned) {
    RlsrSplit s;
    s.head = coaligned ? rlsr_head16(p, bytes, n) : n;
    s.nvec = (n - s.head) / per;
    return s;
}

// Grid-stride loop bounds of a 1-D kernel.
__device__ __forceinline__ long long rlsr_gtid() { return (long long) blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long rlsr_gstride() { return (long long) gridDim.x * blockDim.x; }

#endif  // RLSR_VEC_CUH
