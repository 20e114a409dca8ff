// Kernels with the bugs a GPU shows only sometimes (hangs, garbage, silent corruption): CudaEmulatorFaultsGpuTest
// checks that the CUDA emulator reports each one as a launch error naming the kernel. Never launched on a real GPU.

// Half of each block waits at one __syncthreads, the other half at another line.
extern "C" __global__ void fault_divergent_barrier_kernel(int* out) {
    if (threadIdx.x < blockDim.x / 2) {
        __syncthreads();
        out[threadIdx.x] = 1;
    } else {
        __syncthreads();
        out[threadIdx.x] = 2;
    }
}

// Lanes 0-15 shuffle with a full mask while lanes 16-31 have already returned: lane 0 reads lane 16.
extern "C" __global__ void fault_partial_warp_shuffle_kernel(int* out) {
    const int lane = threadIdx.x & 31;
    if (lane >= 16) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, lane, 16);
}

// Lanes 0-15 shuffle while lanes 16-31 wait at a barrier: a deadlock.
extern "C" __global__ void fault_shuffle_vs_barrier_kernel(int* out) {
    const int lane = threadIdx.x & 31;
    int v = lane;
    if (lane < 16) {
        v = __shfl_xor_sync(0xffffffffu, v, 1);
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = v;
}

// Writes out[n + offset] from thread 0: past the end of an n-element allocation.
extern "C" __global__ void fault_write_past_end_kernel(float* out, int n, int offset) {
    if (threadIdx.x == 0 && blockIdx.x == 0) out[n + offset] = 1.0f;
}

// Reads in[n + offset] from thread 0.
extern "C" __global__ void fault_read_past_end_kernel(const float* in, float* out, int n, int offset) {
    if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = in[n + offset];
}

// Writes one float past `floats` floats of dynamic shared memory, plus `offset` more.
extern "C" __global__ void fault_dynamic_smem_overflow_kernel(int floats, int offset) {
    extern __shared__ __align__(16) unsigned char rlsr_smem[];
    float* s = reinterpret_cast<float*>(rlsr_smem);
    if (threadIdx.x == 0) s[floats + offset] = 1.0f;
}

// A device-side assert that fails for one thread.
extern "C" __global__ void fault_assert_kernel(const int* in) {
    assert(in[threadIdx.x] != 7);
}

// A shuffle whose mask leaves out the calling lane.
extern "C" __global__ void fault_mask_without_caller_kernel(int* out) {
    out[threadIdx.x] = __shfl_sync(0x1u, (int) threadIdx.x, 0);
}

// Compiled for at most 64 threads per block.
extern "C" __global__ void __launch_bounds__(64) fault_launch_bounds_kernel(int* out) {
    out[threadIdx.x] = 1;
}

// Every lane of a warp calls a shuffle, but lanes 16-31 at another line.
extern "C" __global__ void fault_shuffle_lines_kernel(int* out) {
    const int lane = threadIdx.x & 31;
    int v;
    if (lane < 16) {
        v = __shfl_xor_sync(0xffffffffu, lane, 1);
    } else {
        v = __shfl_xor_sync(0xffffffffu, lane, 1);
    }
    out[threadIdx.x] = v;
}

// Legal on sm_70+ and in the emulator: threads at and past `live` return before a barrier the others still reach.
extern "C" __global__ void fault_free_early_exit_kernel(int* out, int live) {
    __shared__ int s[1024];
    const int t = threadIdx.x;
    if (t >= live) return;
    s[t] = t;
    __syncthreads();
    out[t] = s[live - 1 - t];
}
