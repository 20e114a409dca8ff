// Internal interface between the emulator's runtime parts: driver API (driver.cpp), SIMT scheduler (simt.cpp),
// guarded execution and memory (memory.cpp), NVRTC (nvrtc.cpp), cuBLAS/cuBLASLt (cublas.cpp), NCCL (nccl.cpp).
#ifndef RLSR_EMU_H
#define RLSR_EMU_H

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "rlsr_emu_registry.h"
#include "rlsr_emu_simt.h"

#define RLSR_API extern "C" __attribute__((visibility("default")))

#pragma GCC visibility push(hidden)

namespace rlsr_emu {

// ---- CUresult values used here (cuda.h) ---------------------------------------------------------------------------
enum CUresult : int {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_ILLEGAL_STATE = 401,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_CONTEXT_IS_DESTROYED = 709,
    CUDA_ERROR_ASSERT = 710,
    CUDA_ERROR_ILLEGAL_INSTRUCTION = 715,
    CUDA_ERROR_MISALIGNED_ADDRESS = 716,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
    CUDA_ERROR_STREAM_CAPTURE_IMPLICIT = 906,
    CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD = 908,
    CUDA_ERROR_UNKNOWN = 999,
};

// ---- the one lock: every exported function holds it, so multi-threaded callers are safe ---------------------------
std::recursive_mutex& api_lock();

// A line on stderr ("rlsr-cuda-emulator: ..."), unless RLSR_CUDA_EMULATOR_LOG=0.
void log_line(const std::string& msg);

// Remembers a human-readable detail for `code` (shown by cuGetErrorString), logs it, returns code.
int fail(int code, const std::string& detail);
// Like fail, without the log line: for failures callers provoke on purpose (probing for a kernel name).
int fail_quiet(int code, const std::string& detail);
// The detail of the last failure with this code, "" when none.
const char* error_detail(int code);
void clear_error_detail(int code);

// Runs fn under the API lock; exceptions become CUDA_ERROR_UNKNOWN / OUT_OF_MEMORY with a detail.
int api_call(const char* name, const std::function<int()>& fn);

std::string hex(uint64_t v);

// ---- memory (memory.cpp) -------------------------------------------------------------------------------------------
size_t device_memory_total();
size_t device_memory_used();
// A device allocation: `size` bytes, 256-byte aligned, its end as close to a guard page as the alignment allows.
int device_alloc(size_t size, uint64_t* out);
int device_free(uint64_t ptr, const char* fn);
void device_free_all();  // when the primary context is destroyed
int host_alloc(size_t size, void** out);
int host_free(void* p);
// OK when [ptr, ptr+bytes) lies inside one device (or pinned host) allocation; else fails naming fn and `what`.
int check_device_range(const char* fn, const char* what, uint64_t ptr, size_t bytes);
// Where an address is, for error messages ("12 bytes past the end of the 4096-byte allocation at 0x...").
std::string describe_address(uint64_t addr);
// Checks the canary bytes around every allocation; "" when intact, else what was overwritten (and repairs it).
std::string check_canaries();

// ---- guarded execution (memory.cpp): device work runs with guard-page faults turned into errors ---------------------
struct FaultInfo {
    int sig = 0;
    int code = 0;
    uint64_t addr = 0;
};
// Runs fn; a SIGSEGV/SIGBUS/SIGFPE/SIGILL inside it returns false with `fault` filled (fn is abandoned).
bool run_guarded(void (*fn)(void*), void* ctx, FaultInfo* fault);
std::string describe_fault(const FaultInfo& f);
int fault_code(const FaultInfo& f);
// Registers an address range whose faults mean something specific (fiber stack guards, shared memory guard).
void note_guard_region(uint64_t lo, uint64_t hi, const char* meaning);

// ---- SIMT (simt.cpp) ------------------------------------------------------------------------------------------------
struct LaunchDims {
    unsigned gx, gy, gz, bx, by, bz;
    unsigned shared_bytes;
};
// Runs the grid on the calling thread. On a kernel error returns the CUresult and sets `error` (naming the kernel).
int simt_launch(const KernelDesc& k, const LaunchDims& dims, const void* args, std::string& error);

// ---- registry and embedded sources (registry.cpp, generated sources.cpp) --------------------------------------------
const FileDesc* find_file(const std::string& file);
std::vector<std::string> registered_files();
struct SourceText {
    const char* name;   // file name, e.g. "rlsr_common.cuh"
    const char* begin;  // the file's bytes as built
    const char* end;
};
const SourceText* find_source(const std::string& name);
// The program text CudaKernels.source() gives NVRTC for `file` (includes of .cuh pasted in); false if unknown.
bool expanded_source(const std::string& file, std::string& out, std::string& error);
uint64_t fnv1a(const std::string& s);

// ---- streams and capture (driver.cpp), used by cuBLAS and NCCL to run or record their work -------------------------
// Runs `op` on `stream` now, or records it when the stream is capturing. `what` names the operation for errors.
int stream_submit(void* stream, const char* what, std::function<int()> op);

}  // namespace rlsr_emu

#pragma GCC visibility pop
#endif  // RLSR_EMU_H
