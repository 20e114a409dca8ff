// Sentence-embedding pooling of an encoder's output (BERT / sentence-transformers).
//
// mean pool: x (B,T,C) fp32 or bf16 (raw bits), mask (B,T) int32 or null (all tokens count), pooled (B,C) same dtype:
//   pooled[b,c] = sum_{t: mask[b,t] != 0} x[b,t,c] / max(count_b, 1e-9)      (sentence-transformers' clamp: a row with
//   no token pools to zeros, not NaN). Tokens are summed in t order in fp32: the CPU reference's order, bit for bit.
//   Block (b, tile) owns columns [256*tile, 256*tile+256) of batch row b; consecutive threads read consecutive columns.
// L2 normalise: x (R,W) in place, x[r,:] /= max(||x[r,:]||, eps)   (torch.nn.functional.normalize; a NaN norm stays
//   NaN as with clamp_min). Row groups as rmsnorm.cu: a warp per row for W <= 1024, else the block.

#include "rlsr_common.cuh"
#include "rlsr_rowvec.cuh"

#define PL_THREADS 256
#define PL_WARPS (PL_THREADS / 32)
#define PL_WARP_MAX_W 1024

template <typename E>
__device__ __forceinline__ void mean_pool(const typename E::T* __restrict__ x, const int* __restrict__ mask,
                                          typename E::T* __restrict__ pooled, int batch, int t_len, int c_len) {
    const int tiles = (c_len + PL_THREADS - 1) / PL_THREADS;
    const int b = blockIdx.x / tiles;
    const int c = (blockIdx.x % tiles) * PL_THREADS + threadIdx.x;
    if (b >= batch || c >= c_len) return;  // no barrier below
    const typename E::T* xb = x + (long long) b * t_len * c_len + c;
    float s = 0.f;
    int count = 0;
    for (int t = 0; t < t_len; ++t) {
        if (mask == nullptr || mask[(long long) b * t_len + t] != 0) {
            s += E::load(xb, (long long) t * c_len);
            ++count;
        }
    }
    // the CPU's (float) (1.0 / max(count, 1e-9)): the reciprocal rounded once, from double
    const float scale = (float) (1.0 / (count > 0 ? (double) count : 1e-9));
    E::store(pooled, (long long) b * c_len + c, s * scale);
}

// x is read and written: the group's sum returns only after every element was read, then each thread scales the
// elements it reads.
template <typename E, bool BLOCK>
__device__ __forceinline__ void l2_row(typename E::T* x, long long row, int w, float eps, int t, int nt, float* red) {
    typename E::T* xr = x + row * w;
    const int head = rlsr_head<E>(xr, w);
    const int nvec = (w - head) / E::PER16;
    float ss = 0.f;
    if (t < head) {
        const float v = E::load(xr, t);
        ss = v * v;
    }
    uint4* vx = reinterpret_cast<uint4*>(xr + head);
    for (int k = t; k < nvec; k += nt) {
        float f[E::PER16];
        E::unpack(vx[k], f);
#pragma unroll
        for (int j = 0; j < E::PER16; ++j) ss = fmaf(f[j], f[j], ss);
    }
    const int tail = head + nvec * E::PER16;
    for (int i = tail + t; i < w; i += nt) {
        const float v = E::load(xr, i);
        ss = fmaf(v, v, ss);
    }
    ss = rlsr_group_sum<BLOCK>(ss, red);
    const float norm = sqrtf(ss);
    const float scale = 1.f / ((norm != norm || norm > eps) ? norm : eps);
    if (t < head) E::store(xr, t, E::load(xr, t) * scale);
    for (int k = t; k < nvec; k += nt) {
        float f[E::PER16];
        E::unpack(vx[k], f);
#pragma unroll
        for (int j = 0; j < E::PER16; ++j) f[j] *= scale;
        vx[k] = E::pack(f);
    }
    for (int i = tail + t; i < w; i += nt) E::store(xr, i, E::load(xr, i) * scale);
}

template <typename E>
__device__ __forceinline__ void l2_normalize(typename E::T* x, int rows, int w, float eps) {
    __shared__ float red[32];
    if (w <= PL_WARP_MAX_W) {
        const long long row = (long long) blockIdx.x * PL_WARPS + (threadIdx.x >> 5);
        if (row < rows) l2_row<E, false>(x, row, w, eps, threadIdx.x & 31, 32, red);
    } else {
        l2_row<E, true>(x, blockIdx.x, w, eps, threadIdx.x, blockDim.x, red);
    }
}

// launch: grid B * ceil(C/256), block 256
extern "C" __global__ void __launch_bounds__(PL_THREADS)
mean_pool_f32_kernel(const float* __restrict__ x, const int* __restrict__ mask, float* __restrict__ pooled, int batch,
                     int t_len, int c_len) {
    mean_pool<RlsrVecF32>(x, mask, pooled, batch, t_len, c_len);
}

extern "C" __global__ void __launch_bounds__(PL_THREADS)
mean_pool_bf16_kernel(const unsigned short* __restrict__ x, const int* __restrict__ mask,
                      unsigned short* __restrict__ pooled, int batch, int t_len, int c_len) {
    mean_pool<RlsrVecBF16>(x, mask, pooled, batch, t_len, c_len);
}

// launch: grid ceil(R/8) when W <= 1024, else R; block 256
extern "C" __global__ void __launch_bounds__(PL_THREADS)
l2_normalize_f32_kernel(float* x, int rows, int w, float eps) {
    l2_normalize<RlsrVecF32>(x, rows, w, eps);
}

extern "C" __global__ void __launch_bounds__(PL_THREADS)
l2_normalize_bf16_kernel(unsigned short* x, int rows, int w, float eps) {
    l2_normalize<RlsrVecBF16>(x, rows, w, eps);
}
