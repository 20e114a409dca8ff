// Row-wise argmax: x (R,W) fp32 or bf16, row stride W -> out (R) int32.
//
// torch semantics (CpuBackend.argmaxRows is the reference): the first index of the largest value; NaN is larger
// than any number, so the first NaN of a row wins; -0 and +0 are equal (the first wins). A row of -inf gives 0.
//
// One 512-thread block per row (greedy decoding reads a few rows of V = 152k logits: few blocks, so each keeps 32 KB
// of loads in flight): each thread scans its elements in increasing index order keeping (best value, best index),
// so a plain "strictly better" test keeps the first index; then warp shuffles and one shared-memory step merge the
// candidates with an explicit tie-break on the index.
// 16-byte loads (4 fp32 or 8 bf16), four in flight per thread; rows whose start is not 16-byte aligned (odd W)
// take a scalar head and tail.
#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

#define AM_THREADS 512
#define AM_WARPS (AM_THREADS / 32)
#define AM_UNROLL 4

// (v, i) replaces the running (bv, bi) of a scan in increasing index order: bi < 0 is "nothing yet".
__device__ __forceinline__ void am_scan(float& bv, int& bi, float v, int i) {
    if (bi < 0 || v > bv || (isnan(v) && !isnan(bv))) {
        bv = v;
        bi = i;
    }
}

// True when candidate (v, i) beats (bv, bi), in any order of arrival: NaN first, then the larger value, then the
// smaller index.
__device__ __forceinline__ bool am_better(float v, int i, float bv, int bi) {
    if (i < 0) return false;
    if (bi < 0) return true;
    const bool n = isnan(v), bn = isnan(bv);
    if (n || bn) return n && (!bn || i < bi);
    return v > bv || (v == bv && i < bi);
}

__device__ __forceinline__ void am_merge_warp(float& bv, int& bi) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, bv, off);
        const int i = __shfl_xor_sync(0xffffffffu, bi, off);
        if (am_better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
}

template <typename A>
__device__ __forceinline__ void argmax_row(const typename A::T* __restrict__ x, int rows, int w, int* __restrict__ out) {
    typedef typename A::T T;
    __shared__ float sm_v[AM_WARPS];
    __shared__ int sm_i[AM_WARPS];
    const long long row = blockIdx.x;
    if (row >= rows) return;  // uniform across the block
    const T* __restrict__ xr = x + row * (long long) w;
    float bv = 0.f;
    int bi = -1;

    const int head = (int) rlsr_head16(xr, sizeof(T), w);
    if ((int) threadIdx.x < head) am_scan(bv, bi, A::load(xr, threadIdx.x), threadIdx.x);
    const uint4* __restrict__ vx = reinterpret_cast<const uint4*>(xr + head);
    const int nvec = (w - head) / A::PER16;
    int k = threadIdx.x;
    for (; k + (AM_UNROLL - 1) * AM_THREADS < nvec; k += AM_UNROLL * AM_THREADS) {
        uint4 r[AM_UNROLL];
#pragma unroll
        for (int u = 0; u < AM_UNROLL; ++u) r[u] = __ldg(vx + k + u * AM_THREADS);
#pragma unroll
        for (int u = 0; u < AM_UNROLL; ++u) {
            float f[A::PER16];
            A::unpack(r[u], f);
            const int base = head + (k + u * AM_THREADS) * A::PER16;
#pragma unroll
            for (int j = 0; j < A::PER16; ++j) am_scan(bv, bi, f[j], base + j);
        }
    }
    for (; k < nvec; k += AM_THREADS) {
        float f[A::PER16];
        A::unpack(__ldg(vx + k), f);
        const int base = head + k * A::PER16;
#pragma unroll
        for (int j = 0; j < A::PER16; ++j) am_scan(bv, bi, f[j], base + j);
    }
    for (int i = head + nvec * A::PER16 + threadIdx.x; i < w; i += AM_THREADS) am_scan(bv, bi, A::load(xr, i), i);

    am_merge_warp(bv, bi);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) {
        sm_v[warp] = bv;
        sm_i[warp] = bi;
    }
    __syncthreads();
    if (warp == 0) {
        bv = lane < AM_WARPS ? sm_v[lane] : 0.f;
        bi = lane < AM_WARPS ? sm_i[lane] : -1;
        am_merge_warp(bv, bi);
        if (lane == 0) out[row] = bi;
    }
}

// launch: grid R, block 512
extern "C" __global__ void __launch_bounds__(AM_THREADS)
argmax_f32_kernel(const float* __restrict__ x, int rows, int w, int* __restrict__ out) {
    argmax_row<RlsrVecF32>(x, rows, w, out);
}

extern "C" __global__ void __launch_bounds__(AM_THREADS)
argmax_bf16_kernel(const unsigned short* __restrict__ x, int rows, int w, int* __restrict__ out) {
    argmax_row<RlsrVecBF16>(x, rows, w, out);
}
