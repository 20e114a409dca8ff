// Rotary position embedding, Hugging Face rotate_half convention.
//
//   table: positions (N) int32, inv_freq (D/2) fp32 -> table (N, D) fp32, cos in columns [0, D/2), sin in [D/2, D):
//          angle = (float) pos * inv_freq[i], the fp32 product HF's `inv_freq @ position_ids` computes, then cosf/sinf
//          (the accurate library functions, at most 2 ulp from the exact value; the __cosf/__sinf intrinsics would
//          be off by far more at angles of thousands of radians).
//   apply: x (N, row stride S, H heads of D) fp32 or bf16, in place, per head with c = cos, s = sin of its row:
//          x1' = x1*c - x2*s, x2' = x2*c + x1*s  (x1 = first half of the head, x2 = second half);
//          inverse: s -> -s, the transposed rotation, which is the backward of the forward rotation.
//          Written with fmaf(x1, c, -(x2*s)) and fmaf(x2, c, x1*s) so every compiler (NVRTC, nvcc, the emulator's
//          host C++) evaluates the same expression; the CPU reference rounds x1*c too (no fma): a few fp32 ulp apart.
//
// apply is memory-bound: one thread per (row, head, group of 8 bf16 / 4 fp32 columns of the half-head), 16-byte
// loads of x1, x2 and of the table's cos and sin (the table row is shared by the H heads: it stays in L1/L2); rows
// or heads not on 16-byte boundaries go one column per thread.
#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

#define ROPE_THREADS 256

// launch: ceil(N*D/2 / 256) blocks of 256
extern "C" __global__ void __launch_bounds__(ROPE_THREADS)
rope_table_kernel(const int* __restrict__ positions, const float* __restrict__ inv_freq, float* __restrict__ table,
                  int n, int half) {
    const long long idx = rlsr_gtid();
    if (idx >= (long long) n * half) return;
    const long long row = idx / half;
    const int i = (int) (idx - row * half);
    const float f = (float) positions[row] * inv_freq[i];
    float* t = table + row * 2 * half;
    t[i] = cosf(f);
    t[half + i] = sinf(f);
}

template <typename A, int G>
__device__ __forceinline__ void rope_group(typename A::T* x1p, typename A::T* x2p, const float* cp, const float* sp,
                                           float sign) {
    float x1[A::PER16], x2[A::PER16], c[A::PER16], s[A::PER16];
    if (G == 1) {
        x1[0] = A::load(x1p, 0);
        x2[0] = A::load(x2p, 0);
        c[0] = cp[0];
        s[0] = sp[0];
    } else {
        A::unpack(*reinterpret_cast<const uint4*>(x1p), x1);
        A::unpack(*reinterpret_cast<const uint4*>(x2p), x2);
#pragma unroll
        for (int q = 0; q < G / 4; ++q) {
            RlsrVecF32::unpack(__ldg(reinterpret_cast<const uint4*>(cp + 4 * q)), c + 4 * q);
            RlsrVecF32::unpack(__ldg(reinterpret_cast<const uint4*>(sp + 4 * q)), s + 4 * q);
        }
    }
#pragma unroll
    for (int q = 0; q < G; ++q) {
        const float sn = sign * s[q];
        const float a = fmaf(x1[q], c[q], -(x2[q] * sn));
        const float b = fmaf(x2[q], c[q], x1[q] * sn);
        x1[q] = a;
        x2[q] = b;
    }
    if (G == 1) {
        A::store(x1p, 0, x1[0]);
        A::store(x2p, 0, x2[0]);
    } else {
        *reinterpret_cast<uint4*>(x1p) = A::pack(x1);
        *reinterpret_cast<uint4*>(x2p) = A::pack(x2);
    }
}

template <typename A, int G>
__device__ __forceinline__ void rope_apply_items(typename A::T* x, long long stride, const float* __restrict__ table,
                                                 int n, int heads, int half, float sign) {
    const int groups = half / G;
    const long long items = (long long) n * heads * groups;
    for (long long it = rlsr_gtid(); it < items; it += rlsr_gstride()) {
        const long long rh = it / groups;
        const int i = (int) (it - rh * groups) * G;
        const long long row = rh / heads;
        const int h = (int) (rh - row * heads);
        typename A::T* x1 = x + row * stride + (long long) h * 2 * half + i;
        const float* c = table + row * 2 * half + i;
        rope_group<A, G>(x1, x1 + half, c, c + half, sign);
    }
}

template <typename A>
__device__ __forceinline__ void rope_apply(typename A::T* x, long long stride, const float* __restrict__ table, int n,
                                           int heads, int half, int inverse) {
    const float sign = inverse ? -1.f : 1.f;
    // every x1, x2 and table group is on a 16-byte boundary when the bases, the row strides and the half-head are
    const bool vec = half % A::PER16 == 0 && rlsr_mis16(x) == 0 && (stride * (long long) sizeof(typename A::T)) % 16 == 0
                     && rlsr_mis16(table) == 0;
    if (vec) {
        rope_apply_items<A, A::PER16>(x, stride, table, n, heads, half, sign);
    } else {
        rope_apply_items<A, 1>(x, stride, table, n, heads, half, sign);
    }
}

// launch: grid-stride over N*H*(D/2)/G items, 256 threads
extern "C" __global__ void __launch_bounds__(ROPE_THREADS)
rope_apply_f32_kernel(float* x, long long stride, const float* __restrict__ table, int n, int heads, int half,
                      int inverse) {
    rope_apply<RlsrVecF32>(x, stride, table, n, heads, half, inverse);
}

extern "C" __global__ void __launch_bounds__(ROPE_THREADS)
rope_apply_bf16_kernel(unsigned short* x, long long stride, const float* __restrict__ table, int n, int heads,
                       int half, int inverse) {
    rope_apply<RlsrVecBF16>(x, stride, table, n, heads, half, inverse);
}
