// Tensor cores for the kernels of this folder: warp-wide wrappers of one PTX instruction each, with the per-lane
// fragment layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16 with floating point type", "ldmatrix"). A
// kernel uses tensor cores only through these functions; the CUDA emulator provides the same functions with the same
// layouts (it defines RLSR_EMU_PROVIDES_MMA, so the PTX versions below step aside), so a kernel never has a second
// path. Every lane of the warp must call them together (.sync.aligned), with the warp converged. sm_80 and newer.
//
// Fragments, with g = lane / 4 and t = lane % 4 (bf16 pairs in one 32-bit register: lower half = lower index):
//   A (16x16, row-major): a[r] = A[g + 8*(r & 1)][2t + 8*(r >> 1) + {0, 1}]                     r = 0..3
//   B (16x8, "col"):      b[r] = B[2t + 8r + {0, 1}][g]                                          r = 0..1
//   C, D (16x8, fp32):    c[i] = C[g + 8*(i >> 1)][2t + (i & 1)]                                 i = 0..3
// ldmatrix.x{1,2,4}: lanes 8j..8j+7 give the addresses of rows 0..7 of 8x8 b16 matrix j (16 bytes each, 16-byte
// aligned, shared memory); r[j] of a lane = row g of matrix j, elements 2t and 2t+1 (.trans: of the transpose).
#ifndef RLSR_MMA_CUH
#define RLSR_MMA_CUH

#ifndef RLSR_EMU_PROVIDES_MMA

// d = A b + c, fp32 accumulate (d and c may be the same array)
__device__ __forceinline__ void rlsr_mma_m16n8k16_bf16(float* d, const unsigned* a, const unsigned* b, const float* c) {
#ifdef __CUDA_ARCH__
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%10, %11, %12, %13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
                   "f"(c[3]));
#endif
}

__device__ __forceinline__ unsigned rlsr_smem_address(const void* p) {
    unsigned a = 0;
#ifdef __CUDA_ARCH__
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\n" : "=r"(a) : "l"(p));
#endif
    return a;
}

__device__ __forceinline__ void rlsr_ldmatrix_x1(unsigned* r, const void* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(rlsr_smem_address(row)));
#endif
}

__device__ __forceinline__ void rlsr_ldmatrix_x2(unsigned* r, const void* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(rlsr_smem_address(row)));
#endif
}

__device__ __forceinline__ void rlsr_ldmatrix_x4(unsigned* r, const void* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(rlsr_smem_address(row)));
#endif
}

__device__ __forceinline__ void rlsr_ldmatrix_x1_trans(unsigned* r, const void* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0]) : "r"(rlsr_smem_address(row)));
#endif
}

__device__ __forceinline__ void rlsr_ldmatrix_x2_trans(unsigned* r, const void* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(rlsr_smem_address(row)));
#endif
}

__device__ __forceinline__ void rlsr_ldmatrix_x4_trans(unsigned* r, const void* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(rlsr_smem_address(row)));
#endif
}

#endif  // RLSR_EMU_PROVIDES_MMA

// Two fp32 rounded to bf16 (nearest even, as rlsr_float_to_bf16) and packed into one register, lo in bits 0..15 and
// hi in 16..31: the A operand of an mma from fp32 values (flash-attention keeps P in registers this way). One
// per-lane instruction, cvt.rn.bf16x2.f32 (which takes hi as its first source); the #else is its exact meaning. NaN
// stays NaN (the bit pattern of the NaN may differ between the two branches).
__device__ __forceinline__ unsigned rlsr_pack_bf16x2(float lo, float hi) {
#ifdef __CUDA_ARCH__
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    const unsigned l = __float_as_uint(lo), h = __float_as_uint(hi);
    const unsigned lb = (l & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : (l + 0x7fffu + ((l >> 16) & 1u)) >> 16;
    const unsigned hb = (h & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : (h + 0x7fffu + ((h >> 16) & 1u)) >> 16;
    return (lb & 0xffffu) | (hb << 16);
#endif
}

#endif  // RLSR_MMA_CUH
