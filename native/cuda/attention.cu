// Softmax attention with grouped-query heads: causal forward (training, prefill into a KV cache), decode against a
// KV cache (flash-decoding: key splits, then a combine), bidirectional forward (BERT), and the backward.
//
// Shapes (row-major; bf16 travels as raw unsigned short bits):
//   q, out, dout, dq (B, qLen, H*D);  k, v, dk, dv (B, kStride, Hkv*D), rows [0, kLen) valid;
//   lse (B, H, qLen) fp32;  key mask (B, kStride) int32, 1 = attend, 0 = padding, or null (all keys).
// Query i sits at key position qOffset + i and sees keys j <= qOffset + i, j < kLen, mask 1 (causal; the
// bidirectional variant drops the j <= qOffset + i condition). Query head h reads kv head h / (H / Hkv). A query row
// with no visible key outputs zeros and gets lse = +inf; the backward gives it no gradient. Everything accumulates
// in fp32; the probability matrix is never stored, the backward recomputes it from lse.
//
// Two kernel families. fp32 FMA ("SIMT", at_*): every dtype, and decode. Tensor cores (am_*, bf16 only, sm_80+
// mma.sync through rlsr_mma.cuh): forward, bidirectional and backward; the host picks them for bf16.
//
// Scores are kept in log2 units: scale*log2(e) is applied in fp32 (the SIMT kernels fold it into the staged fp32 Q
// or K tile, the tensor-core kernels into the fp32 accumulators), so a probability is one ex2 of (s - m) and
// lse = m*ln2 + ln(l) at the end.
//
// SIMT design, shared by the at_* kernels: 128 threads = 16 row groups (ty) x 8 lanes (tx). A thread owns RPT
// consecutive rows and the keys tx, tx+8, tx+16, tx+24 of a 32-key tile, so the row max and sums are 3 shuffles
// (xor 1, 2, 4) inside a warp. Tiles are staged in shared memory as fp32 (bf16 is widened once on load): Q/dO row
// tiles are read as float4 broadcasts (the 8 lanes of a quarter-warp share a row), K/V/Q tiles read across rows
// are padded by 4 floats so the 8 rows a quarter-warp reads fall in distinct banks, and P (or dS) goes through a
// key-major tile whose rows are read as float4 broadcasts by the second product (P·V, dS·K, ...). The thread that
// computes a row's probabilities also accumulates that row's output columns tx*4 + 32c (+0..3), so the online
// softmax rescale needs no exchange, and only a __syncwarp separates writing P from reading it (a row group's 8
// lanes are in one warp).
//
// Head dims: the kernels are instantiated for DMAX = 32, 64, 96, 128 (zero-padded up to DMAX in shared memory;
// any D <= DMAX works). Launch: blockDim 128, dynamic shared memory as given with each kernel (the host opts in
// above 48 KiB).

#include "rlsr_common.cuh"
#include "rlsr_mma.cuh"

#define AT_THREADS 128
#define AT_TX 8
#define AT_TY 16
#define AT_BK 32                  // keys per tile
#define AT_KPT (AT_BK / AT_TX)    // keys per thread in a tile
#define AT_LOG2E 1.4426950408889634f
#define AT_LN2 0.6931471805599453f

// 2^x with the SFU's ex2.approx.ftz (exp2f adds a denormal fix-up); ex2(-inf) = +0, which the masking relies on.
__device__ __forceinline__ float at_exp2(float x) {
#ifdef __CUDA_ARCH__
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

__device__ __forceinline__ float at_max8(float v) {  // max over the 8 lanes of a row group
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
}

__device__ __forceinline__ float at_sum8(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    return v + __shfl_xor_sync(0xffffffffu, v, 4);
}

__device__ __forceinline__ float at_dot4(const float4 a, const float4 b, float acc) {
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
    acc = fmaf(a.z, b.z, acc);
    return fmaf(a.w, b.w, acc);
}

// element offsets of row (b, i) head h of q/out, and of key row (b, j) kv head kh of k/v
__device__ __forceinline__ long long at_qrow(int b, int i, int h, int qLen, int H, int D) {
    return (((long long) b * qLen + i) * H + h) * D;
}

__device__ __forceinline__ long long at_krow(int b, int j, int kh, int kStride, int Hkv, int D) {
    return (((long long) b * kStride + j) * Hkv + kh) * D;
}

__device__ __forceinline__ bool at_key_ok(const int* __restrict__ mask, int b, int j, int kEnd, int kStride) {
    return j < kEnd && (mask == nullptr || __ldg(mask + (long long) b * kStride + j) != 0);
}

// Stages keys/values [j0, j0 + AT_BK) of (b, kh) as fp32, row stride LD, zero beyond D and for keys that are not ok
// (past kEnd, or masked: a padding row's values must not reach P·V even as 0 * NaN). Scaled by `mul`.
template <typename E, int DMAX, int LD>
__device__ __forceinline__ void at_stage_keys(float* __restrict__ dst, const typename E::T* __restrict__ src,
                                              const int* __restrict__ mask, int b, int kh, int j0, int kEnd,
                                              int kStride, int Hkv, int D, float mul) {
#pragma unroll 4
    for (int idx = threadIdx.x; idx < AT_BK * DMAX; idx += AT_THREADS) {
        const int jj = idx / DMAX, d = idx - jj * DMAX;
        const int j = j0 + jj;
        float x = 0.f;
        if (d < D && at_key_ok(mask, b, j, kEnd, kStride))
            x = E::load(src, at_krow(b, j, kh, kStride, Hkv, D) + d) * mul;
        dst[jj * LD + d] = x;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Forward and decode. A block owns ROWS = 16*RPT rows g = rowBase + r (r < rowCount) of kv head kh, where row g is
// query head kh*rep + g / qLen, query g % qLen, and the keys [kBegin, kEnd). Forward: rows are one query head's
// query tile. Decode: rows are all (head, query) pairs of the kv head, so the keys are read once for the rep heads
// sharing them, and the keys are one split of the cache.
// Output: with part_ml == null the final out and lse (lse may be null: bidirectional); otherwise the split's
// unnormalised partial (m in log2 units, l, acc) at index ((b*H + h)*qLen + i)*splits + split.
//
// Shared memory (floats): sQ ROWS x DMAX | sK AT_BK x (DMAX+4) | sV AT_BK x DMAX | sP AT_BK x (ROWS+4).
template <typename E, int DMAX, int RPT>
__device__ __forceinline__ void at_forward_tile(const typename E::T* __restrict__ q,
                                                const typename E::T* __restrict__ k,
                                                const typename E::T* __restrict__ v, const int* __restrict__ mask,
                                                typename E::T* __restrict__ out, float* __restrict__ lse,
                                                float* __restrict__ part_ml, float* __restrict__ part_acc, int b,
                                                int kh, int rowBase, int rowCount, int kBegin, int kEnd, int split,
                                                int splits, int qLen, int kStride, int qOffset, int H, int Hkv, int D,
                                                float scale, int causal) {
    typedef typename E::T T;
    constexpr int ROWS = AT_TY * RPT;
    constexpr int LDK = DMAX + 4, LDP = ROWS + 4, NC = DMAX / 32;
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    float* sQ = reinterpret_cast<float*>(rlsr_smem);
    float* sK = sQ + ROWS * DMAX;
    float* sV = sK + AT_BK * LDK;
    float* sP = sV + AT_BK * DMAX;

    const int tx = threadIdx.x & (AT_TX - 1), ty = threadIdx.x / AT_TX;
    const int rep = H / Hkv;
    const float c = scale * AT_LOG2E;

    for (int idx = threadIdx.x; idx < ROWS * DMAX; idx += AT_THREADS) {
        const int r = idx / DMAX, d = idx - r * DMAX;
        float x = 0.f;
        if (r < rowCount && d < D) {
            const int g = rowBase + r;
            x = E::load(q, at_qrow(b, g % qLen, kh * rep + g / qLen, qLen, H, D) + d) * c;
        }
        sQ[idx] = x;
    }
    // last visible key of each of this thread's rows (causal), or no limit
    int lim[RPT];
#pragma unroll
    for (int rr = 0; rr < RPT; ++rr) {
        const int g = rowBase + ty * RPT + rr;
        lim[rr] = causal ? qOffset + g % qLen : 0x7fffffff;
    }

    float m[RPT], l[RPT], acc[RPT][NC * 4];
#pragma unroll
    for (int rr = 0; rr < RPT; ++rr) {
        m[rr] = RLSR_NEG_INF;
        l[rr] = 0.f;
#pragma unroll
        for (int e = 0; e < NC * 4; ++e) acc[rr][e] = 0.f;
    }
    const int D4 = (D + 3) & ~3;

    for (int j0 = kBegin; j0 < kEnd; j0 += AT_BK) {
        __syncthreads();  // the previous tile's K, V, P are no longer read (and sQ is staged on the first pass)
        at_stage_keys<E, DMAX, LDK>(sK, k, mask, b, kh, j0, kEnd, kStride, Hkv, D, 1.f);
        at_stage_keys<E, DMAX, DMAX>(sV, v, mask, b, kh, j0, kEnd, kStride, Hkv, D, 1.f);
        __syncthreads();

        // S = Q·Kᵀ for RPT rows x AT_KPT keys
        float s[RPT][AT_KPT];
#pragma unroll
        for (int rr = 0; rr < RPT; ++rr)
#pragma unroll
            for (int kk = 0; kk < AT_KPT; ++kk) s[rr][kk] = 0.f;
        for (int d = 0; d < D4; d += 4) {
            float4 qv[RPT], kv[AT_KPT];
#pragma unroll
            for (int rr = 0; rr < RPT; ++rr) qv[rr] = *reinterpret_cast<const float4*>(sQ + (ty * RPT + rr) * DMAX + d);
#pragma unroll
            for (int kk = 0; kk < AT_KPT; ++kk)
                kv[kk] = *reinterpret_cast<const float4*>(sK + (tx + AT_TX * kk) * LDK + d);
#pragma unroll
            for (int rr = 0; rr < RPT; ++rr)
#pragma unroll
                for (int kk = 0; kk < AT_KPT; ++kk) s[rr][kk] = at_dot4(qv[rr], kv[kk], s[rr][kk]);
        }

        // mask, online softmax, P into sP (key-major)
        bool kok[AT_KPT];
#pragma unroll
        for (int kk = 0; kk < AT_KPT; ++kk) kok[kk] = at_key_ok(mask, b, j0 + tx + AT_TX * kk, kEnd, kStride);
#pragma unroll
        for (int rr = 0; rr < RPT; ++rr) {
            float mt = RLSR_NEG_INF;
#pragma unroll
            for (int kk = 0; kk < AT_KPT; ++kk) {
                const int j = j0 + tx + AT_TX * kk;
                if (!kok[kk] || j > lim[rr]) s[rr][kk] = RLSR_NEG_INF;
                mt = fmaxf(mt, s[rr][kk]);
            }
            const float mn = fmaxf(m[rr], at_max8(mt));
            float alpha = 1.f, ps = 0.f;
            if (mn != RLSR_NEG_INF) {  // else nothing visible yet: p = 0, acc and l stay 0
                alpha = at_exp2(m[rr] - mn);
#pragma unroll
                for (int kk = 0; kk < AT_KPT; ++kk) {
                    s[rr][kk] = at_exp2(s[rr][kk] - mn);
                    ps += s[rr][kk];
                }
            } else {
#pragma unroll
                for (int kk = 0; kk < AT_KPT; ++kk) s[rr][kk] = 0.f;
            }
            m[rr] = mn;
            l[rr] = fmaf(l[rr], alpha, ps);
#pragma unroll
            for (int e = 0; e < NC * 4; ++e) acc[rr][e] *= alpha;
        }
#pragma unroll
        for (int kk = 0; kk < AT_KPT; ++kk)
#pragma unroll
            for (int rr = 0; rr < RPT; ++rr) sP[(tx + AT_TX * kk) * LDP + ty * RPT + rr] = s[rr][kk];
        __syncwarp();

        // O += P·V
        const int kn = min(AT_BK, kEnd - j0);
        for (int jj = 0; jj < kn; ++jj) {
            float p[RPT];
#pragma unroll
            for (int rr = 0; rr < RPT; ++rr) p[rr] = sP[jj * LDP + ty * RPT + rr];
#pragma unroll
            for (int cc = 0; cc < NC; ++cc) {
                if (32 * cc < D) {
                    const float4 vv = *reinterpret_cast<const float4*>(sV + jj * DMAX + 32 * cc + tx * 4);
#pragma unroll
                    for (int rr = 0; rr < RPT; ++rr) {
                        acc[rr][cc * 4 + 0] = fmaf(p[rr], vv.x, acc[rr][cc * 4 + 0]);
                        acc[rr][cc * 4 + 1] = fmaf(p[rr], vv.y, acc[rr][cc * 4 + 1]);
                        acc[rr][cc * 4 + 2] = fmaf(p[rr], vv.z, acc[rr][cc * 4 + 2]);
                        acc[rr][cc * 4 + 3] = fmaf(p[rr], vv.w, acc[rr][cc * 4 + 3]);
                    }
                }
            }
        }
    }

#pragma unroll
    for (int rr = 0; rr < RPT; ++rr) {
        const float lt = at_sum8(l[rr]);  // every lane takes part, valid row or not
        const int r = ty * RPT + rr;
        if (r >= rowCount) continue;
        const int g = rowBase + r, h = kh * rep + g / qLen, i = g % qLen;
        if (part_ml == nullptr) {
            const float inv = lt > 0.f ? 1.f / lt : 0.f;
            T* o = out + at_qrow(b, i, h, qLen, H, D);
#pragma unroll
            for (int cc = 0; cc < NC; ++cc)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int d = 32 * cc + tx * 4 + e;
                    if (d < D) E::store(o, d, acc[rr][cc * 4 + e] * inv);
                }
            if (lse != nullptr && tx == 0)
                lse[((long long) b * H + h) * qLen + i] = lt > 0.f ? m[rr] * AT_LN2 + logf(lt) : RLSR_POS_INF;
        } else {
            const long long pi = (((long long) b * H + h) * qLen + i) * splits + split;
            float* a = part_acc + pi * D;
#pragma unroll
            for (int cc = 0; cc < NC; ++cc)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int d = 32 * cc + tx * 4 + e;
                    if (d < D) a[d] = acc[rr][cc * 4 + e];
                }
            if (tx == 0) {
                part_ml[2 * pi] = m[rr];
                part_ml[2 * pi + 1] = lt;
            }
        }
    }
}

// Forward grid: (ceil(qLen / 64), H, B). causal = 0 is the bidirectional variant (qOffset 0, lse may be null).
template <typename E, int DMAX>
__device__ __forceinline__ void at_forward(const typename E::T* q, const typename E::T* k, const typename E::T* v,
                                           const int* mask, typename E::T* out, float* lse, int qLen, int kLen,
                                           int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    constexpr int ROWS = AT_TY * 4;
    const int i0 = blockIdx.x * ROWS, h = blockIdx.y, b = blockIdx.z;
    const int rep = H / Hkv, kh = h / rep;
    const int rowCount = min(ROWS, qLen - i0);
    const int kEnd = causal ? min(kLen, qOffset + i0 + rowCount) : kLen;
    at_forward_tile<E, DMAX, 4>(q, k, v, mask, out, lse, nullptr, nullptr, b, kh, (h - kh * rep) * qLen + i0, rowCount,
                                0, kEnd, 0, 1, qLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

// Decode grid: (splits, Hkv * rowGroups, B) with rowGroups = ceil(rep*qLen / 16); every split but the last has
// splitLen keys (a multiple of 32). splits == 1 writes out and lse directly (part_ml null), else partials.
// kLenDev (graph-replayed decoding): when not null, the cache length is read from device memory at every launch,
// kLen = *kLenDev clamped to [0, kStride] (so a bad length cannot read past the cache), and the queries are the last
// qLen positions, qOffset = kLen - qLen. The grid is then sized from kStride: a split that starts at or past kLen
// reads nothing and marks its partials empty (m = -inf, l = 0), which the combine skips, so one captured launch
// serves every length. Split 0 always runs (kLen 0: no visible key, zeros and lse +inf).
template <typename E, int DMAX>
__device__ __forceinline__ void at_decode(const typename E::T* q, const typename E::T* k, const typename E::T* v,
                                          const int* mask, typename E::T* out, float* lse, float* part_ml,
                                          float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv,
                                          int D, float scale, int splitLen, const int* __restrict__ kLenDev) {
    constexpr int ROWS = AT_TY;
    const int split = blockIdx.x, kh = blockIdx.y % Hkv, rg = blockIdx.y / Hkv, b = blockIdx.z;
    const int rep = H / Hkv;
    const int rowBase = rg * ROWS, rowCount = min(ROWS, rep * qLen - rowBase);
    if (kLenDev != nullptr) {
        kLen = min(max(__ldg(kLenDev), 0), kStride);
        qOffset = kLen - qLen;
    }
    const int kAll = min(kLen, qOffset + qLen);
    const int kBegin = split * splitLen, kEnd = min(kAll, kBegin + splitLen);
    if (split > 0 && kBegin >= kEnd) {  // split > 0: there are partials (gridDim.x > 1)
        for (int r = threadIdx.x; r < rowCount; r += AT_THREADS) {
            const int g = rowBase + r;
            const long long pi = (((long long) b * H + kh * rep + g / qLen) * qLen + g % qLen) * gridDim.x + split;
            part_ml[2 * pi] = RLSR_NEG_INF;
            part_ml[2 * pi + 1] = 0.f;
        }
        return;  // the whole block: no barrier was reached
    }
    at_forward_tile<E, DMAX, 1>(q, k, v, mask, out, lse, part_ml, part_acc, b, kh, rowBase, rowCount, kBegin, kEnd,
                                split, gridDim.x, qLen, kStride, qOffset, H, Hkv, D, scale, 1);
}

// Combine of the decode splits: one warp per (b, h, i) row, grid ceil(B*H*qLen / 4) x 128 threads.
// M = max m_s, L = sum l_s 2^(m_s - M), out = sum acc_s 2^(m_s - M) / L, lse = M ln2 + ln L (+inf, zeros if L = 0).
// A split with m_s = -inf saw no key: its acc is skipped, not multiplied by 0 (a split past a device cache length
// never wrote it).
template <typename E>
__device__ __forceinline__ void at_combine(const float* __restrict__ part_ml, const float* __restrict__ part_acc,
                                           typename E::T* __restrict__ out, float* __restrict__ lse, int rows,
                                           int qLen, int H, int D, int splits) {
    const int row = blockIdx.x * (AT_THREADS / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;  // whole warps leave together: no shuffle or barrier follows
    const float* ml = part_ml + (long long) row * splits * 2;
    float mx = RLSR_NEG_INF;
    for (int s = 0; s < splits; ++s) mx = fmaxf(mx, ml[2 * s]);
    float L = 0.f;
    if (mx != RLSR_NEG_INF)
        for (int s = 0; s < splits; ++s) L = fmaf(ml[2 * s + 1], at_exp2(ml[2 * s] - mx), L);
    const float inv = L > 0.f ? 1.f / L : 0.f;
    // row = (b*H + h)*qLen + i; out is (b, i, h)
    const int i = row % qLen, bh = row / qLen, h = bh % H, b = bh / H;
    typename E::T* o = out + at_qrow(b, i, h, qLen, H, D);
    const float* acc = part_acc + (long long) row * splits * D;
    for (int d = lane; d < D; d += 32) {
        float x = 0.f;
        if (L > 0.f)
            for (int s = 0; s < splits; ++s)
                if (ml[2 * s] != RLSR_NEG_INF) x = fmaf(acc[(long long) s * D + d], at_exp2(ml[2 * s] - mx), x);
        E::store(o, d, x * inv);
    }
    if (lane == 0) lse[row] = L > 0.f ? mx * AT_LN2 + logf(L) : RLSR_POS_INF;
}

// ---------------------------------------------------------------------------------------------------------------
// Backward, part 1: dq. Grid (ceil(qLen / ROWS), H, B), ROWS = 16*RPT query rows of head h; loops over the key
// tiles the rows see. Per tile: S = Q·Kᵀ, P = 2^(S - lse), dP = dO·Vᵀ, dS = P (dP - Di) scale, dq += dS·K, with
// Di = rowsum(dO * O) computed once per row. No atomics: each dq row has one owner.
// Shared memory (floats): sQ ROWS x DMAX | sdO ROWS x DMAX | sK AT_BK x (DMAX+4) | sV AT_BK x (DMAX+4) |
// sS AT_BK x (ROWS+4).
template <typename E, int DMAX, int RPT>
__device__ __forceinline__ void at_backward_dq(const typename E::T* __restrict__ q, const typename E::T* __restrict__ k,
                                               const typename E::T* __restrict__ v, const typename E::T* __restrict__ o,
                                               const float* __restrict__ lse, const typename E::T* __restrict__ dout,
                                               const int* __restrict__ mask, typename E::T* __restrict__ dq, int qLen,
                                               int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    typedef typename E::T T;
    constexpr int ROWS = AT_TY * RPT;
    constexpr int LDK = DMAX + 4, LDS = ROWS + 4, NC = DMAX / 32;
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    float* sQ = reinterpret_cast<float*>(rlsr_smem);
    float* sdO = sQ + ROWS * DMAX;
    float* sK = sdO + ROWS * DMAX;
    float* sV = sK + AT_BK * LDK;
    float* sS = sV + AT_BK * LDK;

    const int i0 = blockIdx.x * ROWS, h = blockIdx.y, b = blockIdx.z;
    const int kh = h / (H / Hkv);
    const int rowCount = min(ROWS, qLen - i0);
    const int kEnd = min(kLen, qOffset + i0 + rowCount);
    const int tx = threadIdx.x & (AT_TX - 1), ty = threadIdx.x / AT_TX;
    const float c = scale * AT_LOG2E;

    for (int idx = threadIdx.x; idx < ROWS * DMAX; idx += AT_THREADS) {
        const int r = idx / DMAX, d = idx - r * DMAX;
        float xq = 0.f, xg = 0.f;
        if (r < rowCount && d < D) {
            const long long at = at_qrow(b, i0 + r, h, qLen, H, D) + d;
            xq = E::load(q, at) * c;
            xg = E::load(dout, at);
        }
        sQ[idx] = xq;
        sdO[idx] = xg;
    }
    // per row: lse in log2 units (+inf: no visible key, no gradient), Di = dO·O over this lane's columns, then summed
    float lse2[RPT], di[RPT], acc[RPT][NC * 4];
    int lim[RPT];
#pragma unroll
    for (int rr = 0; rr < RPT; ++rr) {
        const int r = ty * RPT + rr;
        lim[rr] = qOffset + i0 + r;
        float part = 0.f;
        lse2[rr] = RLSR_POS_INF;
        if (r < rowCount) {
            lse2[rr] = lse[((long long) b * H + h) * qLen + i0 + r] * AT_LOG2E;
            const long long at = at_qrow(b, i0 + r, h, qLen, H, D);
#pragma unroll
            for (int cc = 0; cc < NC; ++cc)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int d = 32 * cc + tx * 4 + e;
                    if (d < D) part = fmaf(E::load(dout, at + d), E::load(o, at + d), part);
                }
        }
        di[rr] = at_sum8(part);
#pragma unroll
        for (int e = 0; e < NC * 4; ++e) acc[rr][e] = 0.f;
    }
    const int D4 = (D + 3) & ~3;

    for (int j0 = 0; j0 < kEnd; j0 += AT_BK) {
        __syncthreads();
        at_stage_keys<E, DMAX, LDK>(sK, k, mask, b, kh, j0, kEnd, kStride, Hkv, D, 1.f);
        at_stage_keys<E, DMAX, LDK>(sV, v, mask, b, kh, j0, kEnd, kStride, Hkv, D, 1.f);
        __syncthreads();

        float s[RPT][AT_KPT], dp[RPT][AT_KPT];
#pragma unroll
        for (int rr = 0; rr < RPT; ++rr)
#pragma unroll
            for (int kk = 0; kk < AT_KPT; ++kk) s[rr][kk] = dp[rr][kk] = 0.f;
        for (int d = 0; d < D4; d += 4) {
            float4 kv[AT_KPT], vv[AT_KPT];
#pragma unroll
            for (int kk = 0; kk < AT_KPT; ++kk) {
                kv[kk] = *reinterpret_cast<const float4*>(sK + (tx + AT_TX * kk) * LDK + d);
                vv[kk] = *reinterpret_cast<const float4*>(sV + (tx + AT_TX * kk) * LDK + d);
            }
#pragma unroll
            for (int rr = 0; rr < RPT; ++rr) {
                const float4 qv = *reinterpret_cast<const float4*>(sQ + (ty * RPT + rr) * DMAX + d);
                const float4 gv = *reinterpret_cast<const float4*>(sdO + (ty * RPT + rr) * DMAX + d);
#pragma unroll
                for (int kk = 0; kk < AT_KPT; ++kk) {
                    s[rr][kk] = at_dot4(qv, kv[kk], s[rr][kk]);
                    dp[rr][kk] = at_dot4(gv, vv[kk], dp[rr][kk]);
                }
            }
        }
#pragma unroll
        for (int kk = 0; kk < AT_KPT; ++kk) {
            const int j = j0 + tx + AT_TX * kk;
            const bool ok = at_key_ok(mask, b, j, kEnd, kStride);
#pragma unroll
            for (int rr = 0; rr < RPT; ++rr) {
                float ds = 0.f;
                if (ok && j <= lim[rr] && lse2[rr] != RLSR_POS_INF) {
                    const float p = at_exp2(s[rr][kk] - lse2[rr]);
                    ds = p * (dp[rr][kk] - di[rr]) * scale;
                }
                sS[(tx + AT_TX * kk) * LDS + ty * RPT + rr] = ds;
            }
        }
        __syncwarp();

        const int kn = min(AT_BK, kEnd - j0);
        for (int jj = 0; jj < kn; ++jj) {
            float g[RPT];
#pragma unroll
            for (int rr = 0; rr < RPT; ++rr) g[rr] = sS[jj * LDS + ty * RPT + rr];
#pragma unroll
            for (int cc = 0; cc < NC; ++cc) {
                if (32 * cc < D) {
                    const float4 kv = *reinterpret_cast<const float4*>(sK + jj * LDK + 32 * cc + tx * 4);
#pragma unroll
                    for (int rr = 0; rr < RPT; ++rr) {
                        acc[rr][cc * 4 + 0] = fmaf(g[rr], kv.x, acc[rr][cc * 4 + 0]);
                        acc[rr][cc * 4 + 1] = fmaf(g[rr], kv.y, acc[rr][cc * 4 + 1]);
                        acc[rr][cc * 4 + 2] = fmaf(g[rr], kv.z, acc[rr][cc * 4 + 2]);
                        acc[rr][cc * 4 + 3] = fmaf(g[rr], kv.w, acc[rr][cc * 4 + 3]);
                    }
                }
            }
        }
    }

#pragma unroll
    for (int rr = 0; rr < RPT; ++rr) {
        const int r = ty * RPT + rr;
        if (r >= rowCount) continue;
        T* g = dq + at_qrow(b, i0 + r, h, qLen, H, D);
#pragma unroll
        for (int cc = 0; cc < NC; ++cc)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int d = 32 * cc + tx * 4 + e;
                if (d < D) E::store(g, d, acc[rr][cc * 4 + e]);
            }
    }
}

// Backward, part 2: dk and dv. Grid (ceil(kStride / KROWS), Hkv, B), KROWS = 16*RPT keys of kv head kh; the block
// loops over the rep query heads that share kh and over the query tiles (QCOLS = 8*QPT queries) that see its keys,
// in a fixed order, so the heads' contributions add up deterministically without atomics. Per query tile:
// Sᵀ = K·Qᵀ, P = 2^(S - lse), dPᵀ = V·dOᵀ, dS = P (dP - Di) scale, dv += Pᵀ·dO, dk += dSᵀ·Q. Rows that no query
// sees (masked, past kLen up to kStride, causal future) get zeros: dk and dv are overwritten.
// Shared memory (floats): sK KROWS x DMAX | sV KROWS x DMAX | sQ QCOLS x (DMAX+4) | sdO QCOLS x (DMAX+4) |
// sP QCOLS x (KROWS+4) | sS QCOLS x (KROWS+4) | sL QCOLS | sD QCOLS.
template <typename E, int DMAX, int RPT, int QPT>
__device__ __forceinline__ void at_backward_dkdv(const typename E::T* __restrict__ q,
                                                 const typename E::T* __restrict__ k,
                                                 const typename E::T* __restrict__ v,
                                                 const typename E::T* __restrict__ o, const float* __restrict__ lse,
                                                 const typename E::T* __restrict__ dout, const int* __restrict__ mask,
                                                 typename E::T* __restrict__ dk, typename E::T* __restrict__ dv,
                                                 int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
                                                 float scale) {
    typedef typename E::T T;
    constexpr int KROWS = AT_TY * RPT, QCOLS = AT_TX * QPT;
    constexpr int LDQ = DMAX + 4, LDP = KROWS + 4, NC = DMAX / 32, WARPS = AT_THREADS / 32;
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    float* sK = reinterpret_cast<float*>(rlsr_smem);
    float* sV = sK + KROWS * DMAX;
    float* sQ = sV + KROWS * DMAX;
    float* sdO = sQ + QCOLS * LDQ;
    float* sP = sdO + QCOLS * LDQ;
    float* sS = sP + QCOLS * LDP;
    float* sL = sS + QCOLS * LDP;
    float* sD = sL + QCOLS;

    const int j0 = blockIdx.x * KROWS, kh = blockIdx.y, b = blockIdx.z;
    const int rep = H / Hkv;
    const int tx = threadIdx.x & (AT_TX - 1), ty = threadIdx.x / AT_TX;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float c = scale * AT_LOG2E;

    float gk[RPT][NC * 4], gv[RPT][NC * 4];
    bool kok[RPT];
#pragma unroll
    for (int rr = 0; rr < RPT; ++rr) {
        kok[rr] = at_key_ok(mask, b, j0 + ty * RPT + rr, kLen, kStride);
#pragma unroll
        for (int e = 0; e < NC * 4; ++e) gk[rr][e] = gv[rr][e] = 0.f;
    }

    if (j0 < kLen) {  // uniform over the block
        for (int idx = threadIdx.x; idx < KROWS * DMAX; idx += AT_THREADS) {
            const int r = idx / DMAX, d = idx - r * DMAX;
            const int j = j0 + r;
            float xk = 0.f, xv = 0.f;
            if (d < D && at_key_ok(mask, b, j, kLen, kStride)) {
                const long long at = at_krow(b, j, kh, kStride, Hkv, D) + d;
                xk = E::load(k, at) * c;
                xv = E::load(v, at);
            }
            sK[idx] = xk;
            sV[idx] = xv;
        }
        const int D4 = (D + 3) & ~3;
        // the first query that can see key j0 is j0 - qOffset
        const int iFirst = max(0, j0 - qOffset) / QCOLS * QCOLS;
        for (int hh = 0; hh < rep; ++hh) {
            const int h = kh * rep + hh;
            for (int i0 = iFirst; i0 < qLen; i0 += QCOLS) {
                __syncthreads();  // previous tile's sQ, sdO, sP, sS, sL, sD are no longer read
                for (int idx = threadIdx.x; idx < QCOLS * DMAX; idx += AT_THREADS) {
                    const int r = idx / DMAX, d = idx - r * DMAX;
                    float xq = 0.f;
                    if (i0 + r < qLen && d < D) xq = E::load(q, at_qrow(b, i0 + r, h, qLen, H, D) + d);
                    sQ[r * LDQ + d] = xq;
                }
                // dO rows and Di = dO·O, one warp per row
                for (int r = warp; r < QCOLS; r += WARPS) {
                    const int i = i0 + r;
                    float part = 0.f;
                    const long long at = i < qLen ? at_qrow(b, i, h, qLen, H, D) : 0;
                    for (int d = lane; d < DMAX; d += 32) {
                        float g = 0.f;
                        if (i < qLen && d < D) {
                            g = E::load(dout, at + d);
                            part = fmaf(g, E::load(o, at + d), part);
                        }
                        sdO[r * LDQ + d] = g;
                    }
                    part = rlsr_warp_sum(part);
                    if (lane == 0) {
                        sD[r] = part;
                        sL[r] = i < qLen ? lse[((long long) b * H + h) * qLen + i] * AT_LOG2E : RLSR_POS_INF;
                    }
                }
                __syncthreads();

                float s[RPT][QPT], dp[RPT][QPT];
#pragma unroll
                for (int rr = 0; rr < RPT; ++rr)
#pragma unroll
                    for (int qq = 0; qq < QPT; ++qq) s[rr][qq] = dp[rr][qq] = 0.f;
                for (int d = 0; d < D4; d += 4) {
                    float4 qv[QPT], gv4[QPT];
#pragma unroll
                    for (int qq = 0; qq < QPT; ++qq) {
                        qv[qq] = *reinterpret_cast<const float4*>(sQ + (tx + AT_TX * qq) * LDQ + d);
                        gv4[qq] = *reinterpret_cast<const float4*>(sdO + (tx + AT_TX * qq) * LDQ + d);
                    }
#pragma unroll
                    for (int rr = 0; rr < RPT; ++rr) {
                        const float4 kv = *reinterpret_cast<const float4*>(sK + (ty * RPT + rr) * DMAX + d);
                        const float4 vv = *reinterpret_cast<const float4*>(sV + (ty * RPT + rr) * DMAX + d);
#pragma unroll
                        for (int qq = 0; qq < QPT; ++qq) {
                            s[rr][qq] = at_dot4(kv, qv[qq], s[rr][qq]);
                            dp[rr][qq] = at_dot4(vv, gv4[qq], dp[rr][qq]);
                        }
                    }
                }
#pragma unroll
                for (int qq = 0; qq < QPT; ++qq) {
                    const int qi = tx + AT_TX * qq;
                    const float l2 = sL[qi], dd = sD[qi];
                    const int lim = qOffset + i0 + qi;  // last key query i0 + qi sees
#pragma unroll
                    for (int rr = 0; rr < RPT; ++rr) {
                        const int j = j0 + ty * RPT + rr;
                        float p = 0.f, ds = 0.f;
                        if (kok[rr] && j <= lim && l2 != RLSR_POS_INF) {
                            p = at_exp2(s[rr][qq] - l2);
                            ds = p * (dp[rr][qq] - dd) * scale;
                        }
                        sP[qi * LDP + ty * RPT + rr] = p;
                        sS[qi * LDP + ty * RPT + rr] = ds;
                    }
                }
                __syncwarp();

                const int qn = min(QCOLS, qLen - i0);
                for (int qi = 0; qi < qn; ++qi) {
                    float p[RPT], g[RPT];
#pragma unroll
                    for (int rr = 0; rr < RPT; ++rr) {
                        p[rr] = sP[qi * LDP + ty * RPT + rr];
                        g[rr] = sS[qi * LDP + ty * RPT + rr];
                    }
#pragma unroll
                    for (int cc = 0; cc < NC; ++cc) {
                        if (32 * cc < D) {
                            const float4 gg = *reinterpret_cast<const float4*>(sdO + qi * LDQ + 32 * cc + tx * 4);
                            const float4 qq4 = *reinterpret_cast<const float4*>(sQ + qi * LDQ + 32 * cc + tx * 4);
#pragma unroll
                            for (int rr = 0; rr < RPT; ++rr) {
                                gv[rr][cc * 4 + 0] = fmaf(p[rr], gg.x, gv[rr][cc * 4 + 0]);
                                gv[rr][cc * 4 + 1] = fmaf(p[rr], gg.y, gv[rr][cc * 4 + 1]);
                                gv[rr][cc * 4 + 2] = fmaf(p[rr], gg.z, gv[rr][cc * 4 + 2]);
                                gv[rr][cc * 4 + 3] = fmaf(p[rr], gg.w, gv[rr][cc * 4 + 3]);
                                gk[rr][cc * 4 + 0] = fmaf(g[rr], qq4.x, gk[rr][cc * 4 + 0]);
                                gk[rr][cc * 4 + 1] = fmaf(g[rr], qq4.y, gk[rr][cc * 4 + 1]);
                                gk[rr][cc * 4 + 2] = fmaf(g[rr], qq4.z, gk[rr][cc * 4 + 2]);
                                gk[rr][cc * 4 + 3] = fmaf(g[rr], qq4.w, gk[rr][cc * 4 + 3]);
                            }
                        }
                    }
                }
            }
        }
    }

#pragma unroll
    for (int rr = 0; rr < RPT; ++rr) {
        const int j = j0 + ty * RPT + rr;
        if (j >= kStride) continue;
        const long long at = at_krow(b, j, kh, kStride, Hkv, D);
#pragma unroll
        for (int cc = 0; cc < NC; ++cc)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int d = 32 * cc + tx * 4 + e;
                if (d < D) {
                    E::store(dk, at + d, gk[rr][cc * 4 + e]);
                    E::store(dv, at + d, gv[rr][cc * 4 + e]);
                }
            }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor cores, bf16 only: the same contracts on mma.sync m16n8k16 (rlsr_mma.cuh), fp32 accumulation. Tiles are
// staged in shared memory as bf16 (16-byte loads when D % 8 == 0 and the pointers are 16-byte aligned, else element
// loads); row strides are padded by 8 elements so the 32-bit fragment loads of a warp (8 rows x 4 words) hit 32
// distinct banks. An operand whose pairs must run along rows of the source (V in P·V, the k = query operands of the
// backward) is staged transposed, two source rows packed per 32-bit word so a warp's stores are consecutive words.
// Differences to the SIMT kernels: P (and dS) are rounded to bf16 to enter the second product, as in
// FlashAttention; the row sums l use the fp32 P.
#define AM_BM 64  // query rows per forward block: 4 warps x 16
#define AM_BN 64  // keys per forward tile

__device__ __forceinline__ unsigned am_half(const uint4 x, int e) {  // bf16 element e (0..7) of a 16-byte chunk
    const unsigned w = e < 2 ? x.x : e < 4 ? x.y : e < 6 ? x.z : x.w;
    return (e & 1) ? w >> 16 : w & 0xffffu;
}

// dst[r*LD + d] = source row r (elements first + r*stride + d) for r < ROWS, d < DMAX; zero for d >= D and for rows
// that are not ok (r >= nvalid, or mask[r] == 0 where mask is given, indexed from row 0).
template <int ROWS, int DMAX, int LD>
__device__ __forceinline__ void am_stage(unsigned short* __restrict__ dst, const unsigned short* __restrict__ src,
                                         long long first, long long stride, int nvalid, const int* __restrict__ mask,
                                         int D, bool vec) {
    if (vec) {
        constexpr int CH = DMAX / 8;
        for (int idx = threadIdx.x; idx < ROWS * CH; idx += AT_THREADS) {
            const int r = idx / CH, c = idx - r * CH;
            uint4 x = make_uint4(0u, 0u, 0u, 0u);
            if (c * 8 < D && r < nvalid && (mask == nullptr || __ldg(mask + r) != 0))
                x = __ldg(reinterpret_cast<const uint4*>(src + first + r * stride + c * 8));
            *reinterpret_cast<uint4*>(dst + r * LD + c * 8) = x;
        }
    } else {
        for (int idx = threadIdx.x; idx < ROWS * DMAX; idx += AT_THREADS) {
            const int r = idx / DMAX, d = idx - r * DMAX;
            unsigned short x = 0;
            if (d < D && r < nvalid && (mask == nullptr || __ldg(mask + r) != 0)) x = src[first + r * stride + d];
            dst[r * LD + d] = x;
        }
    }
}

// Transposed: dst[d*LDT + r] = source row r, column d (same rows, zeros and validity as am_stage). ROWS is even;
// rows r and r+1 of one column are one 32-bit word.
template <int ROWS, int DMAX, int LDT>
__device__ __forceinline__ void am_stage_t(unsigned short* __restrict__ dst, const unsigned short* __restrict__ src,
                                           long long first, long long stride, int nvalid,
                                           const int* __restrict__ mask, int D, bool vec) {
    constexpr int PAIRS = ROWS / 2;
    unsigned* d32 = reinterpret_cast<unsigned*>(dst);
    if (vec) {
        constexpr int CH = DMAX / 8;
        for (int idx = threadIdx.x; idx < PAIRS * CH; idx += AT_THREADS) {
            const int p = idx % PAIRS, c = idx / PAIRS;  // pairs fastest: a warp stores consecutive words
            const int r = 2 * p;
            uint4 x0 = make_uint4(0u, 0u, 0u, 0u), x1 = x0;
            if (c * 8 < D) {
                if (r < nvalid && (mask == nullptr || __ldg(mask + r) != 0))
                    x0 = __ldg(reinterpret_cast<const uint4*>(src + first + r * stride + c * 8));
                if (r + 1 < nvalid && (mask == nullptr || __ldg(mask + r + 1) != 0))
                    x1 = __ldg(reinterpret_cast<const uint4*>(src + first + (r + 1) * stride + c * 8));
            }
#pragma unroll
            for (int e = 0; e < 8; ++e) d32[(c * 8 + e) * (LDT / 2) + p] = am_half(x0, e) | (am_half(x1, e) << 16);
        }
    } else {
        for (int idx = threadIdx.x; idx < PAIRS * DMAX; idx += AT_THREADS) {
            const int p = idx % PAIRS, d = idx / PAIRS;
            const int r = 2 * p;
            unsigned lo = 0u, hi = 0u;
            if (d < D) {
                if (r < nvalid && (mask == nullptr || __ldg(mask + r) != 0)) lo = src[first + r * stride + d];
                if (r + 1 < nvalid && (mask == nullptr || __ldg(mask + r + 1) != 0))
                    hi = src[first + (r + 1) * stride + d];
            }
            d32[d * (LDT / 2) + p] = lo | (hi << 16);
        }
    }
}

__device__ __forceinline__ bool am_vec(const void* a, const void* b, const void* c, const void* d, int D) {
    const unsigned long long bits = (unsigned long long) a | (unsigned long long) b | (unsigned long long) c |
                                    (unsigned long long) d;
    return (D & 7) == 0 && (bits & 15ull) == 0;
}

// A fragment (16 x 16 of a row-major bf16 tile, rows row0.., columns k0..) from shared memory, LD in elements.
__device__ __forceinline__ void am_frag_a(unsigned a[4], const unsigned short* tile, int LD, int row0, int k0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const unsigned* w = reinterpret_cast<const unsigned*>(tile);
    const int ldw = LD / 2, c = k0 / 2 + t;
    a[0] = w[(row0 + g) * ldw + c];
    a[1] = w[(row0 + g + 8) * ldw + c];
    a[2] = w[(row0 + g) * ldw + c + 4];
    a[3] = w[(row0 + g + 8) * ldw + c + 4];
}

// B fragment (K x N = 16 x 8) from a tile stored N x K row-major (n0.. rows, k0.. columns), LD in elements.
__device__ __forceinline__ void am_frag_b(unsigned b[2], const unsigned short* tile, int LD, int n0, int k0) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const unsigned* w = reinterpret_cast<const unsigned*>(tile);
    const int ldw = LD / 2;
    b[0] = w[(n0 + g) * ldw + k0 / 2 + t];
    b[1] = w[(n0 + g) * ldw + k0 / 2 + t + 4];
}

__device__ __forceinline__ float am_max4(float v) {  // over the 4 lanes (t) that share a fragment row
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float am_sum4(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Forward, grid (ceil(qLen / 64), H, B), the longest causal query tiles first. Warp w owns query rows 16w..16w+15
// of the tile: Q fragments in registers, S (16 x 64 keys) and O (16 x DMAX) as mma accumulators, P re-packed from S
// as the A operand of P·V.
// Shared memory (bf16): sQ 64 x (DMAX+8) | sK 64 x (DMAX+8) | sVT DMAX x 72 | then int sOk[64].
template <int DMAX>
__device__ __forceinline__ void am_forward(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                                           const unsigned short* __restrict__ v, const int* __restrict__ mask,
                                           unsigned short* __restrict__ out, float* __restrict__ lse, int qLen,
                                           int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale,
                                           int causal) {
    constexpr int LDQ = DMAX + 8, LDVT = AM_BN + 8, KS = DMAX / 16, NT = AM_BN / 8, DT = DMAX / 8;
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    unsigned short* sQ = reinterpret_cast<unsigned short*>(rlsr_smem);
    unsigned short* sK = sQ + AM_BM * LDQ;
    unsigned short* sVT = sK + AM_BN * LDQ;
    int* sOk = reinterpret_cast<int*>(sVT + DMAX * LDVT);

    const int i0 = (gridDim.x - 1 - blockIdx.x) * AM_BM, h = blockIdx.y, b = blockIdx.z;
    const int kh = h / (H / Hkv);
    const int rowCount = min(AM_BM, qLen - i0);
    const int kEnd = causal ? min(kLen, qOffset + i0 + rowCount) : kLen;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const bool vec = am_vec(q, k, v, out, D);
    const float c = scale * AT_LOG2E;

    am_stage<AM_BM, DMAX, LDQ>(sQ, q, at_qrow(b, i0, h, qLen, H, D), (long long) H * D, rowCount, nullptr, D, vec);
    __syncthreads();
    unsigned qf[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) am_frag_a(qf[ks], sQ, LDQ, warp * 16, ks * 16);
    const int r0 = warp * 16 + g;  // this lane's rows: r0 and r0 + 8
    const int lim0 = causal ? qOffset + i0 + r0 : 0x7fffffff, lim1 = causal ? lim0 + 8 : 0x7fffffff;

    float m0 = RLSR_NEG_INF, m1 = RLSR_NEG_INF, l0 = 0.f, l1 = 0.f;
    float o[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;

    for (int j0 = 0; j0 < kEnd; j0 += AM_BN) {
        const int nvalid = kEnd - j0;
        const int* mrow = mask == nullptr ? nullptr : mask + (long long) b * kStride + j0;
        const long long kfirst = at_krow(b, j0, kh, kStride, Hkv, D), kstride = (long long) Hkv * D;
        __syncthreads();  // the previous tile's sK, sVT, sOk are no longer read
        am_stage<AM_BN, DMAX, LDQ>(sK, k, kfirst, kstride, nvalid, mrow, D, vec);
        am_stage_t<AM_BN, DMAX, LDVT>(sVT, v, kfirst, kstride, nvalid, mrow, D, vec);
        if (threadIdx.x < AM_BN)
            sOk[threadIdx.x] = (int) threadIdx.x < nvalid && (mrow == nullptr || __ldg(mrow + threadIdx.x) != 0);
        __syncthreads();

        float s[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
            if (nt * 8 < nvalid) {  // uniform: key n-tiles past the valid keys stay 0 and are masked below
#pragma unroll
                for (int ks = 0; ks < KS; ++ks) {
                    if (ks * 16 < D) {
                        unsigned bf[2];
                        am_frag_b(bf, sK, LDQ, nt * 8, ks * 16);
                        rlsr_mma_m16n8k16_bf16(s[nt], qf[ks], bf, s[nt]);
                    }
                }
            }
        }
        float mx0 = RLSR_NEG_INF, mx1 = RLSR_NEG_INF;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = nt * 8 + 2 * t + (e & 1);
                const bool ok = sOk[key] != 0 && j0 + key <= ((e & 2) ? lim1 : lim0);
                s[nt][e] = ok ? s[nt][e] * c : RLSR_NEG_INF;
                if (e & 2) mx1 = fmaxf(mx1, s[nt][e]); else mx0 = fmaxf(mx0, s[nt][e]);
            }
        const float mn0 = fmaxf(m0, am_max4(mx0)), mn1 = fmaxf(m1, am_max4(mx1));
        // a row with nothing visible yet keeps p = 0 (and l, O = 0): exp2(-inf - -inf) would be NaN
        const float sub0 = mn0 == RLSR_NEG_INF ? 0.f : mn0, sub1 = mn1 == RLSR_NEG_INF ? 0.f : mn1;
        const float al0 = at_exp2(m0 - sub0), al1 = at_exp2(m1 - sub1);
        float ps0 = 0.f, ps1 = 0.f;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            s[nt][0] = at_exp2(s[nt][0] - sub0);
            s[nt][1] = at_exp2(s[nt][1] - sub0);
            s[nt][2] = at_exp2(s[nt][2] - sub1);
            s[nt][3] = at_exp2(s[nt][3] - sub1);
            ps0 += s[nt][0] + s[nt][1];
            ps1 += s[nt][2] + s[nt][3];
        }
        l0 = fmaf(l0, al0, ps0);
        l1 = fmaf(l1, al1, ps1);
        m0 = mn0;
        m1 = mn1;
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
            o[dt][0] *= al0;
            o[dt][1] *= al0;
            o[dt][2] *= al1;
            o[dt][3] *= al1;
        }
#pragma unroll
        for (int kk = 0; kk < NT / 2; ++kk) {
            if (kk * 16 < nvalid) {
                const unsigned pa[4] = {rlsr_pack_bf16x2(s[2 * kk][0], s[2 * kk][1]),
                                        rlsr_pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                                        rlsr_pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                        rlsr_pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
                for (int dt = 0; dt < DT; ++dt) {
                    if (dt * 8 < D) {
                        unsigned bf[2];
                        am_frag_b(bf, sVT, LDVT, dt * 8, kk * 16);
                        rlsr_mma_m16n8k16_bf16(o[dt], pa, bf, o[dt]);
                    }
                }
            }
        }
    }

    const float lt0 = am_sum4(l0), lt1 = am_sum4(l1);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int r = r0 + 8 * half;
        if (r >= rowCount) continue;
        const float lt = half ? lt1 : lt0, inv = lt > 0.f ? 1.f / lt : 0.f;
        unsigned short* orow = out + at_qrow(b, i0 + r, h, qLen, H, D);
#pragma unroll
        for (int dt = 0; dt < DT; ++dt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int d = dt * 8 + 2 * t + e;
                if (d < D) orow[d] = rlsr_float_to_bf16(o[dt][2 * half + e] * inv);
            }
        if (lse != nullptr && t == 0)
            lse[((long long) b * H + h) * qLen + i0 + r] =
                lt > 0.f ? (half ? m1 : m0) * AT_LN2 + logf(lt) : RLSR_POS_INF;
    }
}

// Backward on tensor cores, part 1: dq. Grid (ceil(qLen / 64), H, B), the longest causal query tiles first; key
// tiles of BN = 64 (DMAX <= 64) or 32 keys. Warp w owns query rows 16w.. : Q and dO fragments in registers,
// S = Q·Kᵀ and dP = dO·Vᵀ as accumulators, dS = P (dP - Di) scale re-packed as the A operand of dq += dS·K.
// Shared memory (bf16): sQ 64 x (DMAX+8) | sdO 64 x (DMAX+8) | sK BN x (DMAX+8) | sV BN x (DMAX+8) |
// sKT DMAX x (BN+8) | int sOk[BN].
template <int DMAX, int BN>
__device__ __forceinline__ void am_backward_dq(const unsigned short* __restrict__ q,
                                               const unsigned short* __restrict__ k,
                                               const unsigned short* __restrict__ v,
                                               const unsigned short* __restrict__ o, const float* __restrict__ lse,
                                               const unsigned short* __restrict__ dout, const int* __restrict__ mask,
                                               unsigned short* __restrict__ dq, int qLen, int kLen, int kStride,
                                               int qOffset, int H, int Hkv, int D, float scale) {
    constexpr int LDQ = DMAX + 8, LDKT = BN + 8, KS = DMAX / 16, NT = BN / 8, DT = DMAX / 8;
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    unsigned short* sQ = reinterpret_cast<unsigned short*>(rlsr_smem);
    unsigned short* sdO = sQ + AM_BM * LDQ;
    unsigned short* sK = sdO + AM_BM * LDQ;
    unsigned short* sV = sK + BN * LDQ;
    unsigned short* sKT = sV + BN * LDQ;
    int* sOk = reinterpret_cast<int*>(sKT + DMAX * LDKT);

    const int i0 = (gridDim.x - 1 - blockIdx.x) * AM_BM, h = blockIdx.y, b = blockIdx.z;
    const int kh = h / (H / Hkv);
    const int rowCount = min(AM_BM, qLen - i0);
    const int kEnd = min(kLen, qOffset + i0 + rowCount);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const bool vec = am_vec(q, k, v, dout, D) && am_vec(o, dq, q, q, D);
    const float c = scale * AT_LOG2E;

    const long long qfirst = at_qrow(b, i0, h, qLen, H, D), qstride = (long long) H * D;
    am_stage<AM_BM, DMAX, LDQ>(sQ, q, qfirst, qstride, rowCount, nullptr, D, vec);
    am_stage<AM_BM, DMAX, LDQ>(sdO, dout, qfirst, qstride, rowCount, nullptr, D, vec);
    __syncthreads();
    unsigned qf[KS][4], gf[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
        am_frag_a(qf[ks], sQ, LDQ, warp * 16, ks * 16);
        am_frag_a(gf[ks], sdO, LDQ, warp * 16, ks * 16);
    }
    const int r0 = warp * 16 + g;
    // per row (r0, r0 + 8): lse in log2 units (+inf: no visible key or past qLen: no gradient) and Di = dO·O
    float l2[2], di[2];
    int lim[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int r = r0 + 8 * half;
        lim[half] = qOffset + i0 + r;
        float part = 0.f;
        l2[half] = RLSR_POS_INF;
        if (r < rowCount) {
            l2[half] = lse[((long long) b * H + h) * qLen + i0 + r] * AT_LOG2E;
            const long long at = qfirst + r * qstride;
            for (int d = t; d < D; d += 4)
                part = fmaf(rlsr_bf16_to_float(dout[at + d]), rlsr_bf16_to_float(o[at + d]), part);
        }
        di[half] = am_sum4(part);
    }
    float acc[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.f;

    for (int j0 = 0; j0 < kEnd; j0 += BN) {
        const int nvalid = kEnd - j0;
        const int* mrow = mask == nullptr ? nullptr : mask + (long long) b * kStride + j0;
        const long long kfirst = at_krow(b, j0, kh, kStride, Hkv, D), kstride = (long long) Hkv * D;
        __syncthreads();
        am_stage<BN, DMAX, LDQ>(sK, k, kfirst, kstride, nvalid, mrow, D, vec);
        am_stage<BN, DMAX, LDQ>(sV, v, kfirst, kstride, nvalid, mrow, D, vec);
        am_stage_t<BN, DMAX, LDKT>(sKT, k, kfirst, kstride, nvalid, mrow, D, vec);
        if (threadIdx.x < BN)
            sOk[threadIdx.x] = (int) threadIdx.x < nvalid && (mrow == nullptr || __ldg(mrow + threadIdx.x) != 0);
        __syncthreads();

        float sc[NT][4], dp[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) sc[nt][e] = dp[nt][e] = 0.f;
            if (nt * 8 < nvalid) {
#pragma unroll
                for (int ks = 0; ks < KS; ++ks) {
                    if (ks * 16 < D) {
                        unsigned bf[2];
                        am_frag_b(bf, sK, LDQ, nt * 8, ks * 16);
                        rlsr_mma_m16n8k16_bf16(sc[nt], qf[ks], bf, sc[nt]);
                        am_frag_b(bf, sV, LDQ, nt * 8, ks * 16);
                        rlsr_mma_m16n8k16_bf16(dp[nt], gf[ks], bf, dp[nt]);
                    }
                }
            }
        }
        // dS over dP's registers
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = nt * 8 + 2 * t + (e & 1), half = e >> 1;
                float ds = 0.f;
                if (sOk[key] != 0 && j0 + key <= lim[half] && l2[half] != RLSR_POS_INF) {
                    const float p = at_exp2(fmaf(sc[nt][e], c, -l2[half]));
                    ds = p * (dp[nt][e] - di[half]) * scale;
                }
                dp[nt][e] = ds;
            }
#pragma unroll
        for (int kk = 0; kk < NT / 2; ++kk) {
            if (kk * 16 < nvalid) {
                const unsigned da[4] = {rlsr_pack_bf16x2(dp[2 * kk][0], dp[2 * kk][1]),
                                        rlsr_pack_bf16x2(dp[2 * kk][2], dp[2 * kk][3]),
                                        rlsr_pack_bf16x2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                                        rlsr_pack_bf16x2(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
                for (int dt = 0; dt < DT; ++dt) {
                    if (dt * 8 < D) {
                        unsigned bf[2];
                        am_frag_b(bf, sKT, LDKT, dt * 8, kk * 16);
                        rlsr_mma_m16n8k16_bf16(acc[dt], da, bf, acc[dt]);
                    }
                }
            }
        }
    }

#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int r = r0 + 8 * half;
        if (r >= rowCount) continue;
        unsigned short* grow = dq + qfirst + r * qstride;
#pragma unroll
        for (int dt = 0; dt < DT; ++dt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int d = dt * 8 + 2 * t + e;
                if (d < D) grow[d] = rlsr_float_to_bf16(acc[dt][2 * half + e]);
            }
    }
}

// Backward on tensor cores, part 2: dk and dv. Grid (ceil(kStride / 64), Hkv, B); warp w owns keys j0+16w.. of
// the block's 64. The block loops over the rep query heads sharing kv head kh and over query tiles of BM = 64
// (DMAX <= 64) or 32 queries, in a fixed order (deterministic, no atomics). Per tile: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ as
// accumulators (K, V fragments from shared memory), Pᵀ and dSᵀ re-packed as A operands of dv += Pᵀ·dO and
// dk += dSᵀ·Q, whose B operands are the tile staged transposed.
// Shared memory (bf16): sK 64 x (DMAX+8) | sV 64 x (DMAX+8) | sQ BM x (DMAX+8) | sdO BM x (DMAX+8) |
// sQT DMAX x (BM+8) | sdOT DMAX x (BM+8) | float sL[BM] | float sD[BM].
template <int DMAX, int BM>
__device__ __forceinline__ void am_backward_dkdv(const unsigned short* __restrict__ q,
                                                 const unsigned short* __restrict__ k,
                                                 const unsigned short* __restrict__ v,
                                                 const unsigned short* __restrict__ o, const float* __restrict__ lse,
                                                 const unsigned short* __restrict__ dout,
                                                 const int* __restrict__ mask, unsigned short* __restrict__ dk,
                                                 unsigned short* __restrict__ dv, int qLen, int kLen, int kStride,
                                                 int qOffset, int H, int Hkv, int D, float scale) {
    constexpr int BNK = 64, LDQ = DMAX + 8, LDT = BM + 8, KS = DMAX / 16, NQ = BM / 8, DT = DMAX / 8;
    constexpr int WARPS = AT_THREADS / 32;
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    unsigned short* sK = reinterpret_cast<unsigned short*>(rlsr_smem);
    unsigned short* sV = sK + BNK * LDQ;
    unsigned short* sQ = sV + BNK * LDQ;
    unsigned short* sdO = sQ + BM * LDQ;
    unsigned short* sQT = sdO + BM * LDQ;
    unsigned short* sdOT = sQT + DMAX * LDT;
    float* sL = reinterpret_cast<float*>(sdOT + DMAX * LDT);
    float* sD = sL + BM;

    const int j0 = blockIdx.x * BNK, kh = blockIdx.y, b = blockIdx.z;
    const int rep = H / Hkv;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const bool vec = am_vec(q, k, v, dout, D) && am_vec(o, dk, dv, q, D);
    const float c = scale * AT_LOG2E;
    const int kr0 = warp * 16 + g;  // this lane's keys: j0 + kr0 and j0 + kr0 + 8

    float gk[DT][4], gv[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
        for (int e = 0; e < 4; ++e) gk[dt][e] = gv[dt][e] = 0.f;

    if (j0 < kLen) {  // uniform over the block
        const int* mrow = mask == nullptr ? nullptr : mask + (long long) b * kStride + j0;
        const long long kfirst = at_krow(b, j0, kh, kStride, Hkv, D), kstride = (long long) Hkv * D;
        am_stage<BNK, DMAX, LDQ>(sK, k, kfirst, kstride, kLen - j0, mrow, D, vec);
        am_stage<BNK, DMAX, LDQ>(sV, v, kfirst, kstride, kLen - j0, mrow, D, vec);
        bool kok[2];
#pragma unroll
        for (int half = 0; half < 2; ++half) kok[half] = at_key_ok(mask, b, j0 + kr0 + 8 * half, kLen, kStride);
        const int iFirst = max(0, j0 - qOffset) / BM * BM;
        for (int hh = 0; hh < rep; ++hh) {
            const int h = kh * rep + hh;
            for (int i0 = iFirst; i0 < qLen; i0 += BM) {
                const int qn = min(BM, qLen - i0);
                const long long qfirst = at_qrow(b, i0, h, qLen, H, D), qstride = (long long) H * D;
                __syncthreads();  // the previous tile's staging is no longer read
                am_stage<BM, DMAX, LDQ>(sQ, q, qfirst, qstride, qn, nullptr, D, vec);
                am_stage<BM, DMAX, LDQ>(sdO, dout, qfirst, qstride, qn, nullptr, D, vec);
                am_stage_t<BM, DMAX, LDT>(sQT, q, qfirst, qstride, qn, nullptr, D, vec);
                am_stage_t<BM, DMAX, LDT>(sdOT, dout, qfirst, qstride, qn, nullptr, D, vec);
                for (int r = warp; r < BM; r += WARPS) {  // Di = dO·O and lse (log2 units), one warp per query
                    float part = 0.f;
                    if (r < qn)
                        for (int d = lane; d < D; d += 32)
                            part = fmaf(rlsr_bf16_to_float(dout[qfirst + r * qstride + d]),
                                        rlsr_bf16_to_float(o[qfirst + r * qstride + d]), part);
                    part = rlsr_warp_sum(part);
                    if (lane == 0) {
                        sD[r] = part;
                        sL[r] = r < qn ? lse[((long long) b * H + h) * qLen + i0 + r] * AT_LOG2E : RLSR_POS_INF;
                    }
                }
                __syncthreads();

                float sc[NQ][4], dp[NQ][4];
#pragma unroll
                for (int nt = 0; nt < NQ; ++nt) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) sc[nt][e] = dp[nt][e] = 0.f;
                    if (nt * 8 < qn) {
#pragma unroll
                        for (int ks = 0; ks < KS; ++ks) {
                            if (ks * 16 < D) {
                                unsigned af[4], bf[2];
                                am_frag_a(af, sK, LDQ, warp * 16, ks * 16);
                                am_frag_b(bf, sQ, LDQ, nt * 8, ks * 16);
                                rlsr_mma_m16n8k16_bf16(sc[nt], af, bf, sc[nt]);
                                am_frag_a(af, sV, LDQ, warp * 16, ks * 16);
                                am_frag_b(bf, sdO, LDQ, nt * 8, ks * 16);
                                rlsr_mma_m16n8k16_bf16(dp[nt], af, bf, dp[nt]);
                            }
                        }
                    }
                }
                // Pᵀ over sc, dSᵀ over dp
#pragma unroll
                for (int nt = 0; nt < NQ; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int qi = nt * 8 + 2 * t + (e & 1), half = e >> 1;
                        const float l2 = sL[qi];
                        float p = 0.f, ds = 0.f;
                        if (kok[half] && j0 + kr0 + 8 * half <= qOffset + i0 + qi && l2 != RLSR_POS_INF) {
                            p = at_exp2(fmaf(sc[nt][e], c, -l2));
                            ds = p * (dp[nt][e] - sD[qi]) * scale;
                        }
                        sc[nt][e] = p;
                        dp[nt][e] = ds;
                    }
#pragma unroll
                for (int kk = 0; kk < NQ / 2; ++kk) {
                    if (kk * 16 < qn) {
                        const unsigned pa[4] = {rlsr_pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]),
                                                rlsr_pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]),
                                                rlsr_pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                                rlsr_pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
                        const unsigned da[4] = {rlsr_pack_bf16x2(dp[2 * kk][0], dp[2 * kk][1]),
                                                rlsr_pack_bf16x2(dp[2 * kk][2], dp[2 * kk][3]),
                                                rlsr_pack_bf16x2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                                                rlsr_pack_bf16x2(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
                        for (int dt = 0; dt < DT; ++dt) {
                            if (dt * 8 < D) {
                                unsigned bf[2];
                                am_frag_b(bf, sdOT, LDT, dt * 8, kk * 16);
                                rlsr_mma_m16n8k16_bf16(gv[dt], pa, bf, gv[dt]);
                                am_frag_b(bf, sQT, LDT, dt * 8, kk * 16);
                                rlsr_mma_m16n8k16_bf16(gk[dt], da, bf, gk[dt]);
                            }
                        }
                    }
                }
            }
        }
    }

#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int j = j0 + kr0 + 8 * half;
        if (j >= kStride) continue;
        const long long at = at_krow(b, j, kh, kStride, Hkv, D);
#pragma unroll
        for (int dt = 0; dt < DT; ++dt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int d = dt * 8 + 2 * t + e;
                if (d < D) {
                    dk[at + d] = rlsr_float_to_bf16(gk[dt][2 * half + e]);
                    dv[at + d] = rlsr_float_to_bf16(gv[dt][2 * half + e]);
                }
            }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points. Dynamic shared memory in bytes (the Java launcher computes the same):
//   forward  (ROWS 64): 4 * (64*DMAX + 32*(DMAX+4) + 32*DMAX + 32*68)
//   decode   (ROWS 16): 4 * (16*DMAX + 32*(DMAX+4) + 32*DMAX + 32*20)
//   dq       (ROWS 16*AT_DQ_RPT(DMAX)): 4 * (2*ROWS*DMAX + 2*32*(DMAX+4) + 32*(ROWS+4))
//   dkdv     (KROWS 32, QCOLS 32): 4 * (2*32*DMAX + 2*32*(DMAX+4) + 2*32*36 + 2*32)
//   forward_mma: 2 * (128*(DMAX+8) + DMAX*72) + 4*64
//   dq_mma   (T = AM_BWD_TILE(DMAX)): 2 * ((128 + 2*T)*(DMAX+8) + DMAX*(T+8)) + 4*T
//   dkdv_mma (T = AM_BWD_TILE(DMAX)): 2 * ((128 + 2*T)*(DMAX+8) + 2*DMAX*(T+8)) + 8*T
#define AT_DQ_RPT(DMAX) ((DMAX) <= 64 ? 4 : 2)

// One entry point per (kernel, dtype, DMAX), written out (the emulator's build finds kernels by their literal
// `extern "C" __global__` definitions). Parameter lists:
//   forward (also bidirectional: causal = 0, lse may be null): q, k, v, mask, out, lse, qLen, kLen, kStride,
//       qOffset, H, Hkv, D, scale, causal                                       grid (ceil(qLen/64), H, B)
//   decode: q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, splitLen,
//       kLenDev (null: kLen and qOffset as given; else kLen = *kLenDev, qOffset = kLen - qLen)
//                                                                               grid (splits, Hkv*rowGroups, B)
//   backward_dq: q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv, D, scale
//                                                                               grid (ceil(qLen/ROWS), H, B)
//   backward_dkdv: q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D, scale
//                                                                               grid (ceil(kStride/32 or 64), Hkv, B)
#define AM_BWD_TILE(DMAX) ((DMAX) <= 64 ? 64 : 32)  // tensor-core dq key tile and dkdv query tile: registers < 255
typedef unsigned short at_bf16;

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d32_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, int qLen, int kLen,
    int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrF32, 32>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d32_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrF32, 32>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d32_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrF32, 32, AT_DQ_RPT(32)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d32_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dk, float* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrF32, 32, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d64_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, int qLen, int kLen,
    int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrF32, 64>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d64_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrF32, 64>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d64_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrF32, 64, AT_DQ_RPT(64)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d64_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dk, float* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrF32, 64, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d96_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, int qLen, int kLen,
    int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrF32, 96>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d96_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrF32, 96>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d96_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrF32, 96, AT_DQ_RPT(96)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d96_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dk, float* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrF32, 96, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d128_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, int qLen, int kLen,
    int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrF32, 128>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d128_f32_kernel(
    const float* q, const float* k, const float* v, const int* mask, float* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrF32, 128>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d128_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrF32, 128, AT_DQ_RPT(128)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d128_f32_kernel(
    const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
    const int* mask, float* dk, float* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrF32, 128, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d32_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrBF16, 32>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d32_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrBF16, 32>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d32_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrBF16, 32, AT_DQ_RPT(32)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d32_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrBF16, 32, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d64_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrBF16, 64>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d64_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrBF16, 64>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d64_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrBF16, 64, AT_DQ_RPT(64)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d64_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrBF16, 64, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d96_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrBF16, 96>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d96_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrBF16, 96>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d96_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrBF16, 96, AT_DQ_RPT(96)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d96_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrBF16, 96, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d128_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    at_forward<RlsrBF16, 128>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d128_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, float* part_ml,
    float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int splitLen,
    const int* kLenDev) {
    at_decode<RlsrBF16, 128>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale,
                       splitLen, kLenDev);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d128_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    at_backward_dq<RlsrBF16, 128, AT_DQ_RPT(128)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,
                                         D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d128_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    at_backward_dkdv<RlsrBF16, 128, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                    scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_mma_d32_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    am_forward<32>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_mma_d32_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    am_backward_dq<32, AM_BWD_TILE(32)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                        scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_mma_d32_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    am_backward_dkdv<32, AM_BWD_TILE(32)>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H,
                                          Hkv, D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_mma_d64_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    am_forward<64>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_mma_d64_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    am_backward_dq<64, AM_BWD_TILE(64)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                        scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_mma_d64_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    am_backward_dkdv<64, AM_BWD_TILE(64)>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H,
                                          Hkv, D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_mma_d96_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    am_forward<96>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_mma_d96_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    am_backward_dq<96, AM_BWD_TILE(96)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                        scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_mma_d96_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    am_backward_dkdv<96, AM_BWD_TILE(96)>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H,
                                          Hkv, D, scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_mma_d128_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const int* mask, at_bf16* out, float* lse, int qLen,
    int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {
    am_forward<128>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_mma_d128_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale) {
    am_backward_dq<128, AM_BWD_TILE(128)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv, D,
                                        scale);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_mma_d128_bf16_kernel(
    const at_bf16* q, const at_bf16* k, const at_bf16* v, const at_bf16* o, const float* lse, const at_bf16* dout,
    const int* mask, at_bf16* dk, at_bf16* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,
    float scale) {
    am_backward_dkdv<128, AM_BWD_TILE(128)>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H,
                                          Hkv, D, scale);
}

// launch: grid ceil(rows / 4), blockDim 128; rows = B*H*qLen
extern "C" __global__ void __launch_bounds__(AT_THREADS)
attention_decode_combine_f32_kernel(const float* part_ml, const float* part_acc, float* out, float* lse, int rows,
                                    int qLen, int H, int D, int splits) {
    at_combine<RlsrF32>(part_ml, part_acc, out, lse, rows, qLen, H, D, splits);
}

extern "C" __global__ void __launch_bounds__(AT_THREADS)
attention_decode_combine_bf16_kernel(const float* part_ml, const float* part_acc, unsigned short* out, float* lse,
                                     int rows, int qLen, int H, int D, int splits) {
    at_combine<RlsrBF16>(part_ml, part_acc, out, lse, rows, qLen, H, D, splits);
}
