// Batched cosine similarity, the RLSR reward: r = cos(E(x+y_i), E(x+y*)).
//
// Shapes (row-major, contiguous, row stride = D elements):
//   pairs:      a (N,D), b (N,D)            -> out (N)
//   reference:  a = ref (P,D), b = resp (P,G,D) -> out (P,G)
// Both are one kernel: output row i pairs a row (i / group) with b row i; pairs use group = 1.
//
// cos = dot(a,b) / max(||a|| * ||b||, eps); eps (1e-8 by default in the Java API) keeps a zero vector at
// cos 0 instead of NaN. Inputs fp32 or bf16 (raw bits), fp32 accumulation, fp32 output.
//
// One to eight warps per output row (wpr, chosen by the launcher from D): the row is streamed with 16-byte loads
// (4 fp32 or 8 bf16), four per operand in flight per lane before the first use, and the three sums (ab, aa, bb) are
// reduced with warp shuffles and, for wpr > 1, through 96 bytes of shared memory. No temporaries in device memory.
// Self-contained for NVRTC: no includes, no host code.

#define COS_WARPS_PER_BLOCK 8
#define COS_THREADS (COS_WARPS_PER_BLOCK * 32)
#define COS_UNROLL 4

struct F32Elem {
    typedef float T;
    enum { PER16 = 4 };  // elements per 16-byte load
    static __device__ __forceinline__ float load(const float* p, long long i) { return __ldg(p + i); }
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x); f[1] = __uint_as_float(v.y);
        f[2] = __uint_as_float(v.z); f[3] = __uint_as_float(v.w);
    }
};

// bf16 is the upper half of an fp32: widening is a shift, so no <cuda_bf16.h> is needed under NVRTC.
// Little endian: the lower 16 bits of a 32-bit word hold the element at the lower address.
struct Bf16Elem {
    typedef unsigned short T;
    enum { PER16 = 8 };  // elements per 16-byte load
    static __device__ __forceinline__ float load(const unsigned short* p, long long i) {
        return __uint_as_float(((unsigned int) __ldg(p + i)) << 16);
    }
    static __device__ __forceinline__ void unpack(const uint4 v, float* f) {
        f[0] = __uint_as_float(v.x << 16); f[1] = __uint_as_float(v.x & 0xffff0000u);
        f[2] = __uint_as_float(v.y << 16); f[3] = __uint_as_float(v.y & 0xffff0000u);
        f[4] = __uint_as_float(v.z << 16); f[5] = __uint_as_float(v.z & 0xffff0000u);
        f[6] = __uint_as_float(v.w << 16); f[7] = __uint_as_float(v.w & 0xffff0000u);
    }
};

template <typename E>
__device__ __forceinline__ void cos_accumulate(const uint4 va, const uint4 vb, float& ab, float& aa, float& bb) {
    float fa[E::PER16];
    float fb[E::PER16];
    E::unpack(va, fa);
    E::unpack(vb, fb);
#pragma unroll
    for (int j = 0; j < E::PER16; ++j) {
        ab = fmaf(fa[j], fb[j], ab);
        aa = fmaf(fa[j], fa[j], aa);
        bb = fmaf(fb[j], fb[j], bb);
    }
}

// The wpr warps of one output row split its 16-byte vectors round-robin (index step 32*wpr), so long rows are cut
// into more, smaller work units: 16384 rows x 4096 fp32 with one warp per row would be ~3.1 waves of resident warps
// on an H200 and lose most of a wave to the tail; with 4 warps per row it is ~12 waves.
template <typename E>
__device__ __forceinline__ void cosine_similarity(const typename E::T* __restrict__ a,
                                                  const typename E::T* __restrict__ b, float* __restrict__ out,
                                                  int rows, int group, int d, float eps, int wpr) {
    typedef typename E::T T;
    __shared__ float partial[COS_WARPS_PER_BLOCK][3];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int rowsPerBlock = COS_WARPS_PER_BLOCK / wpr;
    const long long row = (long long) blockIdx.x * rowsPerBlock + warp / wpr;
    const int part = warp % wpr;            // which of the row's warps this is
    const int t = part * 32 + lane;         // thread index within the row's wpr*32 threads
    const int stride = wpr * 32;
    float ab = 0.f, aa = 0.f, bb = 0.f;
    if (row < rows) {  // no early return: the barrier below needs every thread of the block
        const T* __restrict__ ra = a + (row / group) * (long long) d;
        const T* __restrict__ rb = b + row * (long long) d;
        int done = 0;
        const unsigned int misA = (unsigned int) ((unsigned long long) ra & 15ull);
        const unsigned int misB = (unsigned int) ((unsigned long long) rb & 15ull);
        // 16-byte loads need both rows on a 16-byte boundary; when both are off by the same amount (pairs with the
        // same odd D) a scalar head realigns them, otherwise the whole row takes the scalar path below.
        if (misA == misB) {
            int head = misA == 0 ? 0 : (int) ((16u - misA) / sizeof(T));
            if (head > d) head = d;
            if (t < head) {
                const float x = E::load(ra, t), y = E::load(rb, t);
                ab = fmaf(x, y, ab); aa = fmaf(x, x, aa); bb = fmaf(y, y, bb);
            }
            const uint4* __restrict__ va = reinterpret_cast<const uint4*>(ra + head);
            const uint4* __restrict__ vb = reinterpret_cast<const uint4*>(rb + head);
            const int nvec = (d - head) / E::PER16;
            int k = t;
            for (; k + (COS_UNROLL - 1) * stride < nvec; k += COS_UNROLL * stride) {
                uint4 xa[COS_UNROLL], xb[COS_UNROLL];
#pragma unroll
                for (int u = 0; u < COS_UNROLL; ++u) { xa[u] = __ldg(va + k + u * stride); xb[u] = __ldg(vb + k + u * stride); }
#pragma unroll
                for (int u = 0; u < COS_UNROLL; ++u) cos_accumulate<E>(xa[u], xb[u], ab, aa, bb);
            }
            for (; k < nvec; k += stride) cos_accumulate<E>(__ldg(va + k), __ldg(vb + k), ab, aa, bb);
            done = head + nvec * E::PER16;
        }
        for (int i = done + t; i < d; i += stride) {
            const float x = E::load(ra, i), y = E::load(rb, i);
            ab = fmaf(x, y, ab); aa = fmaf(x, x, aa); bb = fmaf(y, y, bb);
        }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        ab += __shfl_xor_sync(0xffffffffu, ab, off);
        aa += __shfl_xor_sync(0xffffffffu, aa, off);
        bb += __shfl_xor_sync(0xffffffffu, bb, off);
    }
    if (wpr > 1) {  // uniform across the block
        if (lane == 0) { partial[warp][0] = ab; partial[warp][1] = aa; partial[warp][2] = bb; }
        __syncthreads();
        if (part == 0 && lane == 0) {
            for (int w = 1; w < wpr; ++w) {
                ab += partial[warp + w][0]; aa += partial[warp + w][1]; bb += partial[warp + w][2];
            }
        }
    }
    if (row < rows && part == 0 && lane == 0) {
        // sqrt of each norm before the product: aa*bb alone would overflow fp32 for norms above ~1e19
        out[row] = ab / fmaxf(sqrtf(aa) * sqrtf(bb), eps);
    }
}

// a (rows/group, D) fp32, b (rows, D) fp32 -> out (rows) fp32; wpr (warps per row) in {1, 2, 4, 8};
// launch with blockDim 256, gridDim ceil(rows / (8 / wpr))
extern "C" __global__ void __launch_bounds__(COS_THREADS)
cosine_similarity_f32_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                             int rows, int group, int d, float eps, int wpr) {
    cosine_similarity<F32Elem>(a, b, out, rows, group, d, eps, wpr);
}

// same contract with bf16 inputs given as raw 16-bit patterns
extern "C" __global__ void __launch_bounds__(COS_THREADS)
cosine_similarity_bf16_kernel(const unsigned short* __restrict__ a, const unsigned short* __restrict__ b,
                              float* __restrict__ out, int rows, int group, int d, float eps, int wpr) {
    cosine_similarity<Bf16Elem>(a, b, out, rows, group, d, eps, wpr);
}
