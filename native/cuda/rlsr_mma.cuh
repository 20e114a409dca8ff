// Tensor-core (mma.sync) wrappers of the kernels in this folder, bf16 inputs with fp32 accumulation. A kernel pulls
// them in with
//     #include "rlsr_mma.cuh"
// On a GPU (sm_80+) each wrapper is one PTX instruction; the #else branch of each is the exact per-lane meaning of
// that instruction in the CUDA subset of native/README.md (warp shuffles, integer and float arithmetic), which is
// what the CUDA emulator runs (and what an older GPU without bf16 mma compiles, slowly). Header-only, guarded, no
// includes, no host code.
//
// The wrappers (the whole list):
//   rlsr_mma_bf16_16816(c, a, b)  c (16x8 fp32) += A (16x16 bf16) * B (16x8 bf16), warp-wide (all 32 lanes call it)
//                                 = mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 with C = D
//   rlsr_pack_bf16x2(lo, hi)      two fp32 -> one register of two bf16, round to nearest even, lo in bits 0..15
//                                 = cvt.rn.bf16x2.f32 (per lane)
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"). Lane l of the warp,
// g = l >> 2 (0..7), t = l & 3 (0..3). A register holds two bf16 of consecutive k (or consecutive columns of C),
// the lower index in bits 0..15:
//   A (16x16, M x K, "row"): a[0] = A[g][2t, 2t+1]     a[1] = A[g+8][2t, 2t+1]
//                            a[2] = A[g][2t+8, 2t+9]   a[3] = A[g+8][2t+8, 2t+9]
//   B (16x8,  K x N, "col"): b[0] = B[2t, 2t+1][g]     b[1] = B[2t+8, 2t+9][g]
//   C (16x8, fp32):          c[0] = C[g][2t]  c[1] = C[g][2t+1]  c[2] = C[g+8][2t]  c[3] = C[g+8][2t+1]
// So a B operand stored N x K row-major (e.g. K of Q·Kᵀ, key-major) is read with one 32-bit load per register, and
// the C fragments of two adjacent n-tiles (columns 0..7 and 8..15) are, packed, the A fragment of the next product
// over those 16 columns: a[0] = pack(c0[0], c0[1]), a[1] = pack(c0[2], c0[3]), a[2] = pack(c1[0], c1[1]),
// a[3] = pack(c1[2], c1[3]) (flash-attention keeps P in registers this way).
#ifndef RLSR_MMA_CUH
#define RLSR_MMA_CUH

// c += A * B (see the layouts above). Every lane of the warp must call it, with the warp converged. The hardware's
// fp32 accumulation order inside one instruction is unspecified; the #else adds the 16 exact bf16 x bf16 products
// into c in k order with fmaf.
__device__ __forceinline__ void rlsr_mma_bf16_16816(float c[4], const unsigned a[4], const unsigned b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    float d0 = c[0], d1 = c[1], d2 = c[2], d3 = c[3];  // C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]
    for (int kp = 0; kp < 8; ++kp) {  // the k pair 2kp, 2kp+1
        // A[r][2kp..2kp+1] lives in lane (r % 8)*4 + kp % 4, register a[(r >= 8) + 2*(kp >= 4)];
        // B[2kp..2kp+1][n] lives in lane n*4 + kp % 4, register b[kp >= 4]. Every lane reads the same register.
        const int src = kp & 3, hi = kp >> 2;
        const unsigned ar0 = __shfl_sync(0xffffffffu, a[2 * hi], g * 4 + src);          // A[g][2kp..]
        const unsigned ar8 = __shfl_sync(0xffffffffu, a[2 * hi + 1], g * 4 + src);      // A[g+8][2kp..]
        const unsigned bc0 = __shfl_sync(0xffffffffu, b[hi], (2 * t) * 4 + src);        // B[2kp..][2t]
        const unsigned bc1 = __shfl_sync(0xffffffffu, b[hi], (2 * t + 1) * 4 + src);    // B[2kp..][2t+1]
        for (int e = 0; e < 2; ++e) {  // k = 2kp + e: bits 0..15 for e = 0, 16..31 for e = 1
            const float x0 = __uint_as_float(e == 0 ? ar0 << 16 : ar0 & 0xffff0000u);
            const float x8 = __uint_as_float(e == 0 ? ar8 << 16 : ar8 & 0xffff0000u);
            const float y0 = __uint_as_float(e == 0 ? bc0 << 16 : bc0 & 0xffff0000u);
            const float y1 = __uint_as_float(e == 0 ? bc1 << 16 : bc1 & 0xffff0000u);
            d0 = fmaf(x0, y0, d0);
            d1 = fmaf(x0, y1, d1);
            d2 = fmaf(x8, y0, d2);
            d3 = fmaf(x8, y1, d3);
        }
    }
    c[0] = d0;
    c[1] = d1;
    c[2] = d2;
    c[3] = d3;
#endif
}

// Two fp32 rounded to bf16 (nearest even, as rlsr_float_to_bf16), packed: lo in bits 0..15, hi in 16..31.
// cvt.rn.bf16x2.f32 d, a, b puts a in the upper half, so hi is its first source. NaN stays NaN (the bit pattern of
// the NaN may differ between the two branches).
__device__ __forceinline__ unsigned rlsr_pack_bf16x2(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
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
