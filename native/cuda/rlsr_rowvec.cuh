// 16-byte vector access to rows of activations (fp32 x4 or bf16 x8), for the row-wise kernels (norms, losses,
// element-wise ops). A kernel file pulls it in with
//     #include "rlsr_rowvec.cuh"
// after rlsr_common.cuh. A row may start anywhere (odd widths, views): rlsr_head() gives the elements before its
// first 16-byte boundary, which a kernel handles one by one before the vector loop; several arrays walked with the
// same vector index must have the same head (else the kernel takes its scalar path).
#ifndef RLSR_ROWVEC_CUH
#define RLSR_ROWVEC_CUH

#include "rlsr_common.cuh"

struct RlsrVecF32 : RlsrF32 {
    enum { PER16 = 4 };  // elements per 16-byte vector
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x); f[1] = __uint_as_float(v.y);
        f[2] = __uint_as_float(v.z); f[3] = __uint_as_float(v.w);
    }
    static __device__ __forceinline__ uint4 pack(const float* f) {
        return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]), __float_as_uint(f[3]));
    }
};

// little endian: the lower half of a 32-bit word is the element at the lower address
struct RlsrVecBF16 : RlsrBF16 {
    enum { PER16 = 8 };
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x << 16); f[1] = __uint_as_float(v.x & 0xffff0000u);
        f[2] = __uint_as_float(v.y << 16); f[3] = __uint_as_float(v.y & 0xffff0000u);
        f[4] = __uint_as_float(v.z << 16); f[5] = __uint_as_float(v.z & 0xffff0000u);
        f[6] = __uint_as_float(v.w << 16); f[7] = __uint_as_float(v.w & 0xffff0000u);
    }
    static __device__ __forceinline__ unsigned int pair(float lo, float hi) {
        return (unsigned int) rlsr_float_to_bf16(lo) | ((unsigned int) rlsr_float_to_bf16(hi) << 16);
    }
    static __device__ __forceinline__ uint4 pack(const float* f) {
        return make_uint4(pair(f[0], f[1]), pair(f[2], f[3]), pair(f[4], f[5]), pair(f[6], f[7]));
    }
};

// Elements of a row of n elements at p before its first 16-byte boundary (at most n). p is element-aligned
// (the launchers check it), so the misalignment is a whole number of elements.
template <typename E>
__device__ __forceinline__ int rlsr_head(const void* p, int n) {
    const unsigned int mis = (unsigned int) ((unsigned long long) p & 15ull);
    const int head = mis == 0 ? 0 : (int) ((16u - mis) / sizeof(typename E::T));
    return head < n ? head : n;
}

// The sum over a row group: one warp (lanes 0..31) or the whole block. Both contain the synchronisation the group
// needs, so every thread of the group must call it.
template <bool BLOCK>
__device__ __forceinline__ float rlsr_group_sum(float v, float* scratch) {
    if (BLOCK) return rlsr_block_sum(v, scratch);
    return rlsr_warp_sum(v);
}

#endif  // RLSR_ROWVEC_CUH
