// LayerNorm forward over rows of width D (BERT encoders), two-pass statistics as torch and the CPU backend.
//
// Shapes: x, out (R,D) fp32 or bf16 (raw bits); w, b (D) the same dtype.
//   mean[r] = sum_i x[r,i] / D,  var[r] = sum_i (x[r,i] - mean[r])^2 / D   (the deviations, not E[x^2] - E[x]^2,
//   which cancels for rows far from zero)
//   out[r,i] = (x[r,i] - mean[r]) * rstd[r] * w[i] + b[i],  rstd[r] = 1 / sqrt(var[r] + eps);  out may be x.
//
// Row groups as rmsnorm.cu: a warp per row for D <= 1024 (8 rows per 256-thread block), the block otherwise; 16-byte
// vectors when the arrays walked together share their offset from a 16-byte boundary. Passes 2 and 3 re-read the
// row the first pass read (L1/L2).

#include "rlsr_common.cuh"
#include "rlsr_rowvec.cuh"

#define LN_THREADS 256
#define LN_WARPS (LN_THREADS / 32)
#define LN_WARP_MAX_D 1024

// sum_i f(x_i) over the row by the group (f: identity or squared deviation from mean)
template <typename E, bool BLOCK, bool DEV>
__device__ __forceinline__ float ln_row_sum(const typename E::T* xr, int d, int head, int nvec, float mean, int t,
                                            int nt, float* red) {
    float s0 = 0.f, s1 = 0.f;
    if (t < head) {
        const float v = E::load(xr, t) - (DEV ? mean : 0.f);
        s0 = DEV ? v * v : v;
    }
    const uint4* vx = reinterpret_cast<const uint4*>(xr + head);
    for (int k = t; k < nvec; k += nt) {
        float f[E::PER16];
        E::unpack(vx[k], f);
#pragma unroll
        for (int j = 0; j < E::PER16; j += 2) {
            if (DEV) {
                const float a = f[j] - mean, b = f[j + 1] - mean;
                s0 = fmaf(a, a, s0);
                s1 = fmaf(b, b, s1);
            } else {
                s0 += f[j];
                s1 += f[j + 1];
            }
        }
    }
    for (int i = head + nvec * E::PER16 + t; i < d; i += nt) {
        const float v = E::load(xr, i) - (DEV ? mean : 0.f);
        s0 = DEV ? fmaf(v, v, s0) : s0 + v;
    }
    return rlsr_group_sum<BLOCK>(s0 + s1, red);
}

// x and out may alias (no __restrict__): the group's sums return only after every element was read, and pass 3
// reads and then writes each element in one thread.
template <typename E, bool BLOCK>
__device__ __forceinline__ void ln_row(const typename E::T* x, const typename E::T* __restrict__ w,
                                       const typename E::T* __restrict__ b, typename E::T* out, long long row, int d,
                                       float eps, int t, int nt, float* red) {
    typedef typename E::T T;
    const T* xr = x + row * d;
    T* orow = out + row * d;
    const int head = rlsr_head<E>(xr, d);
    const int nvec = (d - head) / E::PER16;
    const float mean = ln_row_sum<E, BLOCK, false>(xr, d, head, nvec, 0.f, t, nt, red) / (float) d;
    const float ss = ln_row_sum<E, BLOCK, true>(xr, d, head, nvec, mean, t, nt, red);
    const float rs = 1.f / sqrtf(ss / (float) d + eps);

    int done = 0;
    if (head == rlsr_head<E>(w, d) && head == rlsr_head<E>(b, d) && head == rlsr_head<E>(orow, d)) {
        if (t < head) E::store(orow, t, fmaf((E::load(xr, t) - mean) * rs, E::load(w, t), E::load(b, t)));
        const uint4* vx = reinterpret_cast<const uint4*>(xr + head);
        const uint4* vw = reinterpret_cast<const uint4*>(w + head);
        const uint4* vb = reinterpret_cast<const uint4*>(b + head);
        uint4* vo = reinterpret_cast<uint4*>(orow + head);
        for (int k = t; k < nvec; k += nt) {
            float f[E::PER16], g[E::PER16], c[E::PER16];
            E::unpack(vx[k], f);
            E::unpack(vw[k], g);
            E::unpack(vb[k], c);
#pragma unroll
            for (int j = 0; j < E::PER16; ++j) f[j] = fmaf((f[j] - mean) * rs, g[j], c[j]);
            vo[k] = E::pack(f);
        }
        done = head + nvec * E::PER16;
    }
    for (int i = done + t; i < d; i += nt) {
        E::store(orow, i, fmaf((E::load(xr, i) - mean) * rs, E::load(w, i), E::load(b, i)));
    }
}

template <typename E>
__device__ __forceinline__ void layernorm_forward(const typename E::T* x, const typename E::T* __restrict__ w,
                                                  const typename E::T* __restrict__ b, typename E::T* out, int rows,
                                                  int d, float eps) {
    __shared__ float red[32];
    if (d <= LN_WARP_MAX_D) {
        const long long row = (long long) blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
        if (row < rows) ln_row<E, false>(x, w, b, out, row, d, eps, threadIdx.x & 31, 32, red);
    } else {
        ln_row<E, true>(x, w, b, out, blockIdx.x, d, eps, threadIdx.x, blockDim.x, red);
    }
}

// launch: grid ceil(R/8) when D <= 1024, else R; block 256
extern "C" __global__ void __launch_bounds__(LN_THREADS)
layernorm_forward_f32_kernel(const float* x, const float* __restrict__ w, const float* __restrict__ b, float* out,
                             int rows, int d, float eps) {
    layernorm_forward<RlsrVecF32>(x, w, b, out, rows, d, eps);
}

extern "C" __global__ void __launch_bounds__(LN_THREADS)
layernorm_forward_bf16_kernel(const unsigned short* x, const unsigned short* __restrict__ w,
                              const unsigned short* __restrict__ b, unsigned short* out, int rows, int d, float eps) {
    layernorm_forward<RlsrVecBF16>(x, w, b, out, rows, d, eps);
}
