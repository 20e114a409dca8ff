// RMSNorm over rows of width D (the last dimension), as Qwen/Llama use it (weight only, no bias).
//
// Shapes: x, out, dout, dx (R,D) fp32 or bf16 (raw bits); w (D) the same dtype (the compute copy of the weight);
// rstd (R) fp32; dw (D) fp32; partials (P,D) fp32 scratch of the backward. R = numel/D: the hidden states (N,C),
// or the per-head q/k norms (N*H, head_dim), so D runs from 16 to 8192.
//   forward:  rstd[r] = 1 / sqrt(mean_i x[r,i]^2 + eps),  out[r,i] = w[i] * (x[r,i] * rstd[r])   (out may be x)
//   backward: k[r] = (sum_i w[i] dout[r,i] x[r,i]) * rstd[r]^3 / D
//             dx[r,i] (+)= rstd[r] w[i] dout[r,i] - k[r] x[r,i]   (overwritten, or accumulated: the residual add
//                                                                  fused into the backward; dx may be dout)
//             dw[i] += sum_r dout[r,i] x[r,i] rstd[r]             (deterministic, see below)
//
// Row groups: a row is read by G lanes of a warp, G = 8, 16 or 32 for D <= RN_WARP_MAX_D (the launcher picks the
// smallest G with at most one 16-byte vector per lane for short rows, so a 64-wide bf16 q/k-norm row keeps 8 lanes
// busy and a warp has 4 rows in flight; 256/G rows per 256-thread block), or by the whole block for longer rows.
// Each pass reads the row with 16-byte vectors when the arrays walked together share their offset from a 16-byte
// boundary (a scalar head first), else element by element. The second pass re-reads the row the first pass just read
// (L1/L2, not DRAM). Every lane of a warp runs the same number of row iterations (a lane whose row is past the end
// reads nothing), so the group sums' shuffles always have the full warp.
//
// dw is deterministic: block b of the backward owns rows [b*per, (b+1)*per) and sums their dw contributions in row
// order into its own accumulator (shared memory: one per row group in group mode, one per block otherwise; for D above
// RN_SMEM_MAX_D its row of the partials buffer), writes them to partials[b,:], and rmsnorm_dw_reduce_kernel adds
// sum_b partials[b,i] (fixed order) into dw[i]. The number of partials P depends only on (R, D) (RmsNorm.java), so
// results repeat run to run and on any GPU.

#include "rlsr_common.cuh"
#include "rlsr_rowvec.cuh"

#define RN_THREADS 256
#define RN_WARP_MAX_D 1024
#define RN_SMEM_MAX_D 12288  // one fp32 accumulator row in the 48 KiB of dynamic shared memory a launch gets by default

// The sum over a row group: G lanes (xor shuffles stay inside aligned groups of G) or, for G = 0, the block.
// Every lane of the warp (every thread of the block) must call it.
template <int G>
__device__ __forceinline__ float rn_sum(float v, float* red) {
    if (G == 0) {
        v = rlsr_block_sum(v, red);
    } else {
#pragma unroll
        for (int off = G / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    }
    return v;
}

// ---------------------------------------------------------------- forward

// One row by a group of nt threads (t = this thread's index in it). x and out may alias (no __restrict__): every
// element is read by pass 1 before the group's sum returns, and pass 2 reads and then writes each element in one
// thread.
// valid = false: a lane of a group past the last row, which only joins the group sum.
template <typename E, int G>
__device__ __forceinline__ void rn_forward_row(const typename E::T* x, const typename E::T* __restrict__ w,
                                               typename E::T* out, float* __restrict__ rstd, long long row, int dim,
                                               float eps, int t, int nt, bool valid, float* red) {
    typedef typename E::T T;
    const int d = valid ? dim : 0;
    const T* xr = x + row * dim;
    T* orow = out + row * dim;

    float ss = 0.f;
    const int head = rlsr_head<E>(xr, d);
    if (t < head) {
        const float v = E::load(xr, t);
        ss = v * v;
    }
    const uint4* vx = reinterpret_cast<const uint4*>(xr + head);
    const int nvec = (d - head) / E::PER16;
    for (int k = t; k < nvec; k += nt) {
        float f[E::PER16];
        E::unpack(vx[k], f);
#pragma unroll
        for (int j = 0; j < E::PER16; ++j) ss = fmaf(f[j], f[j], ss);
    }
    const int tail = head + nvec * E::PER16;
    for (int i = tail + t; i < d; i += nt) {
        const float v = E::load(xr, i);
        ss = fmaf(v, v, ss);
    }
    ss = rn_sum<G>(ss, red);
    if (!valid) return;
    // as the CPU: the mean in fp32, + eps in fp32, then a correctly rounded 1/sqrt
    const float rs = 1.f / sqrtf(ss / (float) d + eps);
    if (t == 0) rstd[row] = rs;

    int done = 0;
    if (head == rlsr_head<E>(w, d) && head == rlsr_head<E>(orow, d)) {
        if (t < head) E::store(orow, t, E::load(w, t) * (E::load(xr, t) * rs));
        const uint4* vw = reinterpret_cast<const uint4*>(w + head);
        uint4* vo = reinterpret_cast<uint4*>(orow + head);
        for (int k = t; k < nvec; k += nt) {
            float f[E::PER16], g[E::PER16];
            E::unpack(vx[k], f);
            E::unpack(vw[k], g);
#pragma unroll
            for (int j = 0; j < E::PER16; ++j) f[j] = g[j] * (f[j] * rs);
            vo[k] = E::pack(f);
        }
        done = tail;
    }
    for (int i = done + t; i < d; i += nt) E::store(orow, i, E::load(w, i) * (E::load(xr, i) * rs));
}

// group mode: grid ceil(R / (256/G)), row blockIdx * (256/G) + threadIdx / G
template <typename E, int G>
__device__ __forceinline__ void rn_forward_groups(const typename E::T* x, const typename E::T* __restrict__ w,
                                                  typename E::T* out, float* __restrict__ rstd, int rows, int d,
                                                  float eps) {
    const long long row = (long long) blockIdx.x * (RN_THREADS / G) + threadIdx.x / G;
    const bool valid = row < rows;
    rn_forward_row<E, G>(x, w, out, rstd, valid ? row : 0, d, eps, threadIdx.x % G, G, valid, nullptr);
}

template <typename E>
__device__ __forceinline__ void rmsnorm_forward(const typename E::T* x, const typename E::T* __restrict__ w,
                                                typename E::T* out, float* __restrict__ rstd, int rows, int d,
                                                float eps, int lanes) {
    __shared__ float red[32];
    switch (lanes) {
        case 8: rn_forward_groups<E, 8>(x, w, out, rstd, rows, d, eps); break;
        case 16: rn_forward_groups<E, 16>(x, w, out, rstd, rows, d, eps); break;
        case 32: rn_forward_groups<E, 32>(x, w, out, rstd, rows, d, eps); break;
        default:  // block mode: grid R
            rn_forward_row<E, 0>(x, w, out, rstd, blockIdx.x, d, eps, threadIdx.x, blockDim.x, true, red);
    }
}

// ---------------------------------------------------------------- backward

// a[j] += g[j] f[j] rs for j < K; 16-byte shared-memory accesses when a is 16-byte aligned (conflict-free for fp32
// rows: lane l touches bytes 16l..16l+15), else one float at a time.
template <int K>
__device__ __forceinline__ void rn_acc_add(float* a, const float* g, const float* f, float rs, bool vec) {
    if (vec) {
        float4* a4 = reinterpret_cast<float4*>(a);
#pragma unroll
        for (int q = 0; q < K / 4; ++q) {
            float4 v = a4[q];
            v.x = fmaf(g[4 * q] * f[4 * q], rs, v.x);
            v.y = fmaf(g[4 * q + 1] * f[4 * q + 1], rs, v.y);
            v.z = fmaf(g[4 * q + 2] * f[4 * q + 2], rs, v.z);
            v.w = fmaf(g[4 * q + 3] * f[4 * q + 3], rs, v.w);
            a4[q] = v;
        }
    } else {
#pragma unroll
        for (int j = 0; j < K; ++j) a[j] = fmaf(g[j] * f[j], rs, a[j]);
    }
}

// One row by a group; acc (D) is the group's dw accumulator. dout and dx may alias: pass 1 reads every element
// before the group sum, pass 2 reads and then writes each element in one thread.
template <typename E, int G>
__device__ __forceinline__ void rn_backward_row(const typename E::T* dout, const typename E::T* x,
                                                const typename E::T* __restrict__ w, float rs, typename E::T* dx,
                                                float* acc, bool accumulate, long long row, int dim, int t, int nt,
                                                bool valid, float* red) {
    typedef typename E::T T;
    const int d = valid ? dim : 0;
    const T* gr = dout + row * dim;
    const T* xr = x + row * dim;
    T* dr = dx + row * dim;

    // pass 1: sum_i w_i g_i x_i
    const int head = rlsr_head<E>(xr, d);
    const bool vec_in = head == rlsr_head<E>(gr, d) && head == rlsr_head<E>(w, d);
    const int nvec = (d - head) / E::PER16;
    const int tail = head + nvec * E::PER16;
    float s = 0.f;
    int done = 0;
    if (vec_in) {
        if (t < head) s = E::load(w, t) * (E::load(gr, t) * E::load(xr, t));
        const uint4* vg = reinterpret_cast<const uint4*>(gr + head);
        const uint4* vx = reinterpret_cast<const uint4*>(xr + head);
        const uint4* vw = reinterpret_cast<const uint4*>(w + head);
        for (int k = t; k < nvec; k += nt) {
            float g[E::PER16], f[E::PER16], ww[E::PER16];
            E::unpack(vg[k], g);
            E::unpack(vx[k], f);
            E::unpack(vw[k], ww);
#pragma unroll
            for (int j = 0; j < E::PER16; ++j) s = fmaf(g[j] * f[j], ww[j], s);
        }
        done = tail;
    }
    for (int i = done + t; i < d; i += nt) s = fmaf(E::load(gr, i) * E::load(xr, i), E::load(w, i), s);
    s = rn_sum<G>(s, red);
    if (!valid) return;
    const float k = s * rs * rs * rs / (float) d;  // the CPU's order

    // pass 2: dx and the dw contributions
    done = 0;
    if (vec_in && head == rlsr_head<E>(dr, d)) {
        if (t < head) {
            const float g = E::load(gr, t), f = E::load(xr, t);
            float v = rs * E::load(w, t) * g - k * f;
            if (accumulate) v += E::load(dr, t);
            E::store(dr, t, v);
            acc[t] = fmaf(g * f, rs, acc[t]);
        }
        const uint4* vg = reinterpret_cast<const uint4*>(gr + head);
        const uint4* vx = reinterpret_cast<const uint4*>(xr + head);
        const uint4* vw = reinterpret_cast<const uint4*>(w + head);
        uint4* vd = reinterpret_cast<uint4*>(dr + head);
        const bool acc_vec = (((unsigned long long) (acc + head)) & 15ull) == 0;
        for (int kk = t; kk < nvec; kk += nt) {
            float g[E::PER16], f[E::PER16], ww[E::PER16], o[E::PER16];
            E::unpack(vg[kk], g);
            E::unpack(vx[kk], f);
            E::unpack(vw[kk], ww);
            if (accumulate) E::unpack(vd[kk], o);
#pragma unroll
            for (int j = 0; j < E::PER16; ++j) {
                const float v = rs * ww[j] * g[j] - k * f[j];
                o[j] = accumulate ? o[j] + v : v;
            }
            vd[kk] = E::pack(o);
            rn_acc_add<E::PER16>(acc + head + kk * E::PER16, g, f, rs, acc_vec);
        }
        done = tail;
    }
    for (int i = done + t; i < d; i += nt) {
        const float g = E::load(gr, i), f = E::load(xr, i);
        float v = rs * E::load(w, i) * g - k * f;
        if (accumulate) v += E::load(dr, i);
        E::store(dr, i, v);
        acc[i] = fmaf(g * f, rs, acc[i]);
    }
}

// group mode: group q = threadIdx / G of the block's 256/G groups owns rows r0+q, r0+q+256/G, ... and the
// accumulator smem[q*D, (q+1)*D); every lane runs ceil((r1-r0) / (256/G)) iterations (see the file comment).
template <typename E, int G>
__device__ __forceinline__ void rn_backward_groups(const typename E::T* dout, const typename E::T* x,
                                                   const typename E::T* __restrict__ w, const float* __restrict__ rstd,
                                                   typename E::T* dx, float* part, long long r0, long long r1, int d,
                                                   bool accumulate, float* smem) {
    constexpr int NG = RN_THREADS / G;
    const int q = threadIdx.x / G, t = threadIdx.x % G;
    float* acc = smem + q * d;
    for (int i = t; i < d; i += G) acc[i] = 0.f;
    __syncwarp();
    // the element -> lane map changes between rows whose heads differ, so the warp synchronises (memory included)
    // after each row before another lane touches the same acc[i]
    const long long iters = (r1 - r0 + NG - 1) / NG;
    for (long long k = 0; k < iters; ++k) {
        const long long row = r0 + q + k * NG;
        const bool valid = row < r1;
        rn_backward_row<E, G>(dout, x, w, valid ? rstd[row] : 0.f, dx, acc, accumulate, valid ? row : 0, d, t, G,
                              valid, nullptr);
        __syncwarp();
    }
    __syncthreads();
    // the block's partial: the groups' accumulators summed in group order
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float s = 0.f;
#pragma unroll 8
        for (int g = 0; g < NG; ++g) s += smem[g * d + i];
        part[i] = s;
    }
}

// grid P (the partials), block 256; dynamic shared memory: group mode (256/G)*D floats, block mode D floats when
// D <= RN_SMEM_MAX_D, else none (the accumulator is the block's row of partials).
template <typename E>
__device__ __forceinline__ void rmsnorm_backward(const typename E::T* dout, const typename E::T* x,
                                                 const typename E::T* __restrict__ w, const float* __restrict__ rstd,
                                                 typename E::T* dx, float* __restrict__ partials, int rows, int d,
                                                 int accumulate, int lanes) {
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    __shared__ float red[32];
    const int per = (rows + gridDim.x - 1) / gridDim.x;
    const long long r0 = (long long) blockIdx.x * per;
    const long long r1 = r0 + per < rows ? r0 + per : rows;
    float* part = partials + (long long) blockIdx.x * d;
    float* smem = reinterpret_cast<float*>(rlsr_smem);
    const bool acc_on = accumulate != 0;
    switch (lanes) {
        case 8: rn_backward_groups<E, 8>(dout, x, w, rstd, dx, part, r0, r1, d, acc_on, smem); return;
        case 16: rn_backward_groups<E, 16>(dout, x, w, rstd, dx, part, r0, r1, d, acc_on, smem); return;
        case 32: rn_backward_groups<E, 32>(dout, x, w, rstd, dx, part, r0, r1, d, acc_on, smem); return;
        default: break;
    }
    const bool in_smem = d <= RN_SMEM_MAX_D;
    float* acc = in_smem ? smem : part;
    for (int i = threadIdx.x; i < d; i += blockDim.x) acc[i] = 0.f;
    __syncthreads();
    // the group sum inside each row is a block barrier: it also orders one row's acc updates before the next's
    for (long long row = r0; row < r1; ++row) {
        rn_backward_row<E, 0>(dout, x, w, rstd[row], dx, acc, acc_on, row, d, threadIdx.x, blockDim.x, true, red);
    }
    if (in_smem) {
        __syncthreads();
        for (int i = threadIdx.x; i < d; i += blockDim.x) part[i] = acc[i];
    }
}

// ---------------------------------------------------------------- kernels

// lanes: G = 8, 16 or 32 lanes per row (D <= 1024; grid ceil(R / (256/G))), or 0: a block per row (grid R);
// block 256
extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_forward_f32_kernel(const float* x, const float* __restrict__ w, float* out, float* __restrict__ rstd, int rows,
                           int d, float eps, int lanes) {
    rmsnorm_forward<RlsrVecF32>(x, w, out, rstd, rows, d, eps, lanes);
}

extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_forward_bf16_kernel(const unsigned short* x, const unsigned short* __restrict__ w, unsigned short* out,
                            float* __restrict__ rstd, int rows, int d, float eps, int lanes) {
    rmsnorm_forward<RlsrVecBF16>(x, w, out, rstd, rows, d, eps, lanes);
}

// launch: grid P, block 256, lanes as the forward, dynamic shared memory as rmsnorm_backward says; then
// rmsnorm_dw_reduce_kernel
extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_backward_f32_kernel(const float* dout, const float* x, const float* __restrict__ w,
                            const float* __restrict__ rstd, float* dx, float* __restrict__ partials, int rows, int d,
                            int accumulate, int lanes) {
    rmsnorm_backward<RlsrVecF32>(dout, x, w, rstd, dx, partials, rows, d, accumulate, lanes);
}

extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_backward_bf16_kernel(const unsigned short* dout, const unsigned short* x, const unsigned short* __restrict__ w,
                             const float* __restrict__ rstd, unsigned short* dx, float* __restrict__ partials,
                             int rows, int d, int accumulate, int lanes) {
    rmsnorm_backward<RlsrVecBF16>(dout, x, w, rstd, dx, partials, rows, d, accumulate, lanes);
}

// dw[i] += sum_{b < parts} partials[b,i], b in a fixed order: thread (y = tid/32, c = 32*blockIdx + tid%32) sums
// b = y, y+32, ... in order, then row 0 of the block adds the 32 column sums in y order.
// launch: grid ceil(D/32), block 1024
extern "C" __global__ void __launch_bounds__(1024)
rmsnorm_dw_reduce_kernel(const float* __restrict__ partials, float* __restrict__ dw, int parts, int d) {
    __shared__ float s[32][32];
    const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    const int c = blockIdx.x * 32 + tx;
    float v = 0.f;
    if (c < d) {
        for (int p = ty; p < parts; p += 32) v += partials[(long long) p * d + c];
    }
    s[ty][tx] = v;
    __syncthreads();
    if (ty == 0 && c < d) {
        float total = 0.f;
#pragma unroll
        for (int y = 0; y < 32; ++y) total += s[y][tx];
        dw[c] += total;
    }
}
