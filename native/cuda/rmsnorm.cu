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
// Row groups: a row of D <= RN_WARP_MAX_D is one warp's (8 rows per 256-thread block), a longer row the whole block's,
// so short rows do not leave 7/8 of a block idle and long rows get 256 threads. Each pass reads the row with 16-byte
// vectors when the arrays walked together share their offset from a 16-byte boundary (a scalar head first), else
// element by element. The second pass re-reads the row the first pass just read (L1/L2, not DRAM).
//
// dw is deterministic: block b of the backward owns rows [b*per, (b+1)*per) and sums their dw contributions in row
// order into its own accumulator (shared memory: one per warp in warp mode, one per block otherwise; for D above
// RN_SMEM_MAX_D its row of the partials buffer), writes them to partials[b,:], and rmsnorm_dw_reduce_kernel adds
// sum_b partials[b,i] (fixed order) into dw[i]. The number of partials P depends only on (R, D) (RmsNorm.java), so
// results repeat run to run and on any GPU.

#include "rlsr_common.cuh"
#include "rlsr_rowvec.cuh"

#define RN_THREADS 256
#define RN_WARPS (RN_THREADS / 32)
#define RN_WARP_MAX_D 1024
#define RN_SMEM_MAX_D 12288  // one fp32 accumulator row in the 48 KiB of dynamic shared memory a launch gets by default

// ---------------------------------------------------------------- forward

// One row by a group of nt threads (t = this thread's index in it). x and out may alias (no __restrict__): every
// element is read by pass 1 before the group's sum returns, and pass 2 reads and then writes each element in one
// thread.
template <typename E, bool BLOCK>
__device__ __forceinline__ void rn_forward_row(const typename E::T* x, const typename E::T* __restrict__ w,
                                               typename E::T* out, float* __restrict__ rstd, long long row, int d,
                                               float eps, int t, int nt, float* red) {
    typedef typename E::T T;
    const T* xr = x + row * d;
    T* orow = out + row * d;

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
    ss = rlsr_group_sum<BLOCK>(ss, red);
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

template <typename E>
__device__ __forceinline__ void rmsnorm_forward(const typename E::T* x, const typename E::T* __restrict__ w,
                                                typename E::T* out, float* __restrict__ rstd, int rows, int d,
                                                float eps) {
    __shared__ float red[32];
    if (d <= RN_WARP_MAX_D) {
        // warp mode: grid ceil(R / 8); a warp past the last row has no barrier to meet and just leaves
        const long long row = (long long) blockIdx.x * RN_WARPS + (threadIdx.x >> 5);
        if (row < rows) rn_forward_row<E, false>(x, w, out, rstd, row, d, eps, threadIdx.x & 31, 32, red);
    } else {
        // block mode: grid R
        rn_forward_row<E, true>(x, w, out, rstd, blockIdx.x, d, eps, threadIdx.x, blockDim.x, red);
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
template <typename E, bool BLOCK>
__device__ __forceinline__ void rn_backward_row(const typename E::T* dout, const typename E::T* x,
                                                const typename E::T* __restrict__ w, float rs, typename E::T* dx,
                                                float* acc, bool accumulate, long long row, int d, int t, int nt,
                                                float* red) {
    typedef typename E::T T;
    const T* gr = dout + row * d;
    const T* xr = x + row * d;
    T* dr = dx + row * d;

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
    s = rlsr_group_sum<BLOCK>(s, red);
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

// grid P (the partials), block 256; dynamic shared memory: warp mode 8*D floats, block mode D floats when
// D <= RN_SMEM_MAX_D, else none (the accumulator is the block's row of partials).
template <typename E>
__device__ __forceinline__ void rmsnorm_backward(const typename E::T* dout, const typename E::T* x,
                                                 const typename E::T* __restrict__ w, const float* __restrict__ rstd,
                                                 typename E::T* dx, float* __restrict__ partials, int rows, int d,
                                                 int accumulate) {
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    __shared__ float red[32];
    const bool warp_mode = d <= RN_WARP_MAX_D;
    const int per = (rows + gridDim.x - 1) / gridDim.x;
    const long long r0 = (long long) blockIdx.x * per;
    const long long r1 = r0 + per < rows ? r0 + per : rows;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float* part = partials + (long long) blockIdx.x * d;
    float* acc;
    if (warp_mode) {
        acc = reinterpret_cast<float*>(rlsr_smem) + warp * d;
        for (int i = lane; i < d; i += 32) acc[i] = 0.f;
        __syncwarp();
        // rows r0+warp, r0+warp+8, ...: the element -> lane map changes between rows whose heads differ, so the
        // warp synchronises (memory included) after each row before another lane touches the same acc[i]
        for (long long row = r0 + warp; row < r1; row += RN_WARPS) {
            rn_backward_row<E, false>(dout, x, w, rstd[row], dx, acc, accumulate != 0, row, d, lane, 32, red);
            __syncwarp();
        }
        __syncthreads();
        // the block's partial: the warps' accumulators summed in warp order
        for (int i = threadIdx.x; i < d; i += blockDim.x) {
            const float* a = reinterpret_cast<const float*>(rlsr_smem) + i;
            float s = 0.f;
#pragma unroll
            for (int q = 0; q < RN_WARPS; ++q) s += a[q * d];
            part[i] = s;
        }
    } else {
        const bool smem = d <= RN_SMEM_MAX_D;
        acc = smem ? reinterpret_cast<float*>(rlsr_smem) : part;
        for (int i = threadIdx.x; i < d; i += blockDim.x) acc[i] = 0.f;
        __syncthreads();
        // the group sum inside each row is a block barrier: it also orders one row's acc updates before the next's
        for (long long row = r0; row < r1; ++row) {
            rn_backward_row<E, true>(dout, x, w, rstd[row], dx, acc, accumulate != 0, row, d, threadIdx.x, blockDim.x,
                                     red);
        }
        if (smem) {
            __syncthreads();
            for (int i = threadIdx.x; i < d; i += blockDim.x) part[i] = acc[i];
        }
    }
}

// ---------------------------------------------------------------- kernels

// launch: grid ceil(R/8) when D <= 1024, else R; block 256
extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_forward_f32_kernel(const float* x, const float* __restrict__ w, float* out, float* __restrict__ rstd, int rows,
                           int d, float eps) {
    rmsnorm_forward<RlsrVecF32>(x, w, out, rstd, rows, d, eps);
}

extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_forward_bf16_kernel(const unsigned short* x, const unsigned short* __restrict__ w, unsigned short* out,
                            float* __restrict__ rstd, int rows, int d, float eps) {
    rmsnorm_forward<RlsrVecBF16>(x, w, out, rstd, rows, d, eps);
}

// launch: grid P, block 256, dynamic shared memory as rmsnorm_backward says; then rmsnorm_dw_reduce_kernel
extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_backward_f32_kernel(const float* dout, const float* x, const float* __restrict__ w,
                            const float* __restrict__ rstd, float* dx, float* __restrict__ partials, int rows, int d,
                            int accumulate) {
    rmsnorm_backward<RlsrVecF32>(dout, x, w, rstd, dx, partials, rows, d, accumulate);
}

extern "C" __global__ void __launch_bounds__(RN_THREADS)
rmsnorm_backward_bf16_kernel(const unsigned short* dout, const unsigned short* x, const unsigned short* __restrict__ w,
                             const float* __restrict__ rstd, unsigned short* dx, float* __restrict__ partials,
                             int rows, int d, int accumulate) {
    rmsnorm_backward<RlsrVecBF16>(dout, x, w, rstd, dx, partials, rows, d, accumulate);
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
