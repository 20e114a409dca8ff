// fp32 <-> bf16 conversion of n elements: the bf16 compute copy of the weights, uploads and downloads.
//
// Shapes: in (n), out (n), any n >= 1, any element-aligned addresses. f32 -> bf16 rounds to nearest even (as torch
// and cuda_bf16.h), NaN stays a quiet NaN, +-inf and values that round past the largest bf16 become +-inf;
// bf16 -> f32 is exact (a shift).
//
// Memory-bound: read once, write once. Each thread converts 8 elements per step through 16-byte accesses on the
// bf16 side (one uint4) and 2 x 16 bytes on the fp32 side, once both pointers have reached a 16-byte boundary
// together; a scalar head covers the elements before it. If the two pointers can never be aligned together (their
// offsets from a 16-byte boundary disagree) every element goes the scalar way, still coalesced.
// Grid-stride loops: any grid size is correct; the launcher sizes it to the work.
#include "rlsr_common.cuh"
#include "rlsr_vec.cuh"

#define CAST_THREADS 256

extern "C" __global__ void __launch_bounds__(CAST_THREADS)
cast_f32_to_bf16_kernel(const float* __restrict__ in, unsigned short* __restrict__ out, long long n) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    // the head is counted on the bf16 side; the fp32 side must then sit on a 16-byte boundary too
    const long long h = rlsr_head16(out, 2, n);
    const RlsrSplit s = rlsr_split(out, 2, 8, n, rlsr_mis16(in + h) == 0);
    for (long long i = tid; i < s.head; i += stride) out[i] = rlsr_float_to_bf16(in[i]);
    const uint4* __restrict__ vin = reinterpret_cast<const uint4*>(in + s.head);
    uint4* __restrict__ vout = reinterpret_cast<uint4*>(out + s.head);
    for (long long k = tid; k < s.nvec; k += stride) {
        const uint4 a = __ldg(vin + 2 * k), b = __ldg(vin + 2 * k + 1);
        float f[8];
        RlsrVecF32::unpack(a, f);
        RlsrVecF32::unpack(b, f + 4);
        vout[k] = RlsrVecBF16::pack(f);
    }
    for (long long i = s.head + s.nvec * 8 + tid; i < n; i += stride) out[i] = rlsr_float_to_bf16(in[i]);
}

extern "C" __global__ void __launch_bounds__(CAST_THREADS)
cast_bf16_to_f32_kernel(const unsigned short* __restrict__ in, float* __restrict__ out, long long n) {
    const long long tid = rlsr_gtid(), stride = rlsr_gstride();
    const long long h = rlsr_head16(in, 2, n);
    const RlsrSplit s = rlsr_split(in, 2, 8, n, rlsr_mis16(out + h) == 0);
    for (long long i = tid; i < s.head; i += stride) out[i] = rlsr_bf16_to_float(in[i]);
    const uint4* __restrict__ vin = reinterpret_cast<const uint4*>(in + s.head);
    uint4* __restrict__ vout = reinterpret_cast<uint4*>(out + s.head);
    for (long long k = tid; k < s.nvec; k += stride) {
        float f[8];
        RlsrVecBF16::unpack(__ldg(vin + k), f);
        vout[2 * k] = RlsrVecF32::pack(f);
        vout[2 * k + 1] = RlsrVecF32::pack(f + 4);
    }
    for (long long i = s.head + s.nvec * 8 + tid; i < n; i += stride) out[i] = rlsr_bf16_to_float(in[i]);
}
