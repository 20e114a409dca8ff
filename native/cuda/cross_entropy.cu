// Fused cross entropy over the vocabulary, without materialising softmax.
//
// Shapes: logits, dlogits (N,V) fp32 or bf16 (raw bits), row stride V; targets (N) int32; row_loss (N) fp32;
// loss_sum (1) fp32.
//   row_loss[n]  = lse[n] - logits[n,t]        with lse[n] = logsumexp_v logits[n,v], t = targets[n]
//   dlogits[n,v] = grad_scale * (softmax(logits[n])[v] - onehot(t)[v])     (in place over the logits allowed)
//   loss_sum    += sum_n row_loss[n]           (cross_entropy_loss_sum_kernel: one block, fixed order)
// Ignore index: a target < 0 gives row_loss 0 and an all-zero gradient row, without reading the logits. A target >= V
// cannot be checked on the host (targets are device data): row_loss becomes NaN (so does the sum) and its gradient
// row is grad_scale * softmax with no one-hot.
//
// One 256-thread block per row, two passes: (1) one read of the row with an online softmax (running max m and sum
// of 2^((x - m) log2 e) per thread, merged across the block), (2) a second read that writes the gradient. As in
// logprob_gather.cu: 16-byte loads (4 fp32 or 8 bf16), four in flight per thread, a scalar head and tail for rows
// that do not start on a 16-byte boundary (odd V), ex2.approx for the exponentials.

#include "rlsr_common.cuh"
#include "rlsr_rowvec.cuh"

#define CE_THREADS 256
#define CE_WARPS (CE_THREADS / 32)
#define CE_UNROLL 4
#define CE_LOG2E 1.4426950408889634f

// 2^x with the SFU's ex2.approx.ftz (see logprob_gather.cu); host builds (the emulator) use exp2f
__device__ __forceinline__ float ce_exp2(float x) {
#ifdef __CUDA_ARCH__
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

// (m, s): running max in logit units and sum of 2^((x - m) log2 e)
__device__ __forceinline__ void ce_add_one(float& m, float& s, float x) {
    if (x > m) {
        s = s * ce_exp2((m - x) * CE_LOG2E) + 1.f;  // m = -inf: s is 0 and 2^-inf = 0
        m = x;
    } else if (x != RLSR_NEG_INF) {  // -inf adds nothing (and -inf - -inf would be NaN); NaN still poisons s
        s += ce_exp2((x - m) * CE_LOG2E);
    }
}

template <int K>
__device__ __forceinline__ void ce_add_chunk(float& m, float& s, const float* f) {
    float cm = f[0];
#pragma unroll
    for (int j = 1; j < K; ++j) cm = fmaxf(cm, f[j]);
    const float nm = fmaxf(m, cm);
    if (nm == RLSR_NEG_INF) return;  // everything so far is -inf (masked): nothing to add
    const float nmc = nm * CE_LOG2E;
    float acc0 = 0.f, acc1 = 0.f;  // two chains so the adds do not serialise behind each exp2
#pragma unroll
    for (int j = 0; j < K; j += 2) {
        acc0 += ce_exp2(fmaf(f[j], CE_LOG2E, -nmc));
        acc1 += ce_exp2(fmaf(f[j + 1], CE_LOG2E, -nmc));
    }
    s = s * ce_exp2((m - nm) * CE_LOG2E) + (acc0 + acc1);
    m = nm;
}

__device__ __forceinline__ void ce_merge(float& m, float& s, float m2, float s2) {
    const float nm = fmaxf(m, m2);
    if (nm == RLSR_NEG_INF) return;  // both empty: s and s2 are 0
    s = s * ce_exp2((m - nm) * CE_LOG2E) + s2 * ce_exp2((m2 - nm) * CE_LOG2E);
    m = nm;
}

__device__ __forceinline__ void ce_warp_merge(float& m, float& s) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, off);
        ce_merge(m, s, m2, s2);
    }
}

template <typename E>
__device__ __forceinline__ void ce_zero_row(typename E::T* out, int v) {
    const int head = rlsr_head<E>(out, v);
    if ((int) threadIdx.x < head) E::store(out, threadIdx.x, 0.f);
    uint4* vo = reinterpret_cast<uint4*>(out + head);
    const int nvec = (v - head) / E::PER16;
    for (int k = threadIdx.x; k < nvec; k += CE_THREADS) vo[k] = make_uint4(0u, 0u, 0u, 0u);
    for (int i = head + nvec * E::PER16 + threadIdx.x; i < v; i += CE_THREADS) E::store(out, i, 0.f);
}

// f[j] = gs * 2^(f[j] log2 e - lse log2 e), minus gs at the target (relative index tv into this chunk's base)
template <int K>
__device__ __forceinline__ void ce_grad_chunk(float* f, float lse2, float gs, int base, int tv) {
#pragma unroll
    for (int j = 0; j < K; ++j) f[j] = ce_exp2(fmaf(f[j], CE_LOG2E, -lse2)) * gs;
    if (tv >= base && tv < base + K) {  // rare: an unrolled compare keeps f[] in registers
#pragma unroll
        for (int j = 0; j < K; ++j)
            if (base + j == tv) f[j] -= gs;
    }
}

// logits and dlogits may be the same buffer: no __restrict__ on them and plain (coherent) loads. Pass 1 reads the
// whole row before the block barrier; in pass 2 each element is read and then written by the same thread.
template <typename E>
__device__ __forceinline__ void cross_entropy_row(const typename E::T* logits, const int* __restrict__ targets,
                                                  float* __restrict__ row_loss, typename E::T* dlogits, int n, int v,
                                                  float gs) {
    typedef typename E::T T;
    __shared__ float sm_m[CE_WARPS];
    __shared__ float sm_s[CE_WARPS];
    __shared__ float sm_lse;
    const long long row = blockIdx.x;
    if (row >= n) return;  // uniform across the block: no barrier is skipped by part of it
    const T* x = logits + row * (long long) v;
    T* out = dlogits + row * (long long) v;
    const int t = targets[row];
    if (t < 0) {  // ignored row: zero loss, zero gradient, no read of the logits
        if (threadIdx.x == 0) row_loss[row] = 0.f;
        ce_zero_row<E>(out, v);
        return;
    }

    // ---- pass 1: online softmax
    float m = RLSR_NEG_INF, s = 0.f;
    const int head = rlsr_head<E>(x, v);
    if ((int) threadIdx.x < head) ce_add_one(m, s, E::load(x, threadIdx.x));
    const uint4* vx = reinterpret_cast<const uint4*>(x + head);
    const int nvec = (v - head) / E::PER16;
    int k = threadIdx.x;
    for (; k + (CE_UNROLL - 1) * CE_THREADS < nvec; k += CE_UNROLL * CE_THREADS) {
        uint4 r[CE_UNROLL];
#pragma unroll
        for (int u = 0; u < CE_UNROLL; ++u) r[u] = vx[k + u * CE_THREADS];
        float f[CE_UNROLL * E::PER16];
#pragma unroll
        for (int u = 0; u < CE_UNROLL; ++u) E::unpack(r[u], f + u * E::PER16);
        ce_add_chunk<CE_UNROLL * E::PER16>(m, s, f);
    }
    for (; k < nvec; k += CE_THREADS) {
        float f[E::PER16];
        E::unpack(vx[k], f);
        ce_add_chunk<E::PER16>(m, s, f);
    }
    const int tail = head + nvec * E::PER16;
    for (int i = tail + threadIdx.x; i < v; i += CE_THREADS) ce_add_one(m, s, E::load(x, i));

    ce_warp_merge(m, s);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) { sm_m[warp] = m; sm_s[warp] = s; }
    __syncthreads();
    if (warp == 0) {
        m = lane < CE_WARPS ? sm_m[lane] : RLSR_NEG_INF;
        s = lane < CE_WARPS ? sm_s[lane] : 0.f;
        ce_warp_merge(m, s);
        if (lane == 0) {
            const float lse = m + logf(s);
            sm_lse = lse;
            row_loss[row] = t < v ? lse - E::load(x, t) : RLSR_NAN;
        }
    }
    __syncthreads();
    const float lse2 = sm_lse * CE_LOG2E;

    // ---- pass 2: the gradient
    int done = 0;
    if (head == rlsr_head<E>(out, v)) {  // same offset from a 16-byte boundary: vector path
        if ((int) threadIdx.x < head) {
            const int i = threadIdx.x;
            const float p = ce_exp2(fmaf(E::load(x, i), CE_LOG2E, -lse2));
            E::store(out, i, p * gs - (i == t ? gs : 0.f));
        }
        uint4* vo = reinterpret_cast<uint4*>(out + head);
        const int tv = t - head;  // target relative to the first vector
        k = threadIdx.x;
        for (; k + (CE_UNROLL - 1) * CE_THREADS < nvec; k += CE_UNROLL * CE_THREADS) {
            uint4 r[CE_UNROLL];
#pragma unroll
            for (int u = 0; u < CE_UNROLL; ++u) r[u] = vx[k + u * CE_THREADS];
#pragma unroll
            for (int u = 0; u < CE_UNROLL; ++u) {
                float f[E::PER16];
                E::unpack(r[u], f);
                ce_grad_chunk<E::PER16>(f, lse2, gs, (k + u * CE_THREADS) * E::PER16, tv);
                vo[k + u * CE_THREADS] = E::pack(f);
            }
        }
        for (; k < nvec; k += CE_THREADS) {
            float f[E::PER16];
            E::unpack(vx[k], f);
            ce_grad_chunk<E::PER16>(f, lse2, gs, k * E::PER16, tv);
            vo[k] = E::pack(f);
        }
        done = tail;
    }
    for (int i = done + threadIdx.x; i < v; i += CE_THREADS) {
        const float p = ce_exp2(fmaf(E::load(x, i), CE_LOG2E, -lse2));
        E::store(out, i, p * gs - (i == t ? gs : 0.f));
    }
}

// launch: grid N, block 256
extern "C" __global__ void __launch_bounds__(CE_THREADS)
cross_entropy_f32_kernel(const float* logits, const int* __restrict__ targets, float* __restrict__ row_loss,
                         float* dlogits, int n, int v, float grad_scale) {
    cross_entropy_row<RlsrVecF32>(logits, targets, row_loss, dlogits, n, v, grad_scale);
}

extern "C" __global__ void __launch_bounds__(CE_THREADS)
cross_entropy_bf16_kernel(const unsigned short* logits, const int* __restrict__ targets, float* __restrict__ row_loss,
                          unsigned short* dlogits, int n, int v, float grad_scale) {
    cross_entropy_row<RlsrVecBF16>(logits, targets, row_loss, dlogits, n, v, grad_scale);
}

// loss_sum[0] += sum_n row_loss[n]: thread i sums rows i, i+1024, ... in order, then the block's fixed-shape tree.
// Deterministic (no atomics), so the loss repeats bit for bit. launch: grid 1, block 1024
extern "C" __global__ void __launch_bounds__(1024)
cross_entropy_loss_sum_kernel(const float* __restrict__ row_loss, float* __restrict__ loss_sum, int n) {
    __shared__ float red[32];
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += row_loss[i];
    s = rlsr_block_sum(s, red);
    if (threadIdx.x == 0) loss_sum[0] += s;
}
