// Kernels of the bindings tests: axpy (CudaDriverGpuTest) and the SIMT checks of CudaEmulatorGpuTest. Each writes
// values the test derives exactly from the CUDA documentation, so one test checks the CUDA emulator in CI and a real
// GPU in the GPU check alike. Plain CUDA: compiles with NVRTC and, unchanged, under the emulator's SIMT shim.

extern "C" __global__ void axpy_kernel(float* y, const float* x, float a, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

// Barrier: each thread stores its id, waits, reads the mirror thread's. out (gridDim.x, blockDim.x)
extern "C" __global__ void emu_barrier_reverse_kernel(int* out) {
    __shared__ int s[1024];
    const int t = threadIdx.x, n = blockDim.x;
    s[t] = t + 1000 * (int) blockIdx.x;
    __syncthreads();
    const int mirror = s[n - 1 - t];
    __syncthreads();  // nobody overwrites s before every thread has read it (the loop below writes it again)
    s[t] = 2 * mirror;
    __syncthreads();
    out[blockIdx.x * n + t] = s[n - 1 - t];
}

// Every warp primitive on known values: 10 ints per thread, width 1..32 for the shuffles. 1-D grid of full warps.
extern "C" __global__ void emu_warp_ops_kernel(int* out, int width) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x & 31;
    const int v = 100 * t + 7;
    int* o = out + 10 * t;
    o[0] = __shfl_sync(0xffffffffu, v, 5, width);
    o[1] = __shfl_up_sync(0xffffffffu, v, 3, width);
    o[2] = __shfl_down_sync(0xffffffffu, v, 3, width);
    o[3] = __shfl_xor_sync(0xffffffffu, v, 6, width);
    o[4] = (int) __ballot_sync(0xffffffffu, lane % 3 == 0);
    o[5] = __any_sync(0xffffffffu, lane == 17);
    o[6] = __all_sync(0xffffffffu, lane < 31);
    const float f = __shfl_xor_sync(0xffffffffu, 0.5f * (float) t, 1);
    o[7] = (int) (2.0f * f);
    const unsigned u = __shfl_down_sync(0xffffffffu, (unsigned) t, 16);
    o[8] = (int) u;
    __syncwarp();
    o[9] = (int) __activemask();
}

// Block sum over warps and shared memory (the pattern of rlsr_block_sum), with a __syncthreads between reuses.
// in (gridDim.x * blockDim.x) ints, out (gridDim.x): the sum of the block's inputs; blockDim.x a multiple of 32.
extern "C" __global__ void emu_block_sum_kernel(const int* in, int* out) {
    __shared__ int partial[32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    int v = in[blockIdx.x * blockDim.x + threadIdx.x];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < warps ? partial[lane] : 0;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}

// 3-D grid and block: each thread writes its coordinates where its linear global id says.
// out: 6 ints per thread (threadIdx.xyz, blockIdx.xyz); ids[linear] = linear id within the block
extern "C" __global__ void emu_index_3d_kernel(int* out) {
    const int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const int bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const int g = bid * (blockDim.x * blockDim.y * blockDim.z) + tid;
    int* o = out + 6 * g;
    o[0] = threadIdx.x;
    o[1] = threadIdx.y;
    o[2] = threadIdx.z;
    o[3] = blockIdx.x;
    o[4] = blockIdx.y;
    o[5] = blockIdx.z;
}

// Atomics, every thread of the grid on the same few words: counters[0] += 1 (int), counters[1] = max(t),
// counters[2] = min(t), counters[3] counts CAS increments, fsum[0] += 1.0f (exact below 2^24),
// counters[4] ^= t, ull[0] += t.
extern "C" __global__ void emu_atomics_kernel(int* counters, float* fsum, unsigned long long* ull) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(counters, 1);
    atomicMax(counters + 1, t);
    atomicMin(counters + 2, t);
    int old = counters[3];
    int assumed;
    do {
        assumed = old;
        old = atomicCAS(counters + 3, assumed, assumed + 1);
    } while (old != assumed);
    atomicAdd(fsum, 1.0f);
    atomicXor((unsigned*) (counters + 4), (unsigned) t);
    atomicAdd(ull, (unsigned long long) t);
}

// Dynamic shared memory: each block reverses its slice of `in` through the launch's dynamic shared memory
// (blockDim.x floats, passed as the launch's shared bytes).
extern "C" __global__ void emu_dynamic_smem_reverse_kernel(const float* in, float* out) {
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    float* s = reinterpret_cast<float*>(rlsr_smem);
    const int t = threadIdx.x, n = blockDim.x, base = blockIdx.x * n;
    s[t] = in[base + t];
    __syncthreads();
    out[base + t] = s[n - 1 - t];
}

// __syncthreads_count/_and/_or, and a barrier that threads which returned early no longer count at (sm_70+).
// out (gridDim.x, 4): count of odd t, and(t < n), or(t == 5), and the number of threads that reached the end.
extern "C" __global__ void emu_barrier_ops_kernel(int* out, int live) {
    __shared__ int reached;
    const int t = threadIdx.x;
    if (t == 0) reached = 0;
    __syncthreads();
    const int c = __syncthreads_count(t & 1);
    const int a = __syncthreads_and(t < (int) blockDim.x);
    const int o = __syncthreads_or(t == 5);
    if (t >= live) return;
    atomicAdd(&reached, 1);
    __syncthreads();  // only the `live` threads left count here
    if (t == 0) {
        int* r = out + 4 * blockIdx.x;
        r[0] = c;
        r[1] = a;
        r[2] = o;
        r[3] = reached;
    }
}

// A block whose last warp is partial (blockDim.x not a multiple of 32): votes see only the lanes that exist.
// out: one int per thread, the ballot of (lane is even) in its warp
extern "C" __global__ void emu_partial_warp_vote_kernel(int* out) {
    const int lane = threadIdx.x & 31;
    out[blockIdx.x * blockDim.x + threadIdx.x] = (int) __ballot_sync(0xffffffffu, (lane & 1) == 0);
}
