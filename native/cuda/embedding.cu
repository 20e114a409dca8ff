// Embedding backward: dTable[ids[n], :] += dOut[n, :], deterministic (no float atomics).
// (The forward, out[n, :] = table[ids[n], :], is gather_rows_kernel of copy_rows.cu.)
//
// Shapes: ids (N) int32, dOut (N, C) fp32 or bf16, dTable (V, C) fp32 (accumulated). An id outside [0, V)
// contributes nothing. Scratch (the launcher's): keys A and B (N uint64 each), partials (2 * ceil(N/32), C) fp32.
//
// 1. sort:  key = id << 32 | n (an invalid id becomes 0xffffffff and sorts last). Keys are unique, so every sort
//           gives the same order: by id, then by n. Blocks sort tiles of 2048 keys in shared memory (bitonic);
//    merge: log2(N / 2048) passes merge pairs of sorted runs: each key goes to its rank in its own run plus the
//           number of keys of the partner run below it (binary search).
// 2. runs:  the sorted list is cut into chunks of 32 entries, one 128-thread block per chunk; each thread owns a few
//           column groups (8 bf16 or 4 fp32 columns through 16-byte loads when rows are aligned, else 1 column) and
//           walks the chunk's runs of equal ids, summing dOut rows in n order. A run that starts and ends in the
//           chunk is the only writer of its dTable row: it starts from dTable's value and adds the rows one by one
//           (the CPU reference's order, so these rows match it bit for bit). A run cut by a chunk boundary leaves
//           partial sums instead: FIRST (the chunk's first run, begun in an earlier chunk) and LAST (its last run,
//           going on into the next chunk).
// 3. fixup: the chunk where a cut run begins adds dTable + LAST + FIRST of each following chunk the run covers,
//           in chunk order. So a token repeated thousands of times (padding) costs 32 rows per block plus one short
//           pass, not one long serial loop.
#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

#define EB_TILE 2048
#define EB_SORT_THREADS 1024
#define EB_MERGE_THREADS 256
#define EB_CHUNK 32
#define EB_THREADS 128

// launch: ceil(N/2048) blocks of 1024
extern "C" __global__ void __launch_bounds__(EB_SORT_THREADS)
embedding_backward_sort_kernel(const int* __restrict__ ids, int n, int v, unsigned long long* __restrict__ keys) {
    __shared__ unsigned long long sk[EB_TILE];
    const int base = blockIdx.x * EB_TILE;
    for (int t = threadIdx.x; t < EB_TILE; t += EB_SORT_THREADS) {
        const int i = base + t;
        unsigned long long key = ~0ull;  // padding: sorts after every real key and is never written back
        if (i < n) {
            const int id = ids[i];
            const unsigned int hi = id >= 0 && id < v ? (unsigned int) id : 0xffffffffu;
            key = ((unsigned long long) hi << 32) | (unsigned int) i;
        }
        sk[t] = key;
    }
    __syncthreads();
    for (int k = 2; k <= EB_TILE; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            // thread t compares the pair (i, i + j), i being t with a zero bit inserted at j's position
            const int t = threadIdx.x;
            const int i = ((t & ~(j - 1)) << 1) | (t & (j - 1));
            const unsigned long long a = sk[i], b = sk[i + j];
            if ((a > b) == ((i & k) == 0)) {
                sk[i] = b;
                sk[i + j] = a;
            }
            __syncthreads();
        }
    }
    for (int t = threadIdx.x; t < EB_TILE; t += EB_SORT_THREADS) {
        if (base + t < n) keys[base + t] = sk[t];
    }
}

// launch: ceil(N/256) blocks of 256; runs of `width` sorted keys in `in` -> runs of 2*width in `out`
extern "C" __global__ void __launch_bounds__(EB_MERGE_THREADS)
embedding_backward_merge_kernel(const unsigned long long* __restrict__ in, unsigned long long* __restrict__ out, int n,
                                int width) {
    const long long i = rlsr_gtid();
    if (i >= n) return;
    const unsigned long long key = in[i];
    const long long base = i / (2ll * width) * (2ll * width);
    const unsigned long long* other;
    long long rank, len;
    if (i - base < width) {
        rank = i - base;
        other = in + base + width;
        len = n - (base + width);
        len = len < 0 ? 0 : (len > width ? width : len);
    } else {
        rank = i - base - width;
        other = in + base;
        len = width;
    }
    long long lo = 0, hi = len;  // keys of the other run below key
    while (lo < hi) {
        const long long mid = (lo + hi) >> 1;
        if (other[mid] < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    out[base + rank + lo] = key;
}

// G consecutive fp32 values (G = 1, or a multiple of 4 on a 16-byte boundary).
template <int G>
__device__ __forceinline__ void eb_ld32(const float* p, float* f) {
    if (G == 1) {
        f[0] = p[0];
    } else {
#pragma unroll
        for (int q = 0; q < G / 4; ++q) RlsrVecF32::unpack(*reinterpret_cast<const uint4*>(p + 4 * q), f + 4 * q);
    }
}

template <int G>
__device__ __forceinline__ void eb_st32(float* p, const float* f) {
    if (G == 1) {
        p[0] = f[0];
    } else {
#pragma unroll
        for (int q = 0; q < G / 4; ++q) *reinterpret_cast<uint4*>(p + 4 * q) = RlsrVecF32::pack(f + 4 * q);
    }
}

// G consecutive activations widened (G = 1, or A::PER16 on a 16-byte boundary); f holds A::PER16 floats.
template <typename A, int G>
__device__ __forceinline__ void eb_lda(const typename A::T* p, float* f) {
    if (G == 1) {
        f[0] = A::load(p, 0);
    } else {
        A::unpack(__ldg(reinterpret_cast<const uint4*>(p)), f);
    }
}

// s_id[k + 1] is the id of sorted entry p0 + k for k in [-1, cnt] (0xffffffff outside [0, N)); s_row[k] its row n.
template <typename A, int G>
__device__ __forceinline__ void eb_runs(const unsigned int* s_id, const int* s_row, int cnt, unsigned int v,
                                        const typename A::T* __restrict__ dout, int c, float* __restrict__ dtable,
                                        float* __restrict__ first, float* __restrict__ last) {
    const int groups = c / G;
    int j = 0;
    while (j < cnt) {
        const unsigned int id = s_id[j + 1];
        if (id >= v) break;  // invalid ids sort last: nothing valid follows
        int e = j + 1;
        while (e < cnt && s_id[e + 1] == id) ++e;
        const bool started = j > 0 || s_id[0] != id;  // the run begins in this chunk
        const bool ends = s_id[e + 1] != id;          // the entry after the run (maybe in the next chunk) differs
        const bool whole = started && ends;
        float* t = whole ? dtable + (long long) id * c : (started ? last : first);
        for (int g = threadIdx.x; g < groups; g += EB_THREADS) {
            float acc[A::PER16];
            if (whole) {
                eb_ld32<G>(t + g * G, acc);
            } else {
#pragma unroll
                for (int q = 0; q < G; ++q) acc[q] = 0.f;
            }
            const typename A::T* col = dout + g * G;
            int m = j;
            for (; m + 4 <= e; m += 4) {  // four rows in flight, added in n order
                float f[4][A::PER16];
#pragma unroll
                for (int u = 0; u < 4; ++u) eb_lda<A, G>(col + (long long) s_row[m + u] * c, f[u]);
#pragma unroll
                for (int u = 0; u < 4; ++u) {
#pragma unroll
                    for (int q = 0; q < G; ++q) acc[q] += f[u][q];
                }
            }
            for (; m < e; ++m) {
                float f[A::PER16];
                eb_lda<A, G>(col + (long long) s_row[m] * c, f);
#pragma unroll
                for (int q = 0; q < G; ++q) acc[q] += f[q];
            }
            eb_st32<G>(t + g * G, acc);
        }
        j = e;
    }
}

// launch: ceil(N/32) blocks of 128; sorted (N) keys; partials (2 * blocks, C)
template <typename A>
__device__ __forceinline__ void embedding_runs(const unsigned long long* __restrict__ sorted, int n, int v,
                                               const typename A::T* __restrict__ dout, int c,
                                               float* __restrict__ dtable, float* __restrict__ partials) {
    __shared__ unsigned int s_id[EB_CHUNK + 2];
    __shared__ int s_row[EB_CHUNK];
    const int p0 = blockIdx.x * EB_CHUNK;
    const int cnt = min(n - p0, EB_CHUNK);
    if ((int) threadIdx.x < EB_CHUNK + 2) {
        const int p = p0 - 1 + (int) threadIdx.x;
        unsigned int id = 0xffffffffu;
        int row = 0;
        if (p >= 0 && p < n) {
            const unsigned long long key = sorted[p];
            id = (unsigned int) (key >> 32);
            row = (int) (unsigned int) key;
        }
        s_id[threadIdx.x] = id;
        if (threadIdx.x >= 1 && threadIdx.x <= EB_CHUNK) s_row[threadIdx.x - 1] = row;
    }
    __syncthreads();
    float* first = partials + (2ll * blockIdx.x) * c;
    float* last = first + c;
    const bool vec = (c * (int) sizeof(typename A::T)) % 16 == 0 && rlsr_mis16(dout) == 0 && rlsr_mis16(dtable) == 0
                     && rlsr_mis16(partials) == 0;
    if (vec) {
        eb_runs<A, A::PER16>(s_id, s_row, cnt, (unsigned int) v, dout, c, dtable, first, last);
    } else {
        eb_runs<A, 1>(s_id, s_row, cnt, (unsigned int) v, dout, c, dtable, first, last);
    }
}

extern "C" __global__ void __launch_bounds__(EB_THREADS)
embedding_backward_runs_f32_kernel(const unsigned long long* __restrict__ sorted, int n, int v,
                                   const float* __restrict__ dout, int c, float* __restrict__ dtable,
                                   float* __restrict__ partials) {
    embedding_runs<RlsrVecF32>(sorted, n, v, dout, c, dtable, partials);
}

extern "C" __global__ void __launch_bounds__(EB_THREADS)
embedding_backward_runs_bf16_kernel(const unsigned long long* __restrict__ sorted, int n, int v,
                                    const unsigned short* __restrict__ dout, int c, float* __restrict__ dtable,
                                    float* __restrict__ partials) {
    embedding_runs<RlsrVecBF16>(sorted, n, v, dout, c, dtable, partials);
}

template <int G>
__device__ __forceinline__ void eb_fixup(const float* __restrict__ partials, int c, int ch, int ch_end,
                                         float* __restrict__ row) {
    for (int g = threadIdx.x; g < c / G; g += EB_THREADS) {
        float acc[4], f[4];
        eb_ld32<G>(row + g * G, acc);
        eb_ld32<G>(partials + (2ll * ch + 1) * c + g * G, f);  // LAST of the chunk where the run begins
#pragma unroll
        for (int q = 0; q < G; ++q) acc[q] += f[q];
        for (int k = ch + 1; k <= ch_end; ++k) {
            eb_ld32<G>(partials + 2ll * k * c + g * G, f);  // FIRST of each chunk the run goes on into
#pragma unroll
            for (int q = 0; q < G; ++q) acc[q] += f[q];
        }
        eb_st32<G>(row + g * G, acc);
    }
}

// launch: ceil(N/32) blocks of 128, after the runs kernel
extern "C" __global__ void __launch_bounds__(EB_THREADS)
embedding_backward_fixup_kernel(const unsigned long long* __restrict__ sorted, int n, int v, int c,
                                const float* __restrict__ partials, float* __restrict__ dtable) {
    const int ch = blockIdx.x;
    const int p0 = ch * EB_CHUNK;
    const int p = min(n, p0 + EB_CHUNK) - 1;  // the chunk's last entry
    const unsigned int id = (unsigned int) (sorted[p] >> 32);
    if (id >= (unsigned int) v) return;
    if (p + 1 >= n || (unsigned int) (sorted[p + 1] >> 32) != id) return;  // the last run ends in this chunk
    if (p0 > 0 && (unsigned int) (sorted[p0 - 1] >> 32) == id) return;     // begun earlier: not the head chunk
    int ch_end = ch + 1;  // the chunk where the run ends
    while ((long long) (ch_end + 1) * EB_CHUNK < n
           && (unsigned int) (sorted[(long long) (ch_end + 1) * EB_CHUNK] >> 32) == id) {
        ++ch_end;
    }
    float* row = dtable + (long long) id * c;
    if ((c & 3) == 0 && rlsr_mis16(dtable) == 0 && rlsr_mis16(partials) == 0) {
        eb_fixup<4>(partials, c, ch, ch_end, row);
    } else {
        eb_fixup<1>(partials, c, ch, ch_end, row);
    }
}
