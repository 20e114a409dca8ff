// SwiGLU of the MLP: h = silu(g) * u, silu(x) = x * sigmoid(x), and its backward.
//
// Shapes: g, u, h, dh, dg, du (n) fp32 or bf16 (n = N*F), elementwise. fp32 math in registers, outputs rounded once.
//   forward:  sig = 1 / (1 + expf(-x)), h = (x * sig) * u
//   backward: du = dh * (x * sig)
//             dg = (dh * u) * (sig * (1 + x * (1 - sig)))     (d silu/dx = sig * (1 + x * (1 - sig)))
// written over dg and du (not accumulated). The association follows CpuBackend's vector loop; expf (CUDA: at most
// 2 ulp) and the IEEE division (not __expf / __fdividef: the fast forms lose accuracy for large |x|) keep the result
// within a few fp32 ulp of the CPU's; 1 + x * (1 - sig) is one fmaf, so NVRTC and the emulator's host C++ compute
// the same value. Outputs may be the very buffers of inputs (h = g or u; dg, du = any of g, u, dh, but not each
// other): every thread reads its elements before it writes them. Memory-bound: 16-byte vectors when all operands
// sit at the same offset from a 16-byte boundary, else scalar (still coalesced); grid-stride loops.
#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

#define SW_THREADS 256

__device__ __forceinline__ float sw_sigmoid(float x) {
    return 1.f / (1.f + expf(-x));
}

template <typename A>
__device__ __forceinline__ void swiglu_forward(const typename A::T* g, const typename A::T* u, typename A::T* h,
                                               long long n) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const unsigned int mis = rlsr_mis16(h);
    const RlsrSplit s = rlsr_split(h, sizeof(typename A::T), A::PER16, n, rlsr_mis16(g) == mis && rlsr_mis16(u) == mis);
    for (long long i = tid; i < s.head; i += stride) {
        const float x = A::load(g, i);
        A::store(h, i, x * sw_sigmoid(x) * A::load(u, i));
    }
    const uint4* vg = reinterpret_cast<const uint4*>(g + s.head);
    const uint4* vu = reinterpret_cast<const uint4*>(u + s.head);
    uint4* vh = reinterpret_cast<uint4*>(h + s.head);
    for (long long k = tid; k < s.nvec; k += stride) {
        float x[A::PER16], y[A::PER16];
        A::unpack(vg[k], x);
        A::unpack(vu[k], y);
#pragma unroll
        for (int j = 0; j < A::PER16; ++j) x[j] = x[j] * sw_sigmoid(x[j]) * y[j];
        vh[k] = A::pack(x);
    }
    for (long long i = s.head + s.nvec * A::PER16 + tid; i < n; i += stride) {
        const float x = A::load(g, i);
        A::store(h, i, x * sw_sigmoid(x) * A::load(u, i));
    }
}

__device__ __forceinline__ void sw_grad(float x, float up, float d, float& dg, float& du) {
    const float sig = sw_sigmoid(x);
    du = d * (x * sig);
    dg = (d * up) * (sig * fmaf(x, 1.f - sig, 1.f));
}

template <typename A>
__device__ __forceinline__ void swiglu_backward(const typename A::T* g, const typename A::T* u,
                                                const typename A::T* dh, typename A::T* dg, typename A::T* du,
                                                long long n) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const unsigned int mis = rlsr_mis16(dg);
    const bool co = rlsr_mis16(g) == mis && rlsr_mis16(u) == mis && rlsr_mis16(dh) == mis && rlsr_mis16(du) == mis;
    const RlsrSplit s = rlsr_split(dg, sizeof(typename A::T), A::PER16, n, co);
    for (long long i = tid; i < s.head; i += stride) {
        float a, b;
        sw_grad(A::load(g, i), A::load(u, i), A::load(dh, i), a, b);
        A::store(dg, i, a);
        A::store(du, i, b);
    }
    const uint4* vg = reinterpret_cast<const uint4*>(g + s.head);
    const uint4* vu = reinterpret_cast<const uint4*>(u + s.head);
    const uint4* vd = reinterpret_cast<const uint4*>(dh + s.head);
    uint4* vdg = reinterpret_cast<uint4*>(dg + s.head);
    uint4* vdu = reinterpret_cast<uint4*>(du + s.head);
    for (long long k = tid; k < s.nvec; k += stride) {
        float x[A::PER16], y[A::PER16], d[A::PER16];
        A::unpack(vg[k], x);
        A::unpack(vu[k], y);
        A::unpack(vd[k], d);
#pragma unroll
        for (int j = 0; j < A::PER16; ++j) sw_grad(x[j], y[j], d[j], x[j], y[j]);
        vdg[k] = A::pack(x);
        vdu[k] = A::pack(y);
    }
    for (long long i = s.head + s.nvec * A::PER16 + tid; i < n; i += stride) {
        float a, b;
        sw_grad(A::load(g, i), A::load(u, i), A::load(dh, i), a, b);
        A::store(dg, i, a);
        A::store(du, i, b);
    }
}

extern "C" __global__ void __launch_bounds__(SW_THREADS)
swiglu_f32_kernel(const float* g, const float* u, float* h, long long n) {
    swiglu_forward<RlsrVecF32>(g, u, h, n);
}

extern "C" __global__ void __launch_bounds__(SW_THREADS)
swiglu_bf16_kernel(const unsigned short* g, const unsigned short* u, unsigned short* h, long long n) {
    swiglu_forward<RlsrVecBF16>(g, u, h, n);
}

extern "C" __global__ void __launch_bounds__(SW_THREADS)
swiglu_backward_f32_kernel(const float* g, const float* u, const float* dh, float* dg, float* du, long long n) {
    swiglu_backward<RlsrVecF32>(g, u, dh, dg, du, n);
}

extern "C" __global__ void __launch_bounds__(SW_THREADS)
swiglu_backward_bf16_kernel(const unsigned short* g, const unsigned short* u, const unsigned short* dh,
                            unsigned short* dg, unsigned short* du, long long n) {
    swiglu_backward<RlsrVecBF16>(g, u, dh, dg, du, n);
}
