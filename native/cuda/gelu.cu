// Exact GELU (HF "gelu", torch.nn.GELU()): out = x * Phi(x), Phi(x) = erfc(-x / sqrt(2)) / 2.
//
// Shapes: x, out (n) fp32 or bf16 (raw bits), n up to and beyond 2^31; out may be x.
// Phi through erfc rather than (1 + erf(x/sqrt(2)))/2: for x << 0 the sum 1 + erf cancels (at x = -5 it keeps one
// significant bit in fp32), while erfcf(-x/sqrt(2)) stays accurate to a few ulp on the whole line. The CPU reference
// uses a Chebyshev fit of erfc with the same structure (GeluReference).
//
// Grid-stride over 16-byte vectors when x and out share their offset from a 16-byte boundary, else over elements.

#include "rlsr_common.cuh"
#include "rlsr_rowvec.cuh"

#define GELU_THREADS 256
#define GELU_INV_SQRT2 0.70710678118654752f

__device__ __forceinline__ float gelu_one(float x) {
    return x * (0.5f * erfcf(-x * GELU_INV_SQRT2));
}

template <typename E>
__device__ __forceinline__ void gelu_forward(const typename E::T* x, typename E::T* out, long long n) {
    const long long tid = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long) gridDim.x * blockDim.x;
    const unsigned int mx = (unsigned int) ((unsigned long long) x & 15ull);
    const unsigned int mo = (unsigned int) ((unsigned long long) out & 15ull);
    long long done = 0;
    if (mx == mo) {
        long long head = mx == 0 ? 0 : (long long) ((16u - mx) / sizeof(typename E::T));
        if (head > n) head = n;
        if (tid < head) E::store(out, tid, gelu_one(E::load(x, tid)));
        const long long nvec = (n - head) / E::PER16;
        const uint4* vx = reinterpret_cast<const uint4*>(x + head);
        uint4* vo = reinterpret_cast<uint4*>(out + head);
        for (long long k = tid; k < nvec; k += stride) {
            float f[E::PER16];
            E::unpack(vx[k], f);
#pragma unroll
            for (int j = 0; j < E::PER16; ++j) f[j] = gelu_one(f[j]);
            vo[k] = E::pack(f);
        }
        done = head + nvec * E::PER16;
    }
    for (long long i = done + tid; i < n; i += stride) E::store(out, i, gelu_one(E::load(x, i)));
}

// launch: grid-stride, block 256; x and out may alias (each element is read, then written, by one thread)
extern "C" __global__ void __launch_bounds__(GELU_THREADS)
gelu_forward_f32_kernel(const float* x, float* out, long long n) {
    gelu_forward<RlsrVecF32>(x, out, n);
}

extern "C" __global__ void __launch_bounds__(GELU_THREADS)
gelu_forward_bf16_kernel(const unsigned short* x, unsigned short* out, long long n) {
    gelu_forward<RlsrVecBF16>(x, out, n);
}
