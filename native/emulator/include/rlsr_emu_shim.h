// The SIMT shim: the CUDA subset of native/README.md ("The CUDA subset a kernel may use") as plain C++20.
// build.sh force-includes this header (-include) into every kernel file it compiles; nothing else includes it.
//
// Every CUDA thread runs as a fiber (see simt.cpp); threads switch only inside the sync points declared here
// (__syncthreads, __syncwarp, shuffles, votes, warp reductions), so everything else is ordinary host code:
// __shared__ variables are function statics (blocks run one after another), atomics are plain read-modify-writes,
// math is the host libm. __CUDA_ARCH__ is not defined, so `#ifdef __CUDA_ARCH__` blocks take their #else branch.
#ifndef RLSR_EMU_SHIM_H
#define RLSR_EMU_SHIM_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlsr_emu_simt.h"

#pragma GCC visibility push(hidden)

// ---- qualifiers -------------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define __constant__ static
#define __managed__
// __restrict__ is a GNU C++ keyword already.

// ---- vector types (alignment as in CUDA's vector_types.h) -------------------------------------------------------
#define RLSR_EMU_VEC(T, N1, N2, N3, N4, A2, A4)                                                                     \
    struct N1 { T x; };                                                                                              \
    struct __attribute__((aligned(A2))) N2 { T x, y; };                                                              \
    struct N3 { T x, y, z; };                                                                                        \
    struct __attribute__((aligned(A4))) N4 { T x, y, z, w; };                                                        \
    static inline N1 make_##N1(T x) { return N1{x}; }                                                                \
    static inline N2 make_##N2(T x, T y) { return N2{x, y}; }                                                        \
    static inline N3 make_##N3(T x, T y, T z) { return N3{x, y, z}; }                                                \
    static inline N4 make_##N4(T x, T y, T z, T w) { return N4{x, y, z, w}; }
RLSR_EMU_VEC(signed char, char1, char2, char3, char4, 2, 4)
RLSR_EMU_VEC(unsigned char, uchar1, uchar2, uchar3, uchar4, 2, 4)
RLSR_EMU_VEC(short, short1, short2, short3, short4, 4, 8)
RLSR_EMU_VEC(unsigned short, ushort1, ushort2, ushort3, ushort4, 4, 8)
RLSR_EMU_VEC(int, int1, int2, int3, int4, 8, 16)
RLSR_EMU_VEC(unsigned int, uint1, uint2, uint3, uint4, 8, 16)
RLSR_EMU_VEC(long long, longlong1, longlong2, longlong3, longlong4, 16, 16)
RLSR_EMU_VEC(unsigned long long, ulonglong1, ulonglong2, ulonglong3, ulonglong4, 16, 16)
RLSR_EMU_VEC(float, float1, float2, float3, float4, 8, 16)
RLSR_EMU_VEC(double, double1, double2, double3, double4, 16, 16)
#undef RLSR_EMU_VEC

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

// ---- built-in variables: plain globals of the runtime, written before a fiber runs (one kernel at a time) ---------
namespace rlsr_emu {
extern uint3 g_thread_idx;
extern uint3 g_block_idx;
extern dim3 g_block_dim;
extern dim3 g_grid_dim;
extern unsigned char* g_dynamic_smem;  // this launch's dynamic shared memory (build.sh rewrites `extern __shared__`)
}  // namespace rlsr_emu
#define threadIdx (static_cast<const uint3&>(::rlsr_emu::g_thread_idx))
#define blockIdx (static_cast<const uint3&>(::rlsr_emu::g_block_idx))
#define blockDim (static_cast<const dim3&>(::rlsr_emu::g_block_dim))
#define gridDim (static_cast<const dim3&>(::rlsr_emu::g_grid_dim))
static constexpr int warpSize = 32;

// ---- sync points (simt.cpp): each names its call site so that divergence can be reported -------------------------
namespace rlsr_emu {
template <typename T>
static inline auto shfl(const char* file, int line, int op, unsigned mask, T value, int arg, int width = 32) {
    using P = decltype(+value);  // integer promotion, as CUDA's overloads for int/unsigned/long long/float/double
    static_assert(sizeof(P) == 4 || sizeof(P) == 8, "shuffles move 4- or 8-byte values");
    P v = value;
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof(P));
    bits = warp_op(file, line, op, mask, bits, arg, width);
    P out;
    memcpy(&out, &bits, sizeof(P));
    return out;
}
}  // namespace rlsr_emu

#define __syncthreads() ::rlsr_emu::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(p) ::rlsr_emu::syncthreads_op(__FILE__, __LINE__, 0, (p) ? 1 : 0)
#define __syncthreads_and(p) ::rlsr_emu::syncthreads_op(__FILE__, __LINE__, 1, (p) ? 1 : 0)
#define __syncthreads_or(p) ::rlsr_emu::syncthreads_op(__FILE__, __LINE__, 2, (p) ? 1 : 0)
#define __syncwarp(...)                                                                                              \
    ((void) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_SYNCWARP,                                         \
                                ::rlsr_emu::syncwarp_mask(__VA_ARGS__), 0ull, 0, 32))
#define __shfl_sync(mask, v, ...) ::rlsr_emu::shfl(__FILE__, __LINE__, ::rlsr_emu::OP_SHFL_IDX, (mask), (v), __VA_ARGS__)
#define __shfl_up_sync(mask, v, ...) ::rlsr_emu::shfl(__FILE__, __LINE__, ::rlsr_emu::OP_SHFL_UP, (mask), (v), __VA_ARGS__)
#define __shfl_down_sync(mask, v, ...)                                                                              \
    ::rlsr_emu::shfl(__FILE__, __LINE__, ::rlsr_emu::OP_SHFL_DOWN, (mask), (v), __VA_ARGS__)
#define __shfl_xor_sync(mask, v, ...) ::rlsr_emu::shfl(__FILE__, __LINE__, ::rlsr_emu::OP_SHFL_XOR, (mask), (v), __VA_ARGS__)
#define __ballot_sync(mask, p)                                                                                       \
    ((unsigned) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_BALLOT, (mask), (p) ? 1ull : 0ull, 0, 32))
#define __any_sync(mask, p)                                                                                          \
    ((int) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_ANY, (mask), (p) ? 1ull : 0ull, 0, 32))
#define __all_sync(mask, p)                                                                                          \
    ((int) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_ALL, (mask), (p) ? 1ull : 0ull, 0, 32))
#define __activemask() ::rlsr_emu::active_mask()
#define __reduce_add_sync(mask, v)                                                                                   \
    ((unsigned) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_REDUCE_ADD, (mask), (unsigned) (v), 0, 32))
#define __reduce_min_sync(mask, v) ::rlsr_emu::reduce_minmax(__FILE__, __LINE__, true, (mask), (v))
#define __reduce_max_sync(mask, v) ::rlsr_emu::reduce_minmax(__FILE__, __LINE__, false, (mask), (v))
#define __reduce_and_sync(mask, v)                                                                                   \
    ((unsigned) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_REDUCE_AND, (mask), (unsigned) (v), 0, 32))
#define __reduce_or_sync(mask, v)                                                                                    \
    ((unsigned) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_REDUCE_OR, (mask), (unsigned) (v), 0, 32))
#define __reduce_xor_sync(mask, v)                                                                                   \
    ((unsigned) ::rlsr_emu::warp_op(__FILE__, __LINE__, ::rlsr_emu::OP_REDUCE_XOR, (mask), (unsigned) (v), 0, 32))

namespace rlsr_emu {
static inline unsigned syncwarp_mask() { return 0xffffffffu; }
static inline unsigned syncwarp_mask(unsigned m) { return m; }
static inline int reduce_minmax(const char* f, int l, bool min, unsigned mask, int v) {
    return (int) (unsigned) warp_op(f, l, min ? OP_REDUCE_MIN_I : OP_REDUCE_MAX_I, mask, (unsigned) v, 0, 32);
}
static inline unsigned reduce_minmax(const char* f, int l, bool min, unsigned mask, unsigned v) {
    return (unsigned) warp_op(f, l, min ? OP_REDUCE_MIN_U : OP_REDUCE_MAX_U, mask, v, 0, 32);
}
}  // namespace rlsr_emu

// device-side assert, as CUDA's: the launch fails (CUDA_ERROR_ASSERT) naming the expression and the line
#undef assert
#define assert(e) ((e) ? (void) 0 : ::rlsr_emu::device_assert_fail(#e, __FILE__, __LINE__))

// ---- memory-model no-ops (one host thread runs a kernel; fibers switch only at sync points) -----------------------
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() {}
static inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __nanosleep(unsigned) {}
static inline long long clock64() { return ::rlsr_emu::clock_ticks(); }

// ---- loads and stores with cache hints: plain accesses -----------------------------------------------------------
template <typename T> static inline T __ldg(const T* p) { return *p; }
template <typename T> static inline T __ldca(const T* p) { return *p; }
template <typename T> static inline T __ldcg(const T* p) { return *p; }
template <typename T> static inline T __ldcs(const T* p) { return *p; }
template <typename T> static inline T __ldlu(const T* p) { return *p; }
template <typename T> static inline T __ldcv(const T* p) { return *p; }
template <typename T> static inline void __stwb(T* p, T v) { *p = v; }
template <typename T> static inline void __stcg(T* p, T v) { *p = v; }
template <typename T> static inline void __stcs(T* p, T v) { *p = v; }
template <typename T> static inline void __stwt(T* p, T v) { *p = v; }

// ---- atomics: plain read-modify-writes (no other CUDA thread runs between a fiber's sync points) ------------------
#define RLSR_EMU_ATOMIC(NAME, T, EXPR)                                                                              \
    static inline T NAME(T* p, T v) { T old = *p; *p = (EXPR); return old; }                                        \
    static inline T NAME##_block(T* p, T v) { return NAME(p, v); }                                                  \
    static inline T NAME##_system(T* p, T v) { return NAME(p, v); }
RLSR_EMU_ATOMIC(atomicAdd, int, old + v)
RLSR_EMU_ATOMIC(atomicAdd, unsigned int, old + v)
RLSR_EMU_ATOMIC(atomicAdd, unsigned long long, old + v)
RLSR_EMU_ATOMIC(atomicAdd, float, old + v)
RLSR_EMU_ATOMIC(atomicAdd, double, old + v)
RLSR_EMU_ATOMIC(atomicSub, int, old - v)
RLSR_EMU_ATOMIC(atomicSub, unsigned int, old - v)
RLSR_EMU_ATOMIC(atomicExch, int, v)
RLSR_EMU_ATOMIC(atomicExch, unsigned int, v)
RLSR_EMU_ATOMIC(atomicExch, unsigned long long, v)
RLSR_EMU_ATOMIC(atomicExch, float, v)
RLSR_EMU_ATOMIC(atomicMax, int, old > v ? old : v)
RLSR_EMU_ATOMIC(atomicMax, unsigned int, old > v ? old : v)
RLSR_EMU_ATOMIC(atomicMax, long long, old > v ? old : v)
RLSR_EMU_ATOMIC(atomicMax, unsigned long long, old > v ? old : v)
RLSR_EMU_ATOMIC(atomicMin, int, old < v ? old : v)
RLSR_EMU_ATOMIC(atomicMin, unsigned int, old < v ? old : v)
RLSR_EMU_ATOMIC(atomicMin, long long, old < v ? old : v)
RLSR_EMU_ATOMIC(atomicMin, unsigned long long, old < v ? old : v)
RLSR_EMU_ATOMIC(atomicAnd, int, old & v)
RLSR_EMU_ATOMIC(atomicAnd, unsigned int, old & v)
RLSR_EMU_ATOMIC(atomicAnd, unsigned long long, old & v)
RLSR_EMU_ATOMIC(atomicOr, int, old | v)
RLSR_EMU_ATOMIC(atomicOr, unsigned int, old | v)
RLSR_EMU_ATOMIC(atomicOr, unsigned long long, old | v)
RLSR_EMU_ATOMIC(atomicXor, int, old ^ v)
RLSR_EMU_ATOMIC(atomicXor, unsigned int, old ^ v)
RLSR_EMU_ATOMIC(atomicXor, unsigned long long, old ^ v)
RLSR_EMU_ATOMIC(atomicInc, unsigned int, old >= v ? 0u : old + 1u)
RLSR_EMU_ATOMIC(atomicDec, unsigned int, (old == 0u || old > v) ? v : old - 1u)
#undef RLSR_EMU_ATOMIC
#define RLSR_EMU_CAS(T)                                                                                             \
    static inline T atomicCAS(T* p, T compare, T v) { T old = *p; if (old == compare) *p = v; return old; }        \
    static inline T atomicCAS_block(T* p, T compare, T v) { return atomicCAS(p, compare, v); }                     \
    static inline T atomicCAS_system(T* p, T compare, T v) { return atomicCAS(p, compare, v); }
RLSR_EMU_CAS(int)
RLSR_EMU_CAS(unsigned int)
RLSR_EMU_CAS(unsigned long long)
RLSR_EMU_CAS(unsigned short)
#undef RLSR_EMU_CAS

// ---- bit casts and integer intrinsics ----------------------------------------------------------------------------
static inline float __uint_as_float(unsigned int u) { return __builtin_bit_cast(float, u); }
static inline unsigned int __float_as_uint(float f) { return __builtin_bit_cast(unsigned int, f); }
static inline float __int_as_float(int i) { return __builtin_bit_cast(float, i); }
static inline int __float_as_int(float f) { return __builtin_bit_cast(int, f); }
static inline double __longlong_as_double(long long i) { return __builtin_bit_cast(double, i); }
static inline long long __double_as_longlong(double d) { return __builtin_bit_cast(long long, d); }
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned) x); }
static inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long) x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned int __brev(unsigned int x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
static inline unsigned long long __brevll(unsigned long long x) {
    return ((unsigned long long) __brev((unsigned) x) << 32) | __brev((unsigned) (x >> 32));
}
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned) (((unsigned long long) a * b) >> 32);
}
static inline int __mulhi(int a, int b) { return (int) (((long long) a * b) >> 32); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long) (((unsigned __int128) a * b) >> 64);
}
static inline long long __mul64hi(long long a, long long b) { return (long long) (((__int128) a * b) >> 64); }
static inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
    const unsigned long long v = ((unsigned long long) y << 32) | x;
    unsigned int r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned) ((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
    return r;
}
static inline unsigned int __funnelshift_l(unsigned int lo, unsigned int hi, unsigned int s) {
    const unsigned long long v = ((unsigned long long) hi << 32) | lo;
    return (unsigned) ((v << (s & 31u)) >> 32);
}
static inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int s) {
    const unsigned long long v = ((unsigned long long) hi << 32) | lo;
    return (unsigned) (v >> (s & 31u));
}

// ---- float intrinsics: the host libm (the fast SFU variants are the accurate ones here) ---------------------------
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
// glibc's math.h declares __expf, __logf, ... as its own internal names, so these are macros, not functions
#define __expf(x) expf(x)
#define __exp10f(x) powf(10.0f, (x))
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __sincosf(x, s, c) sincosf((x), (s), (c))
#define __powf(x, y) powf((x), (y))
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }  // NaN -> 0
static inline int __float2int_rn(float x) { return (int) nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int) x; }
static inline int __float2int_rd(float x) { return (int) floorf(x); }
static inline int __float2int_ru(float x) { return (int) ceilf(x); }
static inline unsigned int __float2uint_rn(float x) { return (unsigned) nearbyintf(x); }
static inline unsigned int __float2uint_rz(float x) { return (unsigned) x; }
static inline float __int2float_rn(int x) { return (float) x; }
static inline float __uint2float_rn(unsigned int x) { return (float) x; }

// ---- integer and float min/max/abs as CUDA's overload set (math_functions.hpp) ------------------------------------
#define RLSR_EMU_MINMAX(R, A, B)                                                                                   \
    static inline R min(A a, B b) { return (R) a < (R) b ? (R) a : (R) b; }                                          \
    static inline R max(A a, B b) { return (R) a > (R) b ? (R) a : (R) b; }
RLSR_EMU_MINMAX(int, int, int)
RLSR_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
RLSR_EMU_MINMAX(unsigned int, int, unsigned int)
RLSR_EMU_MINMAX(unsigned int, unsigned int, int)
RLSR_EMU_MINMAX(long, long, long)
RLSR_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
RLSR_EMU_MINMAX(unsigned long, long, unsigned long)
RLSR_EMU_MINMAX(unsigned long, unsigned long, long)
RLSR_EMU_MINMAX(long long, long long, long long)
RLSR_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
RLSR_EMU_MINMAX(unsigned long long, long long, unsigned long long)
RLSR_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef RLSR_EMU_MINMAX
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(float a, double b) { return fmin(a, b); }
static inline double max(float a, double b) { return fmax(a, b); }
static inline double min(double a, float b) { return fmin(a, b); }
static inline double max(double a, float b) { return fmax(a, b); }

#pragma GCC visibility pop
#endif  // RLSR_EMU_SHIM_H
