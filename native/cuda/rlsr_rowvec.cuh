// Row-wise helpers on top of rlsr_vec.cuh's 16-byte vectors (RlsrVecF32, RlsrVecBF16), for the kernels that give a
// row of width D to a group of threads (rmsnorm, layernorm, cross_entropy, pooling, gelu). A kernel file pulls it in
// with
//     #include "rlsr_rowvec.cuh"
// A row may start anywhere (odd widths, views): rlsr_head() gives the elements before its first 16-byte boundary,
// which a kernel handles one by one before the vector loop; several arrays walked with the same vector index must
// have the same head (else the kernel takes its scalar path).
#ifndef RLSR_ROWVEC_CUH
#define RLSR_ROWVEC_CUH

#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

// Elements of a row of n elements at p before its first 16-byte boundary (at most n). p is element-aligned
// (the launchers check it), so the misalignment is a whole number of elements.
template <typename E>
__device__ __forceinline__ int rlsr_head(const void* p, int n) {
    return (int) rlsr_head16(p, (int) sizeof(typename E::T), n);
}

// The sum over a row group: one warp (lanes 0..31) or the whole block. Both contain the synchronisation the group
// needs, so every thread of the group must call it.
template <bool BLOCK>
__device__ __forceinline__ float rlsr_group_sum(float v, float* scratch) {
    if (BLOCK) return rlsr_block_sum(v, scratch);
    return rlsr_warp_sum(v);
}

#endif  // RLSR_ROWVEC_CUH
