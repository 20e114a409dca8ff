// Elementwise ops over n elements and the bias gradient (column sums).
//
//   fill:      t[i] = bits, for 32-bit (F32, I32) and 16-bit (BF16) elements; the launcher turns the value into bits
//   add:       out = a + b in fp32 (bf16 widened, the sum rounded once); out may be a or b itself
//   scale:     t *= s in fp32 (bf16 widened, the product rounded once)
//   add i32:   t += delta for I32 elements, wrapping modulo 2^32 (positions and cache lengths advanced on the device)
//   bias grad: dBias (cols) F32 += column sums of dy (rows, cols) F32/BF16, deterministic
//
// The 1-D ops are memory-bound: each element is read and written once, through 16-byte vectors once every operand
// has reached a 16-byte boundary together (a scalar head before it, a scalar tail after it; operands at different
// offsets from a boundary go the scalar way, still coalesced). Grid-stride loops: any grid is correct.
//
// Bias gradient, two passes with a fixed summation order (no float atomics), so every run gives the same bits:
//   pass 1 (grid: column strips of 128 x row chunks, 256 threads = 8 warps): lane l of warp w sums columns
//     strip*128 + 4l .. 4l+3 over rows chunk_start + w, + w + 8, ... in row order; the 8 warp partials are added in
//     warp order through shared memory. With one chunk the block adds its sums into dBias; with several it writes
//     them to scratch (chunks, cols).
//   pass 2 (one thread per column): dBias[c] += sum over chunks, in chunk order, of scratch[chunk, c].
// The launcher picks the chunk count from the shape (enough blocks to fill the GPU when cols is small), so the order,
// and with it the result, depends only on (rows, cols).
#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

#define EW_THREADS 256
#define BG_WARPS 8
#define BG_COLS 128  // columns per block strip: 32 lanes x 4

// ---- fill

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_fill_b32_kernel(unsigned int* t, long long n, unsigned int bits) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const RlsrSplit s = rlsr_split(t, 4, 4, n, true);
    for (long long i = tid; i < s.head; i += stride) t[i] = bits;
    uint4* v = reinterpret_cast<uint4*>(t + s.head);
    const uint4 w = make_uint4(bits, bits, bits, bits);
    for (long long k = tid; k < s.nvec; k += stride) v[k] = w;
    for (long long i = s.head + s.nvec * 4 + tid; i < n; i += stride) t[i] = bits;
}

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_fill_b16_kernel(unsigned short* t, long long n, unsigned int bits) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const RlsrSplit s = rlsr_split(t, 2, 8, n, true);
    const unsigned short h = (unsigned short) (bits & 0xffffu);
    for (long long i = tid; i < s.head; i += stride) t[i] = h;
    uint4* v = reinterpret_cast<uint4*>(t + s.head);
    const unsigned int pair = (unsigned int) h | ((unsigned int) h << 16);
    const uint4 w = make_uint4(pair, pair, pair, pair);
    for (long long k = tid; k < s.nvec; k += stride) v[k] = w;
    for (long long i = s.head + s.nvec * 8 + tid; i < n; i += stride) t[i] = h;
}

// ---- add: out may be a or b (each element is read, then written by the same thread): no __restrict__

template <typename A>
__device__ __forceinline__ void ew_add(const typename A::T* a, const typename A::T* b, typename A::T* out, long long n) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const unsigned int mis = rlsr_mis16(out);
    const RlsrSplit s = rlsr_split(out, sizeof(typename A::T), A::PER16, n,
                                   rlsr_mis16(a) == mis && rlsr_mis16(b) == mis);
    for (long long i = tid; i < s.head; i += stride) A::store(out, i, A::load(a, i) + A::load(b, i));
    const uint4* va = reinterpret_cast<const uint4*>(a + s.head);
    const uint4* vb = reinterpret_cast<const uint4*>(b + s.head);
    uint4* vo = reinterpret_cast<uint4*>(out + s.head);
    for (long long k = tid; k < s.nvec; k += stride) {
        float x[A::PER16], y[A::PER16];
        A::unpack(va[k], x);
        A::unpack(vb[k], y);
#pragma unroll
        for (int j = 0; j < A::PER16; ++j) x[j] += y[j];
        vo[k] = A::pack(x);
    }
    for (long long i = s.head + s.nvec * A::PER16 + tid; i < n; i += stride) {
        A::store(out, i, A::load(a, i) + A::load(b, i));
    }
}

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_add_f32_kernel(const float* a, const float* b, float* out, long long n) {
    ew_add<RlsrVecF32>(a, b, out, n);
}

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_add_bf16_kernel(const unsigned short* a, const unsigned short* b, unsigned short* out, long long n) {
    ew_add<RlsrVecBF16>(a, b, out, n);
}

// ---- scale, in place

template <typename A>
__device__ __forceinline__ void ew_scale(typename A::T* t, long long n, float factor) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const RlsrSplit s = rlsr_split(t, sizeof(typename A::T), A::PER16, n, true);
    for (long long i = tid; i < s.head; i += stride) A::store(t, i, A::load(t, i) * factor);
    uint4* v = reinterpret_cast<uint4*>(t + s.head);
    for (long long k = tid; k < s.nvec; k += stride) {
        float x[A::PER16];
        A::unpack(v[k], x);
#pragma unroll
        for (int j = 0; j < A::PER16; ++j) x[j] *= factor;
        v[k] = A::pack(x);
    }
    for (long long i = s.head + s.nvec * A::PER16 + tid; i < n; i += stride) A::store(t, i, A::load(t, i) * factor);
}

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_scale_f32_kernel(float* t, long long n, float factor) {
    ew_scale<RlsrVecF32>(t, n, factor);
}

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_scale_bf16_kernel(unsigned short* t, long long n, float factor) {
    ew_scale<RlsrVecBF16>(t, n, factor);
}

// ---- add a constant to I32 elements, in place; unsigned arithmetic so that overflow wraps instead of being undefined

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_add_i32_kernel(int* t, long long n, int delta) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const unsigned int d = (unsigned int) delta;
    const RlsrSplit s = rlsr_split(t, 4, 4, n, true);
    for (long long i = tid; i < s.head; i += stride) t[i] = (int) ((unsigned int) t[i] + d);
    uint4* v = reinterpret_cast<uint4*>(t + s.head);
    for (long long k = tid; k < s.nvec; k += stride) {
        uint4 w = v[k];
        w.x += d;
        w.y += d;
        w.z += d;
        w.w += d;
        v[k] = w;
    }
    for (long long i = s.head + s.nvec * 4 + tid; i < n; i += stride) t[i] = (int) ((unsigned int) t[i] + d);
}

// ---- bias gradient

// Four consecutive columns of one row; vec: the row's 4 elements are one aligned 16-byte (fp32) or 8-byte (bf16) load.
__device__ __forceinline__ void bg_load4(const float* p, bool vec, int valid, float* f) {
    if (vec) {
        const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
        RlsrVecF32::unpack(v, f);
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) f[k] = k < valid ? p[k] : 0.f;
    }
}

__device__ __forceinline__ void bg_load4(const unsigned short* p, bool vec, int valid, float* f) {
    if (vec) {
        const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
        f[0] = __uint_as_float(v.x << 16); f[1] = __uint_as_float(v.x & 0xffff0000u);
        f[2] = __uint_as_float(v.y << 16); f[3] = __uint_as_float(v.y & 0xffff0000u);
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) f[k] = k < valid ? rlsr_bf16_to_float(p[k]) : 0.f;
    }
}

// launch: grid (ceil(cols/128), chunks), block 256
template <typename T>
__device__ __forceinline__ void bias_grad_partial(const T* __restrict__ dy, int rows, int cols, int rows_per_chunk,
                                                  float* __restrict__ dbias, float* __restrict__ scratch) {
    __shared__ __align__(16) float sm[BG_WARPS][BG_COLS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int col = blockIdx.x * BG_COLS + lane * 4;
    const int valid = cols - col;  // columns of this lane's four that exist (<= 0: none)
    const int r0 = blockIdx.y * rows_per_chunk;
    const int r1 = min(rows, r0 + rows_per_chunk);
    // every row start is aligned when the first is and a row is a whole number of 4-element groups
    const bool vec = (cols & 3) == 0 && ((unsigned long long) dy & (4 * sizeof(T) - 1)) == 0;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    if (valid > 0) {
        const T* p = dy + (long long) r0 * cols + col;
        int r = r0 + warp;
        // four rows in flight per thread; the sums stay in row order
        for (; r + 3 * BG_WARPS < r1; r += 4 * BG_WARPS) {
            float f[4][4];
#pragma unroll
            for (int u = 0; u < 4; ++u) bg_load4(p + (long long) (r - r0 + u * BG_WARPS) * cols, vec, valid, f[u]);
#pragma unroll
            for (int u = 0; u < 4; ++u) {
#pragma unroll
                for (int k = 0; k < 4; ++k) acc[k] += f[u][k];
            }
        }
        for (; r < r1; r += BG_WARPS) {
            float f[4];
            bg_load4(p + (long long) (r - r0) * cols, vec, valid, f);
#pragma unroll
            for (int k = 0; k < 4; ++k) acc[k] += f[k];
        }
    }
    // one 16-byte store per lane: conflict-free
    *reinterpret_cast<float4*>(&sm[warp][lane * 4]) = make_float4(acc[0], acc[1], acc[2], acc[3]);
    __syncthreads();
    if ((int) threadIdx.x < BG_COLS) {
        const int c = blockIdx.x * BG_COLS + threadIdx.x;
        if (c < cols) {
            float s = sm[0][threadIdx.x];
#pragma unroll
            for (int w = 1; w < BG_WARPS; ++w) s += sm[w][threadIdx.x];
            if (gridDim.y == 1) {
                dbias[c] += s;
            } else {
                scratch[(long long) blockIdx.y * cols + c] = s;
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_bias_grad_f32_kernel(const float* __restrict__ dy, int rows, int cols, int rows_per_chunk,
                                 float* __restrict__ dbias, float* __restrict__ scratch) {
    bias_grad_partial<float>(dy, rows, cols, rows_per_chunk, dbias, scratch);
}

extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_bias_grad_bf16_kernel(const unsigned short* __restrict__ dy, int rows, int cols, int rows_per_chunk,
                                  float* __restrict__ dbias, float* __restrict__ scratch) {
    bias_grad_partial<unsigned short>(dy, rows, cols, rows_per_chunk, dbias, scratch);
}

// launch: ceil(cols/256) blocks of 256; scratch (chunks, cols) from pass 1
extern "C" __global__ void __launch_bounds__(EW_THREADS)
elementwise_bias_grad_finish_kernel(const float* __restrict__ scratch, int chunks, int cols,
                                    float* __restrict__ dbias) {
    const int c = blockIdx.x * EW_THREADS + threadIdx.x;
    if (c >= cols) return;
    float s = scratch[c];
    for (int k = 1; k < chunks; ++k) s += scratch[(long long) k * cols + c];
    dbias[c] += s;
}
