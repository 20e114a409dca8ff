// Log-probability of the target token, without materialising softmax over the vocabulary.
//
// Shapes: logits (N,V) fp32 or bf16 (raw bits), row stride V; targets (N) int32; logp, lse, dlogp (N) fp32.
//   forward:  lse[n]  = logsumexp_v(logits[n,v] / T)
//             logp[n] = logits[n,targets[n]] / T - lse[n]
//   backward: dlogits[n,v] = dlogp[n] * d logp[n] / d logits[n,v]
//                          = (onehot(targets[n])[v] - softmax(logits[n]/T)[v]) * dlogp[n] / T
//             (the chain rule: dlogp is the upstream gradient dL/dlogp, so dL/dlogits = -(p - onehot) * dlogp / T),
//             from the saved lse, written in place over the logits or to another buffer of the same dtype.
// Ignore index: a target < 0 (e.g. -100) gives logp = 0 and an all-zero gradient row; lse is still computed.
// A target >= V cannot be checked on the host (it is device data): it gives logp = NaN so it cannot pass unseen.
//
// Forward is ONE pass over the logits: each thread keeps an online softmax (running max m, sum of
// exp((x - m)/T) rescaled whenever m grows), then the block merges the (m, sum) pairs. Exponentials are 2^y (ex2.approx)
// of x*log2(e)/T - m*log2(e)/T, one FFMA each. One 256-thread block per row; 16-byte loads (4 fp32 or 8 bf16),
// four in flight per thread. Rows whose start is not 16-byte aligned (odd V) take a scalar head and tail.
// Self-contained for NVRTC: no includes, no host code; bf16 is widened and narrowed with shifts.

#define LP_THREADS 256
#define LP_WARPS (LP_THREADS / 32)
#define LP_UNROLL 4
#define LP_LOG2E 1.4426950408889634f
#define LP_NEG_INF __uint_as_float(0xff800000u)
#define LP_NAN __uint_as_float(0x7fc00000u)

struct F32Elem {
    typedef float T;
    enum { PER16 = 4 };  // elements per 16-byte load
    static __device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
    static __device__ __forceinline__ void store(float* p, long long i, float f) { p[i] = f; }
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x); f[1] = __uint_as_float(v.y);
        f[2] = __uint_as_float(v.z); f[3] = __uint_as_float(v.w);
    }
    static __device__ __forceinline__ uint4 pack(const float* f) {
        return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]), __float_as_uint(f[3]));
    }
};

// fp32 -> bf16 with round-to-nearest-even (what torch and cuda_bf16.h do); NaN stays a quiet NaN
__device__ __forceinline__ unsigned int lp_bf16_bits(float f) {
    const unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// little endian: the lower half of a 32-bit word is the element at the lower address
struct Bf16Elem {
    typedef unsigned short T;
    enum { PER16 = 8 };  // elements per 16-byte load
    static __device__ __forceinline__ float load(const unsigned short* p, long long i) {
        return __uint_as_float(((unsigned int) p[i]) << 16);
    }
    static __device__ __forceinline__ void store(unsigned short* p, long long i, float f) {
        p[i] = (unsigned short) lp_bf16_bits(f);
    }
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x << 16); f[1] = __uint_as_float(v.x & 0xffff0000u);
        f[2] = __uint_as_float(v.y << 16); f[3] = __uint_as_float(v.y & 0xffff0000u);
        f[4] = __uint_as_float(v.z << 16); f[5] = __uint_as_float(v.z & 0xffff0000u);
        f[6] = __uint_as_float(v.w << 16); f[7] = __uint_as_float(v.w & 0xffff0000u);
    }
    static __device__ __forceinline__ uint4 pack(const float* f) {
        return make_uint4(lp_bf16_bits(f[0]) | (lp_bf16_bits(f[1]) << 16), lp_bf16_bits(f[2]) | (lp_bf16_bits(f[3]) << 16),
                          lp_bf16_bits(f[4]) | (lp_bf16_bits(f[5]) << 16), lp_bf16_bits(f[6]) | (lp_bf16_bits(f[7]) << 16));
    }
};

// Elements before the first 16-byte boundary of a row; rows of odd V start anywhere.
template <typename E>
__device__ __forceinline__ int lp_head(const void* row, int v) {
    const unsigned int mis = (unsigned int) ((unsigned long long) row & 15ull);
    const int head = mis == 0 ? 0 : (int) ((16u - mis) / sizeof(typename E::T));
    return head < v ? head : v;
}

// 2^x with the SFU's ex2.approx.ftz: exp2f adds a denormal-range fix-up (compare, two multiplies) per element,
// a third of the loop's instructions; flushing results below 2^-126 to 0 changes no sum or gradient that matters.
// Host builds (the CPU emulation test) have no PTX and use exp2f.
__device__ __forceinline__ float lp_exp2(float x) {
#ifdef __CUDA_ARCH__
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

// m is kept in logit units (T > 0 keeps the order); c = log2(e)/T.
__device__ __forceinline__ void lp_add_one(float& m, float& s, float x, float c) {
    if (x > m) {
        s = s * lp_exp2((m - x) * c) + 1.f;  // m = -inf: s is 0 and lp_exp2(-inf) = 0
        m = x;
    } else if (x != LP_NEG_INF) {  // -inf adds nothing (and -inf - -inf would be NaN); NaN still poisons s
        s += lp_exp2((x - m) * c);
    }
}

template <int K>
__device__ __forceinline__ void lp_add_chunk(float& m, float& s, const float* f, float c) {
    float cm = f[0];
#pragma unroll
    for (int j = 1; j < K; ++j) cm = fmaxf(cm, f[j]);
    const float nm = fmaxf(m, cm);
    if (nm == LP_NEG_INF) return;  // everything so far is -inf (masked): nothing to add
    const float nmc = nm * c;
    float acc0 = 0.f, acc1 = 0.f;  // two chains so the adds do not serialise behind each exp2
#pragma unroll
    for (int j = 0; j < K; j += 2) {
        acc0 += lp_exp2(fmaf(f[j], c, -nmc));
        acc1 += lp_exp2(fmaf(f[j + 1], c, -nmc));
    }
    s = s * lp_exp2((m - nm) * c) + (acc0 + acc1);
    m = nm;
}

__device__ __forceinline__ void lp_merge(float& m, float& s, float m2, float s2, float c) {
    const float nm = fmaxf(m, m2);
    if (nm == LP_NEG_INF) return;  // both empty: s and s2 are 0
    s = s * lp_exp2((m - nm) * c) + s2 * lp_exp2((m2 - nm) * c);
    m = nm;
}

template <typename E>
__device__ __forceinline__ void logprob_forward(const typename E::T* __restrict__ logits, const int* __restrict__ targets,
                                                float* __restrict__ logp, float* __restrict__ lse, int n, int v,
                                                float temperature) {
    typedef typename E::T T;
    __shared__ float sm_m[LP_WARPS];
    __shared__ float sm_s[LP_WARPS];
    const long long row = blockIdx.x;
    if (row >= n) return;  // uniform across the block: no barrier is skipped by part of it
    const float inv_t = 1.f / temperature;
    const float c = inv_t * LP_LOG2E;
    const T* __restrict__ x = logits + row * (long long) v;
    float m = LP_NEG_INF, s = 0.f;

    const int head = lp_head<E>(x, v);
    if ((int) threadIdx.x < head) lp_add_one(m, s, E::load(x, threadIdx.x), c);
    const uint4* __restrict__ vx = reinterpret_cast<const uint4*>(x + head);
    const int nvec = (v - head) / E::PER16;
    int k = threadIdx.x;
    for (; k + (LP_UNROLL - 1) * LP_THREADS < nvec; k += LP_UNROLL * LP_THREADS) {
        uint4 r[LP_UNROLL];
#pragma unroll
        for (int u = 0; u < LP_UNROLL; ++u) r[u] = __ldg(vx + k + u * LP_THREADS);
        float f[LP_UNROLL * E::PER16];
#pragma unroll
        for (int u = 0; u < LP_UNROLL; ++u) E::unpack(r[u], f + u * E::PER16);
        lp_add_chunk<LP_UNROLL * E::PER16>(m, s, f, c);
    }
    for (; k < nvec; k += LP_THREADS) {
        float f[E::PER16];
        E::unpack(__ldg(vx + k), f);
        lp_add_chunk<E::PER16>(m, s, f, c);
    }
    for (int i = head + nvec * E::PER16 + threadIdx.x; i < v; i += LP_THREADS) lp_add_one(m, s, E::load(x, i), c);

#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, off);
        lp_merge(m, s, m2, s2, c);
    }
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) { sm_m[warp] = m; sm_s[warp] = s; }
    __syncthreads();
    if (warp == 0) {
        m = lane < LP_WARPS ? sm_m[lane] : LP_NEG_INF;
        s = lane < LP_WARPS ? sm_s[lane] : 0.f;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
            const float s2 = __shfl_xor_sync(0xffffffffu, s, off);
            lp_merge(m, s, m2, s2, c);
        }
        if (lane == 0) {
            const float l = m * inv_t + logf(s);
            lse[row] = l;
            const int t = targets[row];
            logp[row] = t < 0 ? 0.f : (t >= v ? LP_NAN : E::load(x, t) * inv_t - l);
        }
    }
}

template <typename E>
__device__ __forceinline__ void lp_zero_row(typename E::T* out, int v) {
    const int head = lp_head<E>(out, v);
    if ((int) threadIdx.x < head) E::store(out, threadIdx.x, 0.f);
    uint4* vo = reinterpret_cast<uint4*>(out + head);
    const int nvec = (v - head) / E::PER16;
    for (int k = threadIdx.x; k < nvec; k += LP_THREADS) vo[k] = make_uint4(0u, 0u, 0u, 0u);
    for (int i = head + nvec * E::PER16 + threadIdx.x; i < v; i += LP_THREADS) E::store(out, i, 0.f);
}

// logits and dlogits may be the same buffer (in place): no __restrict__ on them and plain (coherent) loads,
// each element being read and then written by the same thread.
template <typename E>
__device__ __forceinline__ void logprob_backward(const typename E::T* logits, const int* __restrict__ targets,
                                                 const float* __restrict__ lse, const float* __restrict__ dlogp,
                                                 typename E::T* dlogits, int n, int v, float temperature) {
    typedef typename E::T T;
    const long long row = blockIdx.x;
    if (row >= n) return;
    const T* x = logits + row * (long long) v;
    T* out = dlogits + row * (long long) v;
    const int t = targets[row];
    if (t < 0) {  // ignored row: zero gradient without reading the logits
        lp_zero_row<E>(out, v);
        return;
    }
    const float inv_t = 1.f / temperature;
    const float c = inv_t * LP_LOG2E;
    const float lse2 = lse[row] * LP_LOG2E;
    // g = (p - onehot) * scale with scale = -dlogp/T is dlogp * (onehot - p) / T, the chain rule through logp
    const float scale = -dlogp[row] * inv_t;

    int done = 0;
    const int head = lp_head<E>(x, v);
    if (head == lp_head<E>(out, v)) {  // same offset from a 16-byte boundary: vector path
        if ((int) threadIdx.x < head) {
            const int i = threadIdx.x;
            const float p = lp_exp2(fmaf(E::load(x, i), c, -lse2));
            E::store(out, i, (p - (i == t ? 1.f : 0.f)) * scale);
        }
        const uint4* vx = reinterpret_cast<const uint4*>(x + head);
        uint4* vo = reinterpret_cast<uint4*>(out + head);
        const int nvec = (v - head) / E::PER16;
        const int tv = t - head;  // target relative to the first vector
        int k = threadIdx.x;
        for (; k + (LP_UNROLL - 1) * LP_THREADS < nvec; k += LP_UNROLL * LP_THREADS) {
            uint4 r[LP_UNROLL];
#pragma unroll
            for (int u = 0; u < LP_UNROLL; ++u) r[u] = vx[k + u * LP_THREADS];
#pragma unroll
            for (int u = 0; u < LP_UNROLL; ++u) {
                float f[E::PER16];
                E::unpack(r[u], f);
#pragma unroll
                for (int j = 0; j < E::PER16; ++j) f[j] = lp_exp2(fmaf(f[j], c, -lse2)) * scale;
                const int base = (k + u * LP_THREADS) * E::PER16;
                if (tv >= base && tv < base + E::PER16) {  // rare: unrolled compare keeps f[] in registers
#pragma unroll
                    for (int j = 0; j < E::PER16; ++j)
                        if (base + j == tv) f[j] -= scale;
                }
                vo[k + u * LP_THREADS] = E::pack(f);
            }
        }
        for (; k < nvec; k += LP_THREADS) {
            float f[E::PER16];
            E::unpack(vx[k], f);
#pragma unroll
            for (int j = 0; j < E::PER16; ++j) f[j] = lp_exp2(fmaf(f[j], c, -lse2)) * scale;
            const int base = k * E::PER16;
            if (tv >= base && tv < base + E::PER16) {
#pragma unroll
                for (int j = 0; j < E::PER16; ++j)
                    if (base + j == tv) f[j] -= scale;
            }
            vo[k] = E::pack(f);
        }
        done = head + nvec * E::PER16;
    }
    for (int i = done + threadIdx.x; i < v; i += LP_THREADS) {
        const float p = lp_exp2(fmaf(E::load(x, i), c, -lse2));
        E::store(out, i, (p - (i == t ? 1.f : 0.f)) * scale);
    }
}

// launch: gridDim N, blockDim 256
extern "C" __global__ void __launch_bounds__(LP_THREADS)
logprob_gather_f32_kernel(const float* __restrict__ logits, const int* __restrict__ targets, float* __restrict__ logp,
                          float* __restrict__ lse, int n, int v, float temperature) {
    logprob_forward<F32Elem>(logits, targets, logp, lse, n, v, temperature);
}

extern "C" __global__ void __launch_bounds__(LP_THREADS)
logprob_gather_bf16_kernel(const unsigned short* __restrict__ logits, const int* __restrict__ targets,
                           float* __restrict__ logp, float* __restrict__ lse, int n, int v, float temperature) {
    logprob_forward<Bf16Elem>(logits, targets, logp, lse, n, v, temperature);
}

extern "C" __global__ void __launch_bounds__(LP_THREADS)
logprob_gather_backward_f32_kernel(const float* logits, const int* __restrict__ targets, const float* __restrict__ lse,
                                   const float* __restrict__ dlogp, float* dlogits, int n, int v, float temperature) {
    logprob_backward<F32Elem>(logits, targets, lse, dlogp, dlogits, n, v, temperature);
}

extern "C" __global__ void __launch_bounds__(LP_THREADS)
logprob_gather_backward_bf16_kernel(const unsigned short* logits, const int* __restrict__ targets,
                                    const float* __restrict__ lse, const float* __restrict__ dlogp,
                                    unsigned short* dlogits, int n, int v, float temperature) {
    logprob_backward<Bf16Elem>(logits, targets, lse, dlogp, dlogits, n, v, temperature);
}
