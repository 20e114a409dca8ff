// The kernel registry: how a compiled .cu file tells the runtime about its kernels.
//
// build.sh generates one translation unit per .cu file: the file (with `extern "C"` removed) inside its own
// namespace, then one KernelDesc per `extern "C" __global__` kernel it found by scanning the source, made by
// KernelThunk<&kernel>, which deduces the parameter types from the function pointer: cuLaunchKernel's
// `void** kernelParams` is unpacked into a std::tuple of exactly those types, and each CUDA thread calls the kernel
// with a copy of that tuple. Nothing here is written by hand per kernel.
#ifndef RLSR_EMU_REGISTRY_H
#define RLSR_EMU_REGISTRY_H

#include <stddef.h>
#include <string.h>

#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#pragma GCC visibility push(hidden)

namespace rlsr_emu {

struct KernelDesc {
    const char* name;            // the extern "C" name
    int max_threads;             // __launch_bounds__' first argument, else 1024
    size_t args_size;            // bytes of the unpacked argument block
    size_t args_align;
    int num_params;
    void (*unpack)(void* const* params, void* dst);  // kernelParams -> argument block (placement-new)
    void (*thread_main)(const void* args);           // one CUDA thread of the kernel
};

struct FileDesc {
    const char* file;  // e.g. "cosine_similarity.cu"
    const KernelDesc* kernels;
    int count;
    FileDesc* next;
};

// Called by each generated translation unit's static initialiser.
void register_file(FileDesc* file);

template <auto F>
struct KernelThunk;

template <typename... A, void (*F)(A...)>
struct KernelThunk<F> {
    static_assert((std::is_trivially_copyable_v<A> && ...), "kernel parameters must be trivially copyable");
    using Args = std::tuple<A...>;

    template <size_t... I>
    static void unpack_impl(void* const* params, Args* out, std::index_sequence<I...>) {
        ((void) memcpy(static_cast<void*>(&std::get<I>(*out)), params[I], sizeof(A)), ...);
    }

    static void unpack(void* const* params, void* dst) {
        Args* out = new (dst) Args();
        unpack_impl(params, out, std::index_sequence_for<A...>{});
    }

    static void thread_main(const void* args) { std::apply(F, *static_cast<const Args*>(args)); }

    static constexpr KernelDesc desc(const char* name, int max_threads) {
        return KernelDesc{name, max_threads, sizeof(Args), alignof(Args), (int) sizeof...(A), &unpack, &thread_main};
    }
};

}  // namespace rlsr_emu

// __launch_bounds__(maxThreads[, minBlocks[, maxBlocksPerCluster]]) -> maxThreads
#define RLSR_EMU_BOUNDS(max_threads, ...) (max_threads)

#pragma GCC visibility pop
#endif  // RLSR_EMU_REGISTRY_H
