// Sum of squares of one flat fp32 buffer (the gradient store, n up to and beyond 2^31 elements) and the global-norm
// clip scale of torch.nn.utils.clip_grad_norm_.
//
// Shapes: x (n) fp32; partials (P) fp64 scratch, P = gridDim of the first launch; sumsq (1) fp32; scale (1) fp32.
//   global_norm_partials_kernel: partials[b] = sum of x[i]^2 over block b's share (grid-stride over 16-byte vectors)
//   global_norm_finish_kernel:   sumsq = sum_b partials[b];  scale = min(1, max_norm / (sqrt(sumsq) + 1e-6)), or 1
//                                when max_norm <= 0 (no clipping), NaN when sumsq is (a non-finite gradient shows in
//                                the update instead of passing as "no clip"); scale may be null
// Deterministic: the share of each thread and block depends only on (n, P, the alignment of x), and every sum runs in
// a fixed order or a fixed-shape tree (no atomics). Squares are accumulated in double per thread and reduced in
// double: ~2000 terms per thread at n = 5e8 would cost fp32 a few 1e-6 relative, and the double adds are free in
// a kernel bound by memory bandwidth. sumsq is rounded to fp32 once, at the end.

#include "rlsr_common.cuh"

#define GN_THREADS 256
#define GN_FINISH_THREADS 1024
#define GN_UNROLL 4

// Sum over the block (blockDim.x a power of two, at most 1024) in a fixed tree; every thread gets the result.
// scratch: __shared__ double[blockDim.x] of the caller.
__device__ __forceinline__ double gn_block_sum(double v, double* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int h = blockDim.x >> 1; h > 0; h >>= 1) {
        if ((int) threadIdx.x < h) scratch[threadIdx.x] += scratch[threadIdx.x + h];
        __syncthreads();
    }
    const double s = scratch[0];
    __syncthreads();
    return s;
}

__device__ __forceinline__ double gn_sq4(const float4 v) {
    return (double) v.x * v.x + (double) v.y * v.y + (double) v.z * v.z + (double) v.w * v.w;
}

// launch: grid P, block 256
extern "C" __global__ void __launch_bounds__(GN_THREADS)
global_norm_partials_kernel(const float* __restrict__ x, long long n, double* __restrict__ partials) {
    __shared__ double red[GN_THREADS];
    const long long tid = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long) gridDim.x * blockDim.x;
    // elements before the first 16-byte boundary, then whole float4 vectors, then the tail
    const unsigned int mis = (unsigned int) ((unsigned long long) x & 15ull);
    long long head = mis == 0 ? 0 : (16 - mis) / 4;
    if (head > n) head = n;
    const long long nvec = (n - head) / 4;
    double s0 = 0.0, s1 = 0.0;  // two chains: the double adds do not wait on each other
    if (tid < head) {
        const float v = x[tid];
        s0 = (double) v * v;
    }
    const float4* vx = reinterpret_cast<const float4*>(x + head);
    long long k = tid;
    for (; k + (GN_UNROLL - 1) * stride < nvec; k += GN_UNROLL * stride) {
        float4 r[GN_UNROLL];
#pragma unroll
        for (int u = 0; u < GN_UNROLL; ++u) r[u] = vx[k + u * stride];
#pragma unroll
        for (int u = 0; u < GN_UNROLL; u += 2) {
            s0 += gn_sq4(r[u]);
            s1 += gn_sq4(r[u + 1]);
        }
    }
    for (; k < nvec; k += stride) s0 += gn_sq4(vx[k]);
    const long long tail = head + nvec * 4 + tid;
    if (tail < n) {
        const float v = x[tail];
        s1 += (double) v * v;
    }
    const double s = gn_block_sum(s0 + s1, red);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// launch: grid 1, block 1024
extern "C" __global__ void __launch_bounds__(GN_FINISH_THREADS)
global_norm_finish_kernel(const double* __restrict__ partials, int parts, float* __restrict__ sumsq, float max_norm,
                          float* __restrict__ scale) {
    __shared__ double red[GN_FINISH_THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) s += partials[i];
    s = gn_block_sum(s, red);
    if (threadIdx.x == 0) {
        sumsq[0] = (float) s;
        if (scale != nullptr) {
            float c = 1.f;
            if (max_norm > 0.f) {
                // GradClip: norm = (float) sqrt(sumsq) in double; one Newton step in double from the fp32 root gives
                // the double root to ~1e-14, so the rounding to fp32 matches in all but the rarest ties
                double y = (double) sqrtf((float) s);
                if (y > 0.0 && isfinite(y)) y = 0.5 * (y + s / y);  // (inf + inf/inf would be NaN)
                const float norm = (float) y;
                const double coef = (double) max_norm / ((double) norm + 1e-6);
                if (coef != coef) c = RLSR_NAN;
                else if (coef < 1.0) c = (float) coef;
            }
            scale[0] = c;
        }
    }
}
