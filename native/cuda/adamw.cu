// AdamW (torch.optim.AdamW, decoupled weight decay) over one flat fp32 parameter store, in one launch.
//
// Shapes: param (fp32 master weights), grad, m, v (n) fp32; copy (n) bf16 or null; clip_scale (1) fp32 or null.
//   g  = grad[i] * clip_scale                       (the global-norm clip factor, read on the device)
//   p  = param[i] * decay                           (decay = 1 - lr*wd in fp32, for i < decay_end only)
//   m' = m + (g - m) * (1 - b1)
//   v' = v * b2 + (1 - b2) * g * g
//   param[i] = p - step_size * (m' / (sqrt(v') / bc2_sqrt + eps)),  step_size = lr / bc1, bc2_sqrt = sqrt(bc2)
//   copy[i]  = bf16(param[i])                       (the compute copy of the weights, round to nearest even)
// The same fp32 operations in the same order as the CPU's AdamW (AdamWReference), with no fused multiply-adds
// (products through adamw_mul, which the compiler may not contract): fp32 division and square root are correctly
// rounded, so the device and the CPU agree bit for bit.
//
// Grid-stride over 16-byte vectors (4 elements) when param, grad, m, v are 16-byte aligned and copy 8-byte aligned,
// else over single elements.

#include "rlsr_common.cuh"

#define AW_THREADS 256

// a * b rounded once; mul.rn is never contracted into an fma (PTX ISA: instructions with an explicit rounding
// modifier are left alone by the optimiser). Host builds (the emulator) store the product through a volatile, which
// a compiler allowed to contract (g++ -ffp-contract=fast with FMA hardware) cannot fuse with the add that follows.
__device__ __forceinline__ float adamw_mul(float a, float b) {
#ifdef __CUDA_ARCH__
    float r;
    asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
#else
    volatile float r = a * b;
    return r;
#endif
}

struct AdamWHyper {
    float decay, b1, b2, one_minus_b1, one_minus_b2, eps, step_size, bc2_sqrt, scale;
    long long decay_end;
};

__device__ __forceinline__ float adamw_one(float& p, float g, float& m, float& v, long long i, const AdamWHyper& h) {
    g = adamw_mul(g, h.scale);
    const float pi = i < h.decay_end ? adamw_mul(p, h.decay) : p;
    const float mi = m + adamw_mul(g - m, h.one_minus_b1);
    const float vi = adamw_mul(v, h.b2) + adamw_mul(adamw_mul(h.one_minus_b2, g), g);
    m = mi;
    v = vi;
    p = pi - adamw_mul(h.step_size, mi / (sqrtf(vi) / h.bc2_sqrt + h.eps));
    return p;
}

__device__ __forceinline__ unsigned int adamw_bf16_pair(float lo, float hi) {
    return (unsigned int) rlsr_float_to_bf16(lo) | ((unsigned int) rlsr_float_to_bf16(hi) << 16);
}

// launch: grid-stride, block 256
extern "C" __global__ void __launch_bounds__(AW_THREADS)
adamw_kernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m, float* __restrict__ v,
             unsigned short* __restrict__ copy, const float* __restrict__ clip_scale, long long n, long long decay_end,
             float decay, float b1, float b2, float eps, float step_size, float bc2_sqrt) {
    AdamWHyper h;
    h.decay = decay;
    h.b1 = b1;
    h.b2 = b2;
    h.one_minus_b1 = 1.f - b1;
    h.one_minus_b2 = 1.f - b2;
    h.eps = eps;
    h.step_size = step_size;
    h.bc2_sqrt = bc2_sqrt;
    h.scale = clip_scale != nullptr ? clip_scale[0] : 1.f;
    h.decay_end = decay_end;
    const long long tid = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long) gridDim.x * blockDim.x;
    const bool vec = ((((unsigned long long) param | (unsigned long long) grad | (unsigned long long) m
                        | (unsigned long long) v) & 15ull) == 0)
                     && (((unsigned long long) copy & 7ull) == 0);
    long long done = 0;
    if (vec) {
        const long long nvec = n / 4;
        float4* p4 = reinterpret_cast<float4*>(param);
        const float4* g4 = reinterpret_cast<const float4*>(grad);
        float4* m4 = reinterpret_cast<float4*>(m);
        float4* v4 = reinterpret_cast<float4*>(v);
        for (long long k = tid; k < nvec; k += stride) {
            float4 p = p4[k], mm = m4[k], vv = v4[k];
            const float4 g = g4[k];
            const long long i = 4 * k;
            adamw_one(p.x, g.x, mm.x, vv.x, i, h);
            adamw_one(p.y, g.y, mm.y, vv.y, i + 1, h);
            adamw_one(p.z, g.z, mm.z, vv.z, i + 2, h);
            adamw_one(p.w, g.w, mm.w, vv.w, i + 3, h);
            p4[k] = p;
            m4[k] = mm;
            v4[k] = vv;
            if (copy != nullptr) {
                reinterpret_cast<uint2*>(copy)[k] = make_uint2(adamw_bf16_pair(p.x, p.y), adamw_bf16_pair(p.z, p.w));
            }
        }
        done = nvec * 4;
    }
    for (long long i = done + tid; i < n; i += stride) {
        float p = param[i], mm = m[i], vv = v[i];
        adamw_one(p, grad[i], mm, vv, i, h);
        param[i] = p;
        m[i] = mm;
        v[i] = vv;
        if (copy != nullptr) copy[i] = rlsr_float_to_bf16(p);
    }
}
