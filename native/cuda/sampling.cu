// Token sampling on the device: logits (B,V) fp32 or bf16 -> tokens (B) int32 and their log-probabilities (B) fp32,
// with temperature, top-k and top-p per row, a counter-based generator, stop tokens and finished rows.
// SamplingReference (Java) is the CPU twin and states the contract; the two draw the SAME token for the same inputs,
// because every decision below is made in integers or in float operations that round identically on both sides.
//
// Exactness. The weight of token i is an integer, w_i = floor(2^40 * 2^y) with y = (x_i - xmax) * s and
// s = log2(e) / T in fp32, where 2^y is computed by sm_exp2w below: explicit fmaf everywhere a product feeds a sum
// (NVRTC contracts a*b+c into an fma by default, the emulator's g++ may too; an explicit fmaf is one IEEE operation on
// the GPU, in the emulator and in Java's Math.fma), a degree-6 polynomial on [-0.5, 0.5] (Cephes exp2f, 0.67 ulp)
// and an exact power-of-two scaling. Tokens below 2^-40 of the most likely one get weight 0 and are never drawn
// (they hold at most V * 2^-40 ~ 1.4e-7 of the mass at V = 152k). Masses are sums of weights in 64-bit integers
// (< V * 2^40 < 2^62), which no reduction order can change. So the device's parallel reductions, radix histograms
// and scans compute exactly the numbers of the reference's sequential loops and sort.
//
// Order. Tokens are ranked by (logit descending, index ascending): -0 equals +0, equal logits rank by index. Top-k
// keeps the first k in this order; top-p then keeps, of those, the first j with (mass ranked before j) < limit,
// limit = floor(double(M_k) * double(top_p)), M_k the integer mass of the top-k set (the first token always stays).
// A token is drawn from the kept set with probability w_i / M_kept: u = floor(r * M_kept / 2^64) for the row's
// 64-bit random r, token = the first index i (index order) where the running kept mass exceeds u.
//
// Generator. Philox4x32-10 (Salmon et al., SC'11; Random123's constants), key = the 64-bit seed, counter = (row,
// step, 0, 0); r = x0 | x1 << 32 of its output. step is per row, read from device memory and incremented by this
// kernel, so a CUDA graph replays the same launch every decode step.
//
// No sorting. One 1024-thread block per row: pass A (max, NaN/inf check, argmax), pass B (weights: total mass,
// count and lowest rank of the tokens with w > 0, mass per 1024-vector tile), then, only when a filter is on, a radix
// select on the rank key r = key(xmax) - key(x) (11-bit digits, counts and masses per bin in shared memory; 1-3
// passes for fp32 keys, 1-2 for bf16's 16-bit keys) for the k-th token and for the top-p crossing, and an index-order
// search of the ties at a boundary when only some of them stay. The draw walks the tile masses, then one tile (no
// filter), or the row in index order until it finds the token (filters on).
#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

#define SM_THREADS 1024
#define SM_WARPS (SM_THREADS / 32)
#define SM_UNROLL 4
#define SM_DIGIT 11
#define SM_BINS (1 << SM_DIGIT)
// V <= 2^22 (Sampling.MAX_VOCAB): one head tile, at most 1024 body tiles of 4096 fp32, one tail tile
#define SM_MAX_TILES 1026
#define SM_ONE (1ull << 40)
#define SM_ALL 0x7fffffff
#define SM_FULL 0xffffffffu
// weight below 2^-40 of the maximum: 0
#define SM_Y_MIN (-40.f)

// ---- the integer weight: floor(2^40 * 2^((x - xmax) * s)), bit for bit SamplingReference.weight
__device__ __forceinline__ unsigned long long sm_weight(float x, float xmax, float s) {
    const float d = x - xmax;
    if (d == 0.f) return SM_ONE;  // the maximum itself, also when s is +inf (T below ~1e-38)
    const float y = d * s;
    if (!(y >= SM_Y_MIN)) return 0ull;  // below 2^-40, -inf, or -inf * 0 (T = +inf)
    const float t = fmaf(d, s, 0.5f);
    int n = (int) t;
    if ((float) n > t) n -= 1;  // n = floor(y + 0.5) in [-40, 0]
    const float f = fmaf(d, s, -(float) n);  // y - n in [-0.5, 0.5]
    float p = fmaf(__uint_as_float(0x3920fddeu), f, __uint_as_float(0x3aaf9f29u));
    p = fmaf(p, f, __uint_as_float(0x3c1d96a6u));
    p = fmaf(p, f, __uint_as_float(0x3d635774u));
    p = fmaf(p, f, __uint_as_float(0x3e75fdeeu));
    p = fmaf(p, f, __uint_as_float(0x3f317218u));
    p = fmaf(p, f, 1.f);  // 2^f in [0.70, 1.42]
    // 2^(n + 40) is exact and p * 2^(n+40) < 2^41: the conversion truncates an exactly scaled float
    return (unsigned long long) (p * __uint_as_float((unsigned) (n + 40 + 127) << 23));
}

// Order of values as unsigned integers (larger value, larger key); -0 as +0. NaN never reaches it.
__device__ __forceinline__ unsigned sm_key32(float x) {
    const unsigned b = x == 0.f ? 0u : __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float sm_unkey32(unsigned k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Rank key relative to the maximum, r = key(xmax) - key(x): 0 for the maximum, growing as x falls. bf16 values are
// ordered by the top 16 bits of their fp32 key (KSH = 16), so their r fits 16 bits and the radix select takes fewer
// passes; the order is the same.
template <int KSH>
__device__ __forceinline__ unsigned sm_rank(float x, unsigned kmax) {
    return (kmax >> KSH) - (sm_key32(x) >> KSH);
}

// In a kept prefix that ends at rank rb, where ties at rb stay up to index cut (SM_ALL: all of them).
__device__ __forceinline__ bool sm_in(unsigned r, int i, unsigned rb, int cut) {
    return r < rb || (r == rb && i <= cut);
}

// ---- Philox4x32-10, counter (c0, c1, 0, 0), key (k0, k1): the first two output words as one 64-bit number
__device__ __forceinline__ unsigned long long sm_philox(unsigned k0, unsigned k1, unsigned c0, unsigned c1) {
    unsigned c2 = 0u, c3 = 0u;
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const unsigned long long p0 = (unsigned long long) 0xD2511F53u * c0;
        const unsigned long long p1 = (unsigned long long) 0xCD9E8D57u * c2;
        const unsigned n0 = (unsigned) (p1 >> 32) ^ c1 ^ k0;
        const unsigned n2 = (unsigned) (p0 >> 32) ^ c3 ^ k1;
        c1 = (unsigned) p1;
        c3 = (unsigned) p0;
        c0 = n0;
        c2 = n2;
    }
    return ((unsigned long long) c1 << 32) | c0;
}

// floor(a * b / 2^64), exactly (Java's Math.unsignedMultiplyHigh)
__device__ __forceinline__ unsigned long long sm_mulhi64(unsigned long long a, unsigned long long b) {
    const unsigned long long al = a & 0xffffffffull, ah = a >> 32, bl = b & 0xffffffffull, bh = b >> 32;
    const unsigned long long ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    const unsigned long long mid = (ll >> 32) + (lh & 0xffffffffull) + (hl & 0xffffffffull);
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}

// ---- block primitives (1024 threads = 32 full warps; every thread of the block calls them)
__device__ __forceinline__ unsigned long long sm_shfl_xor64(unsigned long long v, int m) {
    const unsigned lo = __shfl_xor_sync(SM_FULL, (unsigned) v, m);
    const unsigned hi = __shfl_xor_sync(SM_FULL, (unsigned) (v >> 32), m);
    return ((unsigned long long) hi << 32) | lo;
}

__device__ __forceinline__ unsigned long long sm_shfl_up64(unsigned long long v, int d) {
    const unsigned lo = __shfl_up_sync(SM_FULL, (unsigned) v, d);
    const unsigned hi = __shfl_up_sync(SM_FULL, (unsigned) (v >> 32), d);
    return ((unsigned long long) hi << 32) | lo;
}

__device__ __forceinline__ unsigned long long sm_warp_sum64(unsigned long long v) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) v += sm_shfl_xor64(v, m);
    return v;
}

__device__ __forceinline__ unsigned long long sm_warp_max64(unsigned long long v) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
        const unsigned long long o = sm_shfl_xor64(v, m);
        v = o > v ? o : v;
    }
    return v;
}

// Sum (MAX = false) or maximum of v over the block, returned to every thread. red: __shared__ [SM_WARPS + 1].
template <bool MAX>
__device__ __forceinline__ unsigned long long sm_block_reduce64(unsigned long long v, unsigned long long* red) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    v = MAX ? sm_warp_max64(v) : sm_warp_sum64(v);
    __syncthreads();  // red may still be read by a previous call
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = red[lane];
        v = MAX ? sm_warp_max64(v) : sm_warp_sum64(v);
        if (lane == 0) red[SM_WARPS] = v;
    }
    __syncthreads();
    return red[SM_WARPS];
}

// Exclusive prefix of v in thread order; *total gets the block's sum. red: __shared__ [SM_WARPS + 1].
__device__ __forceinline__ unsigned long long sm_block_scan64(unsigned long long v, unsigned long long* red,
                                                              unsigned long long* total) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    unsigned long long incl = v;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        const unsigned long long o = sm_shfl_up64(incl, d);
        if (lane >= d) incl += o;
    }
    __syncthreads();  // red may still be read by a previous call
    if (lane == 31) red[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        const unsigned long long wv = red[lane];
        unsigned long long wi = wv;
#pragma unroll
        for (int d = 1; d < 32; d <<= 1) {
            const unsigned long long o = sm_shfl_up64(wi, d);
            if (lane >= d) wi += o;
        }
        red[lane] = wi - wv;
        if (lane == 31) red[SM_WARPS] = wi;
    }
    __syncthreads();
    *total = red[SM_WARPS];
    return red[warp] + incl - v;
}

// ---- one row: a scalar head (before the first 16-byte boundary), nvec 16-byte vectors, a scalar tail. Tiles for
// the index-order searches: 0 = head, 1..nbody = 1024 vectors each (thread t holds vector t of the tile, so thread
// order is index order), nbody + 1 = tail.
template <typename A>
struct SmRow {
    const typename A::T* x;
    const uint4* vx;
    int v, head, nvec, nbody, tail0;
};

// Calls fn(x, index) on every element of the row, 4 vectors in flight per thread. Order-independent uses only.
template <typename A, typename F>
__device__ __forceinline__ void sm_for_each(const SmRow<A>& row, F& fn) {
    const int t = threadIdx.x;
    if (t < row.head) fn(A::load(row.x, t), t);
    if (row.tail0 + t < row.v) fn(A::load(row.x, row.tail0 + t), row.tail0 + t);
    for (int g = 0; g < row.nbody; g += SM_UNROLL) {
        uint4 r[SM_UNROLL];
#pragma unroll
        for (int u = 0; u < SM_UNROLL; ++u) {
            const int k = (g + u) * SM_THREADS + t;
            r[u] = k < row.nvec ? __ldg(row.vx + k) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int u = 0; u < SM_UNROLL; ++u) {
            const int k = (g + u) * SM_THREADS + t;
            if (k < row.nvec) {
                float f[A::PER16];
                A::unpack(r[u], f);
                const int base = row.head + k * A::PER16;
#pragma unroll
                for (int j = 0; j < A::PER16; ++j) fn(f[j], base + j);
            }
        }
    }
}

// Shared memory of a block, passed to the helpers.
struct SmShared {
    unsigned long long* red;    // [SM_WARPS + 1]
    unsigned long long* tiles;  // [SM_MAX_TILES] weight per tile
    unsigned* cnt;              // [SM_BINS]
    unsigned long long* mass;   // [SM_BINS]
    int* found;                 // [1]
    unsigned long long* sval;   // [4] broadcast values
};

// The first index of tile q (index order) where the running metric reaches need (>= 1), or -1 with *total = the
// tile's metric when it holds less. Uniform: every thread gets the same answer.
template <typename A, typename M>
__device__ int sm_find_in_tile(const SmRow<A>& row, int q, const M& metric, unsigned long long need,
                               unsigned long long* total, const SmShared& sh) {
    const int t = threadIdx.x;
    if (q == 0 || q == row.nbody + 1) {  // head or tail: at most 7 elements, one thread
        const int from = q == 0 ? 0 : row.tail0, to = q == 0 ? row.head : row.v;
        __syncthreads();  // found/sval may still be read by a previous call
        if (t == 0) {
            unsigned long long acc = 0ull;
            int at = -1;
            for (int i = from; i < to; ++i) {
                acc += metric(A::load(row.x, i), i);
                if (at < 0 && acc >= need) at = i;
            }
            *sh.found = at;
            sh.sval[0] = acc;
        }
        __syncthreads();
        *total = sh.sval[0];
        return *sh.found;
    }
    const int k = (q - 1) * SM_THREADS + t;
    float f[A::PER16];
    unsigned long long sum = 0ull;
    if (k < row.nvec) {
        A::unpack(__ldg(row.vx + k), f);
#pragma unroll
        for (int j = 0; j < A::PER16; ++j) sum += metric(f[j], row.head + k * A::PER16 + j);
    }
    unsigned long long tot;
    const unsigned long long excl = sm_block_scan64(sum, sh.red, &tot);
    if (k < row.nvec && excl < need && excl + sum >= need) {  // exactly one thread holds the crossing
        unsigned long long acc = excl;
        for (int j = 0; j < A::PER16; ++j) {
            acc += metric(f[j], row.head + k * A::PER16 + j);
            if (acc >= need) {
                *sh.found = row.head + k * A::PER16 + j;
                break;
            }
        }
    }
    __syncthreads();
    *total = tot;
    return tot >= need ? *sh.found : -1;
}

// The first index (index order, tiles from q0 on) where the running metric reaches need; -1 if it never does.
template <typename A, typename M>
__device__ int sm_find(const SmRow<A>& row, int q0, const M& metric, unsigned long long need, const SmShared& sh) {
    for (int q = q0; q <= row.nbody + 1; ++q) {
        unsigned long long tot;
        const int at = sm_find_in_tile(row, q, metric, need, &tot, sh);
        if (at >= 0) return at;
        need -= tot;
    }
    return -1;
}

// The first entry b of a[0, n) (n <= 2048) where the running sum reaches need: returns b, *before = sum of a[0, b).
// Uniform. Requires sum(a) >= need.
template <typename T>
__device__ int sm_find_in_array(const T* a, int n, unsigned long long need, unsigned long long* before,
                                const SmShared& sh) {
    const int i0 = 2 * threadIdx.x;
    const unsigned long long a0 = i0 < n ? (unsigned long long) a[i0] : 0ull;
    const unsigned long long a1 = i0 + 1 < n ? (unsigned long long) a[i0 + 1] : 0ull;
    unsigned long long tot;
    const unsigned long long excl = sm_block_scan64(a0 + a1, sh.red, &tot);
    if (excl < need && excl + a0 + a1 >= need) {
        const bool first = excl + a0 >= need;
        *sh.found = first ? i0 : i0 + 1;
        sh.sval[0] = first ? excl : excl + a0;
    }
    __syncthreads();
    *before = sh.sval[0];
    const int b = *sh.found;
    __syncthreads();  // found/sval are rewritten by the next call
    return b;
}

// Sum of a[0, n) over the block (n <= 2048).
template <typename T>
__device__ unsigned long long sm_sum_array(const T* a, int n, const SmShared& sh) {
    const int i0 = 2 * threadIdx.x;
    unsigned long long v = i0 < n ? (unsigned long long) a[i0] : 0ull;
    if (i0 + 1 < n) v += (unsigned long long) a[i0 + 1];
    return sm_block_reduce64<false>(v, sh.red);
}

// ---- per-element functors of the passes
struct SmMaxFn {  // pass A: the largest (key, -index), or all ones when a NaN is present
    unsigned long long best;
    __device__ void operator()(float x, int i) {
        const unsigned long long c = isnan(x) ? ~0ull
                                              : (((unsigned long long) sm_key32(x) << 32) | (SM_FULL - (unsigned) i));
        best = c > best ? c : best;
    }
};

template <int KSH>
struct SmLiveFn {  // pass B outside the body tiles' sums: mass, live count, largest live rank
    float xmax, s;
    unsigned kmax;
    unsigned long long sum;
    unsigned live, rlive;
    __device__ void operator()(float x, int) {
        const unsigned long long w = sm_weight(x, xmax, s);
        sum += w;
        if (w != 0ull) {
            live += 1u;
            const unsigned r = sm_rank<KSH>(x, kmax);
            rlive = r > rlive ? r : rlive;
        }
    }
};

template <int KSH>
struct SmHistFn {  // one radix level: count and mass per digit of the candidates under the current prefix
    float xmax, s;
    unsigned kmax, rlive, rres, prefix;
    int cutres, shift, hishift;  // hishift = shift + digit bits (32: no prefix yet)
    unsigned mask;
    unsigned* cnt;
    unsigned long long* mass;
    __device__ void operator()(float x, int i) {
        const unsigned r = sm_rank<KSH>(x, kmax);
        if (r > rlive || !sm_in(r, i, rres, cutres)) return;
        if (hishift < 32 && (r >> hishift) != prefix) return;
        const unsigned bin = (r >> shift) & mask;
        atomicAdd(&cnt[bin], 1u);
        const unsigned long long w = sm_weight(x, xmax, s);
        if (w != 0ull) atomicAdd(&mass[bin], w);
    }
};

template <int KSH>
struct SmTieFn {  // candidates at rank rt, counted in index order
    unsigned kmax, rlive, rt, rres;
    int cutres;
    __device__ unsigned long long operator()(float x, int i) const {
        const unsigned r = sm_rank<KSH>(x, kmax);
        return (r == rt && r <= rlive && sm_in(r, i, rres, cutres)) ? 1ull : 0ull;
    }
};

template <int KSH>
struct SmDrawFn {  // weight of the kept tokens
    float xmax, s;
    unsigned kmax, rk, rp;
    int cutk, cutp;
    __device__ unsigned long long operator()(float x, int i) const {
        const unsigned r = sm_rank<KSH>(x, kmax);
        if (!sm_in(r, i, rk, cutk) || !sm_in(r, i, rp, cutp)) return 0ull;
        return sm_weight(x, xmax, s);
    }
};

struct SmAllFn {  // weight of every token
    float xmax, s;
    __device__ unsigned long long operator()(float x, int) const { return sm_weight(x, xmax, s); }
};

// Result of a selection: the boundary rank, the last index kept among its ties, and the mass kept up to it.
struct SmSel {
    unsigned r;
    int cut;
    unsigned long long mass;
};

// The first token in rank order (r ascending, index ascending) among the candidates (live, and in the prefix (rres,
// cutres)) where the running count (MASS = false) or mass (MASS = true) reaches target. Requires the candidates' total
// to reach it.
template <typename A, int KSH, bool MASS>
__device__ SmSel sm_select(const SmRow<A>& row, float xmax, float s, unsigned kmax, unsigned rlive, unsigned rres,
                           int cutres, unsigned long long target, const SmShared& sh) {
    int nbits = 1;
    while (nbits < 32 && (rlive >> nbits) != 0u) ++nbits;
    int shift = nbits > SM_DIGIT ? nbits - SM_DIGIT : 0;
    int bits = nbits - shift;
    unsigned prefix = 0u;
    unsigned long long acc = 0ull, accMass = 0ull, binCount = 0ull, binMass = 0ull;
    for (;;) {
        const int nb = 1 << bits;
        for (int b = threadIdx.x; b < nb; b += SM_THREADS) {
            sh.cnt[b] = 0u;
            sh.mass[b] = 0ull;
        }
        __syncthreads();
        SmHistFn<KSH> fn = {xmax, s, kmax, rlive, rres, prefix, cutres, shift, shift + bits, (unsigned) nb - 1u,
                            sh.cnt, sh.mass};
        sm_for_each(row, fn);
        __syncthreads();
        unsigned long long before;
        const int bin = MASS ? sm_find_in_array(sh.mass, nb, target - acc, &before, sh)
                             : sm_find_in_array(sh.cnt, nb, target - acc, &before, sh);
        acc += before;
        accMass += MASS ? before : sm_sum_array(sh.mass, bin, sh);
        binCount = sh.cnt[bin];
        binMass = sh.mass[bin];
        prefix = (prefix << bits) | (unsigned) bin;
        __syncthreads();  // every thread has read the bins before the next level clears them
        if (shift == 0) break;
        bits = shift < SM_DIGIT ? shift : SM_DIGIT;
        shift -= bits;
    }
    // ties at the boundary rank share one logit, hence one weight
    const unsigned long long w = binMass / binCount;
    const unsigned long long n = MASS ? (target - acc + w - 1ull) / w : target - acc;
    SmSel sel;
    sel.r = prefix;
    sel.mass = accMass + n * w;
    if (n < binCount) {
        SmTieFn<KSH> tie = {kmax, rlive, prefix, rres, cutres};
        sel.cut = sm_find(row, 0, tie, n, sh);
    } else {
        sel.cut = SM_ALL;
    }
    return sel;
}


template <typename A, int KSH>
__device__ __forceinline__ void sampling_row(const typename A::T* __restrict__ logits, int rows, int v, int group,
                                             const float* __restrict__ temperature, const int* __restrict__ topK,
                                             const float* __restrict__ topP, const int* __restrict__ stopIds,
                                             int stopCount, int padId, int* __restrict__ counters,
                                             int* __restrict__ finished, int* __restrict__ steps,
                                             int* __restrict__ tokens, float* __restrict__ logprobs,
                                             int* __restrict__ tokenHistory, float* __restrict__ logprobHistory,
                                             int historyLen) {
    __shared__ unsigned long long s_red[SM_WARPS + 1];
    __shared__ unsigned long long s_tiles[SM_MAX_TILES];
    __shared__ unsigned s_cnt[SM_BINS];
    __shared__ unsigned long long s_mass[SM_BINS];
    __shared__ int s_found;
    __shared__ unsigned long long s_val[4];
    const SmShared sh = {s_red, s_tiles, s_cnt, s_mass, &s_found, s_val};

    const int b = blockIdx.x;
    if (b >= rows) return;  // uniform across the block
    const int t = threadIdx.x;
    const int step = steps[b];
    const bool done = finished[b] != 0;
    __syncthreads();  // every thread has read steps[b] and finished[b] before thread 0 rewrites them

    int token = padId;
    bool bad = false;
    float xmax = 0.f, tt = 1.f;
    unsigned long long mAll = 1ull;
    SmRow<A> row;
    row.x = logits + (long long) (b / group) * v;
    row.v = v;
    if (!done) {
        row.head = (int) rlsr_head16(row.x, (int) sizeof(typename A::T), v);
        row.vx = reinterpret_cast<const uint4*>(row.x + row.head);
        row.nvec = (v - row.head) / A::PER16;
        row.nbody = (row.nvec + SM_THREADS - 1) / SM_THREADS;
        row.tail0 = row.head + row.nvec * A::PER16;

        // pass A: the maximum (first index on ties), any NaN
        SmMaxFn mx = {0ull};
        sm_for_each(row, mx);
        const unsigned long long best = sm_block_reduce64<true>(mx.best, sh.red);
        const unsigned kmax = (unsigned) (best >> 32);
        // a NaN, a +inf maximum or a row of -inf defines no distribution
        bad = best == ~0ull || kmax == sm_key32(RLSR_POS_INF) || kmax == sm_key32(RLSR_NEG_INF);
        if (!bad) {
            const int argmax = (int) (SM_FULL - (unsigned) best);
            xmax = sm_unkey32(kmax);
            const float temp = temperature[b];
            const bool greedy = !(temp > 0.f);
            tt = greedy ? 1.f : temp;
            const float s = __uint_as_float(0x3fb8aa3bu) / tt;  // log2(e) / T: an IEEE division on both sides

            // pass B: total mass, the live tokens (w > 0) and their largest rank, the mass of every tile
            for (int q = t; q < row.nbody + 2; q += SM_THREADS) sh.tiles[q] = 0ull;
            __syncthreads();
            SmLiveFn<KSH> lv = {xmax, s, kmax, 0ull, 0u, 0u};
            if (t == 0) {  // head and tail tiles, at most 7 elements each
                for (int i = 0; i < row.head; ++i) lv(A::load(row.x, i), i);
                sh.tiles[0] = lv.sum;
                for (int i = row.tail0; i < row.v; ++i) lv(A::load(row.x, i), i);
                sh.tiles[row.nbody + 1] = lv.sum - sh.tiles[0];
            }
            for (int g = 0; g < row.nbody; g += SM_UNROLL) {
                uint4 r[SM_UNROLL];
#pragma unroll
                for (int u = 0; u < SM_UNROLL; ++u) {
                    const int k = (g + u) * SM_THREADS + t;
                    r[u] = k < row.nvec ? __ldg(row.vx + k) : make_uint4(0u, 0u, 0u, 0u);
                }
#pragma unroll
                for (int u = 0; u < SM_UNROLL; ++u) {
                    if (g + u < row.nbody) {  // uniform: the warp sum below needs every lane
                        const int k = (g + u) * SM_THREADS + t;
                        const unsigned long long before = lv.sum;
                        if (k < row.nvec) {
                            float f[A::PER16];
                            A::unpack(r[u], f);
#pragma unroll
                            for (int j = 0; j < A::PER16; ++j) lv(f[j], row.head + k * A::PER16 + j);
                        }
                        const unsigned long long ws = sm_warp_sum64(lv.sum - before);
                        if ((t & 31) == 0 && ws != 0ull) atomicAdd(&sh.tiles[1 + g + u], ws);
                    }
                }
            }
            mAll = sm_block_reduce64<false>(lv.sum, sh.red);
            const unsigned live = (unsigned) sm_block_reduce64<false>(lv.live, sh.red);
            const unsigned rlive = (unsigned) sm_block_reduce64<true>(lv.rlive, sh.red);

            const int k = topK[b];
            if (greedy || k == 1) {
                token = argmax;
            } else {
                const float p = topP[b];
                const bool kOn = k > 0 && (unsigned) k < live;
                unsigned rk = SM_FULL, rp = SM_FULL;
                int cutk = SM_ALL, cutp = SM_ALL;
                unsigned long long mk = mAll;
                if (kOn) {
                    const SmSel sel = sm_select<A, KSH, false>(row, xmax, s, kmax, rlive, SM_FULL, SM_ALL,
                                                               (unsigned long long) k, sh);
                    rk = sel.r;
                    cutk = sel.cut;
                    mk = sel.mass;
                }
                unsigned long long mkept = mk;
                bool pOn = false;
                if (p < 1.f) {
                    const double lim = (double) mk * (double) p;
                    unsigned long long limit = lim > 0.0 ? (unsigned long long) lim : 0ull;
                    // limit 0 keeps the first token only, as limit 1 does (its weight is 2^40)
                    if (limit == 0ull) limit = 1ull;
                    if (limit <= mk) {  // else rounding put the limit above the mass: everything stays
                        pOn = true;
                        const SmSel sel = sm_select<A, KSH, true>(row, xmax, s, kmax, rlive, rk, cutk, limit, sh);
                        rp = sel.r;
                        cutp = sel.cut;
                        mkept = sel.mass;
                    }
                }
                const unsigned long long r64 = sm_philox((unsigned) counters[0], (unsigned) counters[1],
                                                         (unsigned) b, (unsigned) step);
                const unsigned long long need = sm_mulhi64(r64, mkept) + 1ull;
                if (!kOn && !pOn) {  // the tile masses of pass B lead to the one tile that holds the token
                    unsigned long long before, tot;
                    const int q = sm_find_in_array(sh.tiles, row.nbody + 2, need, &before, sh);
                    const SmAllFn all = {xmax, s};
                    token = sm_find_in_tile(row, q, all, need - before, &tot, sh);
                } else {
                    const SmDrawFn<KSH> kept = {xmax, s, kmax, rk, rp, cutk, cutp};
                    token = sm_find(row, 0, kept, need, sh);
                }
            }
        }
    }
    if (t == 0) {
        float logp = 0.f;
        bool end = bad;
        if (bad) {
            token = padId;
            logp = RLSR_NAN;
        } else if (!done) {
            // log_softmax(x / T)[token] before the filters (T = 1 for greedy rows), from the same integer mass
            logp = (A::load(row.x, token) - xmax) / tt - logf((float) mAll * __uint_as_float(0x2b800000u));
            for (int i = 0; i < stopCount; ++i) end = end || stopIds[i] == token;
        }
        if (!done && end) {
            finished[b] = 1;
            atomicSub(&counters[2], 1);
            if (bad) atomicAdd(&counters[3], 1);
        }
        tokens[b] = token;
        logprobs[b] = logp;
        if (step >= 0 && step < historyLen) {
            const long long at = (long long) b * historyLen + step;
            if (tokenHistory != nullptr) tokenHistory[at] = token;
            if (logprobHistory != nullptr) logprobHistory[at] = logp;
        }
        steps[b] = step + 1;
    }
}

// launch: grid B, block 1024
extern "C" __global__ void __launch_bounds__(SM_THREADS)
sampling_f32_kernel(const float* __restrict__ logits, int rows, int v, int group, const float* __restrict__ temperature,
                    const int* __restrict__ topK, const float* __restrict__ topP, const int* __restrict__ stopIds,
                    int stopCount, int padId, int* __restrict__ counters, int* __restrict__ finished,
                    int* __restrict__ steps, int* __restrict__ tokens, float* __restrict__ logprobs,
                    int* __restrict__ tokenHistory, float* __restrict__ logprobHistory, int historyLen) {
    sampling_row<RlsrVecF32, 0>(logits, rows, v, group, temperature, topK, topP, stopIds, stopCount, padId, counters,
                                finished, steps, tokens, logprobs, tokenHistory, logprobHistory, historyLen);
}

extern "C" __global__ void __launch_bounds__(SM_THREADS)
sampling_bf16_kernel(const unsigned short* __restrict__ logits, int rows, int v, int group,
                     const float* __restrict__ temperature, const int* __restrict__ topK,
                     const float* __restrict__ topP, const int* __restrict__ stopIds, int stopCount, int padId,
                     int* __restrict__ counters, int* __restrict__ finished, int* __restrict__ steps,
                     int* __restrict__ tokens, float* __restrict__ logprobs, int* __restrict__ tokenHistory,
                     float* __restrict__ logprobHistory, int historyLen) {
    sampling_row<RlsrVecBF16, 16>(logits, rows, v, group, temperature, topK, topP, stopIds, stopCount, padId,
                                  counters, finished, steps, tokens, logprobs, tokenHistory, logprobHistory,
                                  historyLen);
}

// A new batch: seed, every row unfinished at step 0. launch: grid ceil(B / 256), block 256
extern "C" __global__ void __launch_bounds__(256)
sampling_reset_kernel(int* __restrict__ counters, int* __restrict__ finished, int* __restrict__ steps, int rows,
                      int seedLo, int seedHi) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows) {
        finished[i] = 0;
        steps[i] = 0;
    }
    if (i == 0) {
        counters[0] = seedLo;
        counters[1] = seedHi;
        counters[2] = rows;
        counters[3] = 0;
    }
}
