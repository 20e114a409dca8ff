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
// Scores are kept in log2 units: Q (or K) is multiplied by scale*log2(e) when its tile is staged, so a probability
// is one ex2 of (s - m) and lse = m*ln2 + ln(l) at the end.
//
// SIMT design, shared by every kernel here: 128 threads = 16 row groups (ty) x 8 lanes (tx). A thread owns RPT
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
        if (d < D && at_key_ok(mask, b, j, kEnd, kStride)) x = E::load(src, at_krow(b, j, kh, kStride, Hkv, D) + d) * mul;
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
__device__ __forceinline__ void at_forward_tile(const typename E::T* __restrict__ q, const typename E::T* __restrict__ k,
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
            for (int kk = 0; kk < AT_KPT; ++kk) kv[kk] = *reinterpret_cast<const float4*>(sK + (tx + AT_TX * kk) * LDK + d);
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
template <typename E, int DMAX>
__device__ __forceinline__ void at_decode(const typename E::T* q, const typename E::T* k, const typename E::T* v,
                                          const int* mask, typename E::T* out, float* lse, float* part_ml,
                                          float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv,
                                          int D, float scale, int splitLen) {
    constexpr int ROWS = AT_TY;
    const int split = blockIdx.x, kh = blockIdx.y % Hkv, rg = blockIdx.y / Hkv, b = blockIdx.z;
    const int rep = H / Hkv;
    const int rowBase = rg * ROWS, rowCount = min(ROWS, rep * qLen - rowBase);
    const int kAll = min(kLen, qOffset + qLen);
    const int kBegin = split * splitLen, kEnd = min(kAll, kBegin + splitLen);
    at_forward_tile<E, DMAX, 1>(q, k, v, mask, out, lse, part_ml, part_acc, b, kh, rowBase, rowCount, kBegin, kEnd,
                                split, gridDim.x, qLen, kStride, qOffset, H, Hkv, D, scale, 1);
}

// Combine of the decode splits: one warp per (b, h, i) row, grid ceil(B*H*qLen / 4) x 128 threads.
// M = max m_s, L = sum l_s 2^(m_s - M), out = sum acc_s 2^(m_s - M) / L, lse = M ln2 + ln L (+inf, zeros if L = 0).
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
            for (int s = 0; s < splits; ++s) x = fmaf(acc[(long long) s * D + d], at_exp2(ml[2 * s] - mx), x);
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
// Entry points. Dynamic shared memory in bytes (the Java launcher computes the same):
//   forward  (ROWS 64): 4 * (64*DMAX + 32*(DMAX+4) + 32*DMAX + 32*68)
//   decode   (ROWS 16): 4 * (16*DMAX + 32*(DMAX+4) + 32*DMAX + 32*20)
//   dq       (ROWS 16*AT_DQ_RPT(DMAX)): 4 * (2*ROWS*DMAX + 2*32*(DMAX+4) + 32*(ROWS+4))
//   dkdv     (KROWS 32, QCOLS 32): 4 * (2*32*DMAX + 2*32*(DMAX+4) + 2*32*36 + 2*32)
#define AT_DQ_RPT(DMAX) ((DMAX) <= 64 ? 4 : 2)

#define AT_ENTRY_POINTS(DM, TAG, E)                                                                                   \
    extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_forward_d##DM##_##TAG##_kernel(               \
        const E::T* q, const E::T* k, const E::T* v, const int* mask, E::T* out, float* lse, int qLen, int kLen,     \
        int kStride, int qOffset, int H, int Hkv, int D, float scale, int causal) {                                  \
        at_forward<E, DM>(q, k, v, mask, out, lse, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, causal);          \
    }                                                                                                                 \
    extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_decode_d##DM##_##TAG##_kernel(                \
        const E::T* q, const E::T* k, const E::T* v, const int* mask, E::T* out, float* lse, float* part_ml,         \
        float* part_acc, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D, float scale,           \
        int splitLen) {                                                                                               \
        at_decode<E, DM>(q, k, v, mask, out, lse, part_ml, part_acc, qLen, kLen, kStride, qOffset, H, Hkv, D, scale, \
                         splitLen);                                                                                   \
    }                                                                                                                 \
    extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dq_d##DM##_##TAG##_kernel(           \
        const E::T* q, const E::T* k, const E::T* v, const E::T* o, const float* lse, const E::T* dout,              \
        const int* mask, E::T* dq, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,               \
        float scale) {                                                                                                \
        at_backward_dq<E, DM, AT_DQ_RPT(DM)>(q, k, v, o, lse, dout, mask, dq, qLen, kLen, kStride, qOffset, H, Hkv,  \
                                             D, scale);                                                               \
    }                                                                                                                 \
    extern "C" __global__ void __launch_bounds__(AT_THREADS) attention_backward_dkdv_d##DM##_##TAG##_kernel(         \
        const E::T* q, const E::T* k, const E::T* v, const E::T* o, const float* lse, const E::T* dout,              \
        const int* mask, E::T* dk, E::T* dv, int qLen, int kLen, int kStride, int qOffset, int H, int Hkv, int D,     \
        float scale) {                                                                                                \
        at_backward_dkdv<E, DM, 2, 4>(q, k, v, o, lse, dout, mask, dk, dv, qLen, kLen, kStride, qOffset, H, Hkv, D,  \
                                      scale);                                                                         \
    }

AT_ENTRY_POINTS(32, f32, RlsrF32)
AT_ENTRY_POINTS(64, f32, RlsrF32)
AT_ENTRY_POINTS(96, f32, RlsrF32)
AT_ENTRY_POINTS(128, f32, RlsrF32)
AT_ENTRY_POINTS(32, bf16, RlsrBF16)
AT_ENTRY_POINTS(64, bf16, RlsrBF16)
AT_ENTRY_POINTS(96, bf16, RlsrBF16)
AT_ENTRY_POINTS(128, bf16, RlsrBF16)

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
