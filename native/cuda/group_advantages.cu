// Group-normalised advantages (GRPO): rewards (P,G) fp32 -> advantages (P,G) fp32, one launch.
//
//   scale_by_std != 0:  a = (r - mean_g) / (std_g + eps)
//   scale_by_std == 0:  a =  r - mean_g                  (Dr. GRPO: no std scaling)
// std_g is the SAMPLE standard deviation (divides by G-1, like torch.std). G = 1 has std 0 by definition and
// r - mean = 0, so its advantage is 0 (the group carries no signal).
//
// Both moments are taken about the group's first reward (shifted data): a group of equal rewards then gives
// deviations of exactly 0 and an advantage of exactly 0, which a plain float mean (sum rounding) would not.
// The deviations are summed a second time about the mean (two passes over registers), not as E[r^2]-E[r]^2,
// which cancels catastrophically.
//
// G <= 32: group_advantages_kernel, one warp per group, lane g holds r_g, shuffles reduce; blockDim 256,
//          gridDim ceil(P/8).
// G  > 32: group_advantages_large_kernel, one 256-thread block per group looping over G; gridDim P.

#define ADV_WARPS_PER_BLOCK 8
#define ADV_THREADS 256

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float advantage(float dev, float sumsq, int g, int scale_by_std, float eps) {
    if (!scale_by_std) return dev;
    const float sd = g > 1 ? sqrtf(sumsq / (float) (g - 1)) : 0.f;
    return dev / (sd + eps);
}

extern "C" __global__ void __launch_bounds__(ADV_THREADS)
group_advantages_kernel(const float* __restrict__ rewards, float* __restrict__ adv, int p, int g,
                        int scale_by_std, float eps) {
    const long long group = (long long) blockIdx.x * ADV_WARPS_PER_BLOCK + (threadIdx.x >> 5);
    if (group >= p) return;  // whole warp leaves: the shuffles need all 32 lanes
    const int lane = threadIdx.x & 31;
    const float* __restrict__ r = rewards + group * g;
    const float shift = __ldg(r);
    const float x = lane < g ? __ldg(r + lane) - shift : 0.f;
    const float mean = warp_sum(x) / (float) g;
    const float dev = lane < g ? x - mean : 0.f;
    const float sumsq = warp_sum(dev * dev);
    if (lane < g) adv[group * g + lane] = advantage(dev, sumsq, g, scale_by_std, eps);
}

__device__ __forceinline__ float block_sum(float v, float* scratch /* [ADV_THREADS/32] */) {
    v = warp_sum(v);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < ADV_THREADS / 32 ? scratch[lane] : 0.f;
    t = warp_sum(t);
    // second barrier: scratch is reused by the next call, so every warp must have read it first
    __syncthreads();
    return t;
}

extern "C" __global__ void __launch_bounds__(ADV_THREADS)
group_advantages_large_kernel(const float* __restrict__ rewards, float* __restrict__ adv, int p, int g,
                              int scale_by_std, float eps) {
    __shared__ float scratch[ADV_THREADS / 32];
    const long long group = blockIdx.x;
    if (group >= p) return;  // uniform across the block, so no barrier is skipped by part of it
    const float* __restrict__ r = rewards + group * g;
    const float shift = __ldg(r);
    float s = 0.f;
    for (int i = threadIdx.x; i < g; i += ADV_THREADS) s += __ldg(r + i) - shift;
    const float mean = block_sum(s, scratch) / (float) g;
    float ss = 0.f;
    for (int i = threadIdx.x; i < g; i += ADV_THREADS) {
        const float dev = (__ldg(r + i) - shift) - mean;
        ss = fmaf(dev, dev, ss);
    }
    const float sumsq = block_sum(ss, scratch);
    for (int i = threadIdx.x; i < g; i += ADV_THREADS) {
        const float dev = (__ldg(r + i) - shift) - mean;
        adv[group * g + i] = advantage(dev, sumsq, g, scale_by_std, eps);
    }
}
