// Host SIMT emulation of the CUDA subset the kernels use: one std::thread per CUDA thread, std::barrier per warp
// (shuffles) and per block (__syncthreads). __shared__ -> static (blocks run one after another).
#pragma once
#include <barrier>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>
#include <memory>
#include <cstdint>
struct dim3_ { unsigned x = 0, y = 0, z = 0; };
inline thread_local dim3_ threadIdx, blockIdx;
inline dim3_ blockDim, gridDim;
struct uint4 { unsigned int x, y, z, w; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __restrict__
#define __shared__ static
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
template <typename T> inline T __ldg(const T* p) { return *p; }
struct WarpState { std::barrier<> bar{32}; float slot[32]; };
inline thread_local WarpState* myWarp;
inline thread_local std::barrier<>* myBlock;
inline float __shfl_xor_sync(unsigned, float v, int off) {
    int lane = threadIdx.x & 31;
    myWarp->slot[lane] = v;
    myWarp->bar.arrive_and_wait();
    float r = myWarp->slot[lane ^ off];
    myWarp->bar.arrive_and_wait();
    return r;
}
inline void __syncthreads() { myBlock->arrive_and_wait(); }
template <typename F>
void launch(unsigned grid, unsigned block, F kernel) {
    blockDim.x = block; gridDim.x = grid;
    for (unsigned b = 0; b < grid; ++b) {
        std::barrier<> blockBar(block);
        std::vector<std::unique_ptr<WarpState>> warps;
        for (unsigned w = 0; w < block / 32; ++w) warps.emplace_back(new WarpState());
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < block; ++t) ts.emplace_back([&, t, b] {
            threadIdx.x = t; blockIdx.x = b; myWarp = warps[t / 32].get(); myBlock = &blockBar;
            kernel();
        });
        for (auto& th : ts) th.join();
    }
}
