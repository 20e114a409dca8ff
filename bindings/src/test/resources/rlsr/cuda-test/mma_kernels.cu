// Tensor-core kernels of MmaGpuTest: one warp computes D (16x8) = A (16x16) B (16x8) + C through rlsr_mma.cuh, with
// the fragments loaded three ways: straight from global memory by the PTX layout formulas, with ldmatrix, and with
// ldmatrix.trans. The test compares D with a double product, so the layouts are checked on a GPU and on the emulator.
#include "rlsr_mma.cuh"

// a (16,16) bf16 row-major; bt (8,16) bf16 row-major = B column-major; c, d (16,8) fp32 row-major; one warp
extern "C" __global__ void mma_fragments_kernel(const unsigned short* a, const unsigned short* bt, const float* c,
                                                float* d) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    unsigned ra[4], rb[2];
    float rc[4], rd[4];
    for (int r = 0; r < 4; ++r) {
        const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
        ra[r] = (unsigned) a[row * 16 + col] | ((unsigned) a[row * 16 + col + 1] << 16);
    }
    for (int r = 0; r < 2; ++r) {
        const int k = 2 * t + 8 * r;
        rb[r] = (unsigned) bt[g * 16 + k] | ((unsigned) bt[g * 16 + k + 1] << 16);
    }
    for (int i = 0; i < 4; ++i) rc[i] = c[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
    rlsr_mma_m16n8k16_bf16(rd, ra, rb, rc);
    for (int i = 0; i < 4; ++i) d[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = rd[i];
}

// Same product, fragments through shared memory: A with ldmatrix.x4; B with ldmatrix.x2 from B^T (trans = 0) or
// ldmatrix.x2.trans from B row-major (16,8) (trans = 1). b is B^T (8,16) when trans == 0, B (16,8) when trans == 1.
extern "C" __global__ void mma_ldmatrix_kernel(const unsigned short* a, const unsigned short* b, const float* c,
                                               float* d, int trans) {
    __shared__ __align__(16) unsigned short sa[16 * 16];
    __shared__ __align__(16) unsigned short sb[16 * 8];
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    for (int i = lane; i < 256; i += 32) sa[i] = a[i];
    for (int i = lane; i < 128; i += 32) sb[i] = b[i];
    __syncwarp();
    unsigned ra[4], rb[2];
    float rc[4], rd[4];
    // matrix m = lane / 8 of A: rows 8*(m & 1).., columns 8*(m >> 1)..; this lane gives its row lane % 8
    const int m = lane >> 3;
    rlsr_ldmatrix_x4(ra, &sa[((lane & 7) + 8 * (m & 1)) * 16 + 8 * (m >> 1)]);
    if (trans) {
        // matrix r of B (16,8) row-major: rows 8r..8r+7; lanes 0-15 give the row addresses
        rlsr_ldmatrix_x2_trans(rb, &sb[((lane & 15)) * 8]);
    } else {
        // matrix r of B^T (8,16) row-major: columns 8r..8r+7
        rlsr_ldmatrix_x2(rb, &sb[(lane & 7) * 16 + 8 * ((lane >> 3) & 1)]);
    }
    for (int i = 0; i < 4; ++i) rc[i] = c[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
    rlsr_mma_m16n8k16_bf16(rd, ra, rb, rc);
    for (int i = 0; i < 4; ++i) d[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = rd[i];
}
