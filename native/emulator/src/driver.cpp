// The CUDA driver API subset dev.rlsr.bindings.CudaDriver binds (same symbols, _v2 names as bound), on one emulated
// device "RLSR CUDA emulator", compute capability 9.0.
//
// Work runs when it is enqueued, in order, on the calling thread: asynchronous copies and launches are complete when
// the call returns, so streams never overlap and events record the host time at which the work before them finished
// (cuEventElapsedTime is real wall time of the emulation). Stream capture records launches, copies, memsets and library
// calls (cuBLAS, cuBLASLt, NCCL) as graph nodes instead of running them; cuGraphLaunch replays them in order. The calls
// CUDA forbids during a capture (allocation, synchronous copies, context synchronisation, work on the legacy stream
// that would wait for a capturing blocking stream) fail and invalidate the capture, as on a GPU.
#include <pthread.h>

#include <chrono>
#include <map>
#include <memory>
#include <new>
#include <set>

#include "emu.h"

using namespace rlsr_emu;

namespace rlsr_emu {
namespace {

typedef unsigned long long CUdeviceptr;

constexpr int kMaxDynamicSharedOptin = 232448;  // 227 KiB, sm_90
constexpr int kDefaultDynamicShared = 48 * 1024;
constexpr unsigned CU_STREAM_NON_BLOCKING = 0x1;
constexpr int CAPTURE_GLOBAL = 0, CAPTURE_THREAD_LOCAL = 1, CAPTURE_RELAXED = 2;
constexpr unsigned CU_EVENT_DISABLE_TIMING = 0x2;

struct Context {
    bool alive = true;
    int refcount = 0;
};

struct Node {
    std::string what;
    std::function<int()> run;
};
struct Graph {
    std::vector<Node> nodes;
};
struct GraphExec {
    std::vector<Node> nodes;
};

struct Stream {
    unsigned flags = 0;
    bool capturing = false;
    int mode = 0;
    pthread_t thread{};
    Graph* graph = nullptr;
    bool invalidated = false;
    std::string invalid_reason;
};

struct Event {
    unsigned flags = 0;
    bool recorded = false;
    long long t_ns = 0;
    Stream* captured_in = nullptr;
};

struct Module;
struct Function {
    const KernelDesc* k;
    Module* module;
    int max_dynamic_smem = kDefaultDynamicShared;
    int carveout = -1;
};
struct Module {
    const FileDesc* file;
    Context* ctx;
    bool alive = true;
    std::map<std::string, Function*> functions;
};

bool g_initialized;
Context* g_primary;
std::set<Context*> g_contexts;
thread_local Context* t_current;
std::set<Stream*> g_streams;
Stream g_legacy;
std::set<Event*> g_events;
std::set<Module*> g_modules;
std::set<Function*> g_functions;  // functions of live modules
std::set<Graph*> g_graphs;
std::set<GraphExec*> g_execs;

long long now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
}

int need_init() { return g_initialized ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED; }

int need_ctx(const char* fn) {
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (t_current == nullptr) {
        return fail(CUDA_ERROR_INVALID_CONTEXT, std::string(fn) + ": no CUDA context is current on this thread "
                                                                  "(cuCtxSetCurrent / CudaContext.makeCurrent first)");
    }
    if (!t_current->alive) {
        return fail(CUDA_ERROR_CONTEXT_IS_DESTROYED, std::string(fn) + ": the current context was destroyed (its "
                                                                       "last primary-context retain was released)");
    }
    return CUDA_SUCCESS;
}

std::string stream_name(const Stream* s) { return s == &g_legacy ? "the legacy stream" : "stream " + hex((uint64_t) s); }

Stream* stream_of(void* h, int* rc, const char* fn) {
    if (h == nullptr || h == (void*) 0x1 || h == (void*) 0x2) return &g_legacy;  // 0, CU_STREAM_LEGACY, PER_THREAD
    Stream* s = static_cast<Stream*>(h);
    if (g_streams.count(s) == 0) {
        *rc = fail(CUDA_ERROR_INVALID_HANDLE, std::string(fn) + ": " + hex((uint64_t) h) + " is not a live stream");
        return nullptr;
    }
    return s;
}

void invalidate(Stream* s, const std::string& why) {
    if (!s->invalidated) {
        s->invalidated = true;
        s->invalid_reason = why;
    }
}

const char* mode_name(int m) {
    return m == CAPTURE_GLOBAL ? "global" : m == CAPTURE_THREAD_LOCAL ? "thread-local" : "relaxed";
}

// Allocation, freeing, synchronous copies and context synchronisation are "potentially unsafe" during a capture in
// global mode (any thread) or thread-local mode (the capturing thread): refused, and the capture is invalidated.
int capture_forbids(const char* fn) {
    for (Stream* s : g_streams) {
        if (!s->capturing || s->invalidated) continue;
        const bool covers = s->mode == CAPTURE_GLOBAL ||
                            (s->mode == CAPTURE_THREAD_LOCAL && pthread_equal(s->thread, pthread_self()));
        if (covers) {
            std::string why = std::string(fn) + " is not allowed while " + stream_name(s) + " is being captured (" +
                              mode_name(s->mode) + " mode); the capture is invalidated";
            invalidate(s, why);
            return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, why);
        }
    }
    return CUDA_SUCCESS;
}

// Work on the legacy stream waits for every blocking stream: not allowed while one of them is being captured.
int legacy_forbids(const char* fn) {
    for (Stream* s : g_streams) {
        if (!s->capturing || s->invalidated || (s->flags & CU_STREAM_NON_BLOCKING)) continue;
        std::string why = std::string(fn) + " on the legacy stream would wait for " + stream_name(s) +
                          ", which is being captured; the capture is invalidated (create the capturing stream with "
                          "CU_STREAM_NON_BLOCKING, or use it instead of stream 0)";
        invalidate(s, why);
        return fail(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, why);
    }
    return CUDA_SUCCESS;
}

struct CopyJob {
    void* dst;
    const void* src;
    size_t n;
    unsigned value;
    int elem;  // 0 copy, 1/2/4 memset element size
};

void copy_job(void* p) {
    CopyJob* j = static_cast<CopyJob*>(p);
    if (j->elem == 0) {
        memmove(j->dst, j->src, j->n);
    } else if (j->elem == 1) {
        memset(j->dst, (int) (j->value & 0xff), j->n);
    } else if (j->elem == 2) {
        unsigned short* d = static_cast<unsigned short*>(j->dst);
        for (size_t i = 0; i < j->n; ++i) d[i] = (unsigned short) j->value;
    } else {
        unsigned* d = static_cast<unsigned*>(j->dst);
        for (size_t i = 0; i < j->n; ++i) d[i] = j->value;
    }
}

int run_copy(const char* fn, CopyJob j) {
    FaultInfo f;
    if (!run_guarded(copy_job, &j, &f)) return fail(CUDA_ERROR_INVALID_VALUE, std::string(fn) + ": " + describe_fault(f));
    return CUDA_SUCCESS;
}

// A copy or memset, checked against the allocations when it runs (so a replayed graph sees freed memory too).
int copy_op(const char* fn, CopyJob j, bool dst_device, bool src_device) {
    const size_t bytes = j.elem == 0 ? j.n : j.n * (size_t) j.elem;
    int rc;
    if (dst_device && (rc = check_device_range(fn, "the destination", (uint64_t) j.dst, bytes))) return rc;
    if (src_device && (rc = check_device_range(fn, "the source", (uint64_t) j.src, bytes))) return rc;
    return run_copy(fn, j);
}

int submit_copy(void* stream, const char* fn, CopyJob j, bool dst_device, bool src_device) {
    int rc = need_ctx(fn);
    if (rc) return rc;
    return stream_submit(stream, fn, [fn, j, dst_device, src_device] { return copy_op(fn, j, dst_device, src_device); });
}

int sync_copy(const char* fn, CopyJob j, bool dst_device, bool src_device) {
    int rc = need_ctx(fn);
    if (rc) return rc;
    if ((rc = capture_forbids(fn)) || (rc = legacy_forbids(fn))) return rc;
    return copy_op(fn, j, dst_device, src_device);
}

int run_kernel(const Function* fn, const LaunchDims& d, const void* args) {
    if (g_functions.count(const_cast<Function*>(fn)) == 0) {
        return fail(CUDA_ERROR_INVALID_HANDLE, "launch of kernel '" + std::string(fn->k->name) +
                                                       "': its module was unloaded");
    }
    std::string err;
    int rc = simt_launch(*fn->k, d, args, err);
    fflush(stdout);  // a kernel's printf shows right after its launch, not whenever the C buffer fills
    if (rc) return fail(rc, err);
    std::string over = check_canaries();
    if (!over.empty()) return fail(CUDA_ERROR_ILLEGAL_ADDRESS, "kernel '" + std::string(fn->k->name) + "' " + over);
    return CUDA_SUCCESS;
}

void destroy_primary() {
    Context* c = g_primary;
    c->alive = false;
    g_primary = nullptr;
    for (Module* m : g_modules) {
        m->alive = false;
        for (auto& [name, f] : m->functions) g_functions.erase(f);
    }
    g_modules.clear();
    device_free_all();
}

struct ErrorText {
    int code;
    const char* name;
    const char* text;
};
const ErrorText kErrors[] = {
        {0, "CUDA_SUCCESS", "no error"},
        {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
        {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
        {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
        {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
        {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
        {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
        {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
        {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
        {209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
        {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
        {401, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
        {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
        {600, "CUDA_ERROR_NOT_READY", "device not ready"},
        {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
        {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
        {709, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
        {710, "CUDA_ERROR_ASSERT", "device-side assert triggered"},
        {715, "CUDA_ERROR_ILLEGAL_INSTRUCTION", "an illegal instruction was encountered"},
        {716, "CUDA_ERROR_MISALIGNED_ADDRESS", "misaligned address"},
        {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
        {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
        {900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
        {901, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
        {906, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT",
         "operation would make the legacy stream depend on a capturing blocking stream"},
        {908, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD",
         "attempt to terminate a thread-local capture sequence from another thread"},
        {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

const ErrorText* error_text(int code) {
    for (const ErrorText& e : kErrors)
        if (e.code == code) return &e;
    return nullptr;
}

int device_attribute(int attr, int* v) {
    switch (attr) {
        case 1: *v = 1024; return 0;             // MAX_THREADS_PER_BLOCK
        case 2: *v = 1024; return 0;             // MAX_BLOCK_DIM_X
        case 3: *v = 1024; return 0;             // MAX_BLOCK_DIM_Y
        case 4: *v = 64; return 0;               // MAX_BLOCK_DIM_Z
        case 5: *v = 2147483647; return 0;       // MAX_GRID_DIM_X
        case 6: *v = 65535; return 0;            // MAX_GRID_DIM_Y
        case 7: *v = 65535; return 0;            // MAX_GRID_DIM_Z
        case 8: *v = 49152; return 0;            // MAX_SHARED_MEMORY_PER_BLOCK
        case 9: *v = 65536; return 0;            // TOTAL_CONSTANT_MEMORY
        case 10: *v = 32; return 0;              // WARP_SIZE
        case 11: *v = 2147483647; return 0;      // MAX_PITCH
        case 12: *v = 65536; return 0;           // MAX_REGISTERS_PER_BLOCK
        case 13: *v = 1000000; return 0;         // CLOCK_RATE (kHz)
        case 14: *v = 512; return 0;             // TEXTURE_ALIGNMENT
        case 15: *v = 1; return 0;               // GPU_OVERLAP
        case 16: *v = 132; return 0;             // MULTIPROCESSOR_COUNT (an H100 SXM's, so grids are shaped alike)
        case 17: *v = 0; return 0;               // KERNEL_EXEC_TIMEOUT
        case 18: *v = 0; return 0;               // INTEGRATED
        case 19: *v = 1; return 0;               // CAN_MAP_HOST_MEMORY
        case 20: *v = 0; return 0;               // COMPUTE_MODE (default)
        case 31: *v = 1; return 0;               // CONCURRENT_KERNELS
        case 32: *v = 0; return 0;               // ECC_ENABLED
        case 33: *v = 0; return 0;               // PCI_BUS_ID
        case 34: *v = 0; return 0;               // PCI_DEVICE_ID
        case 36: *v = 2619000; return 0;         // MEMORY_CLOCK_RATE (kHz)
        case 37: *v = 5120; return 0;            // GLOBAL_MEMORY_BUS_WIDTH
        case 38: *v = 50 * 1024 * 1024; return 0;  // L2_CACHE_SIZE
        case 39: *v = 2048; return 0;            // MAX_THREADS_PER_MULTIPROCESSOR
        case 40: *v = 2; return 0;               // ASYNC_ENGINE_COUNT
        case 41: *v = 1; return 0;               // UNIFIED_ADDRESSING
        case 50: *v = 0; return 0;               // PCI_DOMAIN_ID
        case 75: *v = 9; return 0;               // COMPUTE_CAPABILITY_MAJOR
        case 76: *v = 0; return 0;               // COMPUTE_CAPABILITY_MINOR
        case 81: *v = 233472; return 0;          // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
        case 82: *v = 65536; return 0;           // MAX_REGISTERS_PER_MULTIPROCESSOR
        case 83: *v = 1; return 0;               // MANAGED_MEMORY
        case 84: *v = 0; return 0;               // MULTI_GPU_BOARD
        case 95: *v = 0; return 0;               // COOPERATIVE_LAUNCH
        case 97: *v = kMaxDynamicSharedOptin; return 0;  // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        case 106: *v = 32; return 0;             // MAX_BLOCKS_PER_MULTIPROCESSOR
        default:
            if (attr > 0 && attr < 150) {
                *v = 0;
                return 0;
            }
            return -1;
    }
}

}  // namespace

int stream_submit(void* stream, const char* what, std::function<int()> op) {
    int rc = 0;
    Stream* s = stream_of(stream, &rc, what);
    if (s == nullptr) return rc;
    if (s->capturing) {
        if (s->invalidated) {
            return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, std::string(what) + " on " + stream_name(s) +
                                                                       ", whose capture was invalidated: " +
                                                                       s->invalid_reason);
        }
        s->graph->nodes.push_back(Node{what, std::move(op)});
        return CUDA_SUCCESS;
    }
    if (s == &g_legacy && (rc = legacy_forbids(what))) return rc;
    return op();
}

}  // namespace rlsr_emu

// =====================================================================================================================
// errors, init, devices
// =====================================================================================================================
RLSR_API int cuGetErrorName(int error, const char** pStr) {
    const ErrorText* e = error_text(error);
    if (pStr) *pStr = e ? e->name : nullptr;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// The standard text, followed by what the emulator saw for the last failure with this code.
RLSR_API int cuGetErrorString(int error, const char** pStr) {
    std::lock_guard<std::recursive_mutex> lock(api_lock());
    const ErrorText* e = error_text(error);
    if (e == nullptr) {
        if (pStr) *pStr = nullptr;
        return CUDA_ERROR_INVALID_VALUE;
    }
    static std::map<int, std::string> texts;
    const char* d = error_detail(error);
    std::string& t = texts[error];
    t = *d ? std::string(e->text) + ": " + d : std::string(e->text);
    if (pStr) *pStr = t.c_str();
    return CUDA_SUCCESS;
}

RLSR_API int cuInit(unsigned flags) {
    return api_call("cuInit", [&]() -> int {
        if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuInit: flags must be 0");
        g_initialized = true;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuDriverGetVersion(int* v) {
    if (v == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *v = 13000;
    return CUDA_SUCCESS;
}

RLSR_API int cuDeviceGetCount(int* count) {
    return api_call("cuDeviceGetCount", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
        *count = 1;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuDeviceGet(int* dev, int ordinal) {
    return api_call("cuDeviceGet", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if (ordinal != 0) return fail(CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet: the emulator has one device (ordinal 0)");
        *dev = 0;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuDeviceGetName(char* name, int len, int dev) {
    return api_call("cuDeviceGetName", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
        if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
        snprintf(name, (size_t) len, "%s", "RLSR CUDA emulator");
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuDeviceGetAttribute(int* pi, int attrib, int dev) {
    return api_call("cuDeviceGetAttribute", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
        if (pi == nullptr || device_attribute(attrib, pi) != 0) {
            return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute: unknown attribute " + std::to_string(attrib));
        }
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuDeviceTotalMem_v2(size_t* bytes, int dev) {
    return api_call("cuDeviceTotalMem_v2", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
        if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
        *bytes = device_memory_total();
        return CUDA_SUCCESS;
    });
}

// =====================================================================================================================
// contexts
// =====================================================================================================================
RLSR_API int cuDevicePrimaryCtxRetain(void** pctx, int dev) {
    return api_call("cuDevicePrimaryCtxRetain", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
        if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if (g_primary == nullptr) {
            g_primary = new Context();  // never deleted: a stale handle stays recognisable as destroyed
            g_contexts.insert(g_primary);
        }
        g_primary->refcount++;
        *pctx = g_primary;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuDevicePrimaryCtxRelease_v2(int dev) {
    return api_call("cuDevicePrimaryCtxRelease_v2", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
        if (g_primary == nullptr) {
            return fail(CUDA_ERROR_INVALID_CONTEXT, "cuDevicePrimaryCtxRelease_v2: the primary context is not retained");
        }
        // the last release destroys the context with its memory and modules, as the driver does
        if (--g_primary->refcount == 0) destroy_primary();
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuCtxSetCurrent(void* ctx) {
    return api_call("cuCtxSetCurrent", [&]() -> int {
        if (int rc = need_init()) return rc;
        if (ctx == nullptr) {
            t_current = nullptr;
            return CUDA_SUCCESS;
        }
        Context* c = static_cast<Context*>(ctx);
        if (g_contexts.count(c) == 0) {
            return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxSetCurrent: " + hex((uint64_t) ctx) + " is not a context");
        }
        if (!c->alive) {
            return fail(CUDA_ERROR_CONTEXT_IS_DESTROYED, "cuCtxSetCurrent: " + hex((uint64_t) ctx) +
                                                                 " was destroyed (its last retain was released)");
        }
        t_current = c;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuCtxGetCurrent(void** pctx) {
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *pctx = t_current;  // a per-thread read: no lock, this runs before every launch from Java
    return CUDA_SUCCESS;
}

RLSR_API int cuCtxGetDevice(int* dev) {
    return api_call("cuCtxGetDevice", [&]() -> int {
        if (int rc = need_ctx("cuCtxGetDevice")) return rc;
        if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
        *dev = 0;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuCtxSynchronize() {
    return api_call("cuCtxSynchronize", [&]() -> int {
        if (int rc = need_ctx("cuCtxSynchronize")) return rc;
        return capture_forbids("cuCtxSynchronize");
    });
}

// =====================================================================================================================
// memory
// =====================================================================================================================
RLSR_API int cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
    return api_call("cuMemGetInfo_v2", [&]() -> int {
        if (int rc = need_ctx("cuMemGetInfo_v2")) return rc;
        if (free_bytes == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
        *total = device_memory_total();
        *free_bytes = *total - device_memory_used();
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
    return api_call("cuMemAlloc_v2", [&]() -> int {
        if (int rc = need_ctx("cuMemAlloc_v2")) return rc;
        if (dptr == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if (int rc = capture_forbids("cuMemAlloc_v2")) return rc;
        uint64_t p = 0;
        int rc = device_alloc(bytes, &p);
        if (rc == 0) *dptr = p;
        return rc;
    });
}

RLSR_API int cuMemFree_v2(CUdeviceptr p) {
    return api_call("cuMemFree_v2", [&]() -> int {
        if (int rc = need_ctx("cuMemFree_v2")) return rc;
        if (int rc = capture_forbids("cuMemFree_v2")) return rc;
        if (p == 0) return CUDA_SUCCESS;
        return device_free(p, "cuMemFree_v2");
    });
}

RLSR_API int cuMemAllocHost_v2(void** pp, size_t bytes) {
    return api_call("cuMemAllocHost_v2", [&]() -> int {
        if (int rc = need_ctx("cuMemAllocHost_v2")) return rc;
        if (pp == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if (int rc = capture_forbids("cuMemAllocHost_v2")) return rc;
        return host_alloc(bytes, pp);
    });
}

RLSR_API int cuMemFreeHost(void* p) {
    return api_call("cuMemFreeHost", [&]() -> int {
        if (int rc = need_ctx("cuMemFreeHost")) return rc;
        if (int rc = capture_forbids("cuMemFreeHost")) return rc;
        return host_free(p);
    });
}

RLSR_API int cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    return api_call("cuMemcpyHtoD_v2", [&] { return sync_copy("cuMemcpyHtoD_v2", {(void*) dst, src, n, 0, 0}, true, false); });
}

RLSR_API int cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    return api_call("cuMemcpyDtoH_v2", [&] { return sync_copy("cuMemcpyDtoH_v2", {dst, (const void*) src, n, 0, 0}, false, true); });
}

RLSR_API int cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    return api_call("cuMemcpyDtoD_v2", [&] {
        return sync_copy("cuMemcpyDtoD_v2", {(void*) dst, (const void*) src, n, 0, 0}, true, true);
    });
}

RLSR_API int cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* stream) {
    return api_call("cuMemcpyHtoDAsync_v2", [&] {
        return submit_copy(stream, "cuMemcpyHtoDAsync_v2", {(void*) dst, src, n, 0, 0}, true, false);
    });
}

RLSR_API int cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* stream) {
    return api_call("cuMemcpyDtoHAsync_v2", [&] {
        return submit_copy(stream, "cuMemcpyDtoHAsync_v2", {dst, (const void*) src, n, 0, 0}, false, true);
    });
}

RLSR_API int cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void* stream) {
    return api_call("cuMemcpyDtoDAsync_v2", [&] {
        return submit_copy(stream, "cuMemcpyDtoDAsync_v2", {(void*) dst, (const void*) src, n, 0, 0}, true, true);
    });
}

RLSR_API int cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) {
    return api_call("cuMemsetD8_v2", [&] { return sync_copy("cuMemsetD8_v2", {(void*) dst, nullptr, n, v, 1}, true, false); });
}

RLSR_API int cuMemsetD16_v2(CUdeviceptr dst, unsigned short v, size_t n) {
    return api_call("cuMemsetD16_v2", [&] { return sync_copy("cuMemsetD16_v2", {(void*) dst, nullptr, n, v, 2}, true, false); });
}

RLSR_API int cuMemsetD32_v2(CUdeviceptr dst, unsigned v, size_t n) {
    return api_call("cuMemsetD32_v2", [&] { return sync_copy("cuMemsetD32_v2", {(void*) dst, nullptr, n, v, 4}, true, false); });
}

RLSR_API int cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void* stream) {
    return api_call("cuMemsetD8Async", [&] {
        return submit_copy(stream, "cuMemsetD8Async", {(void*) dst, nullptr, n, v, 1}, true, false);
    });
}

RLSR_API int cuMemsetD16Async(CUdeviceptr dst, unsigned short v, size_t n, void* stream) {
    return api_call("cuMemsetD16Async", [&] {
        return submit_copy(stream, "cuMemsetD16Async", {(void*) dst, nullptr, n, v, 2}, true, false);
    });
}

RLSR_API int cuMemsetD32Async(CUdeviceptr dst, unsigned v, size_t n, void* stream) {
    return api_call("cuMemsetD32Async", [&] {
        return submit_copy(stream, "cuMemsetD32Async", {(void*) dst, nullptr, n, v, 4}, true, false);
    });
}

// =====================================================================================================================
// streams and events
// =====================================================================================================================
RLSR_API int cuStreamCreate(void** ph, unsigned flags) {
    return api_call("cuStreamCreate", [&]() -> int {
        if (int rc = need_ctx("cuStreamCreate")) return rc;
        if (ph == nullptr || (flags & ~CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
        Stream* s = new Stream();
        s->flags = flags;
        g_streams.insert(s);
        *ph = s;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuStreamDestroy_v2(void* h) {
    return api_call("cuStreamDestroy_v2", [&]() -> int {
        if (int rc = need_ctx("cuStreamDestroy_v2")) return rc;
        Stream* s = static_cast<Stream*>(h);
        if (h == nullptr || g_streams.count(s) == 0) {
            return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamDestroy_v2: " + hex((uint64_t) h) + " is not a live stream");
        }
        g_streams.erase(s);
        delete s->graph;
        delete s;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuStreamSynchronize(void* h) {
    return api_call("cuStreamSynchronize", [&]() -> int {
        if (int rc = need_ctx("cuStreamSynchronize")) return rc;
        int rc = 0;
        Stream* s = stream_of(h, &rc, "cuStreamSynchronize");
        if (s == nullptr) return rc;
        if (s->capturing) {
            std::string why = "cuStreamSynchronize of " + stream_name(s) + " while it is being captured; the capture "
                                                                             "is invalidated";
            invalidate(s, why);
            return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, why);
        }
        if (s == &g_legacy) return legacy_forbids("cuStreamSynchronize");
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuStreamQuery(void* h) {
    return api_call("cuStreamQuery", [&]() -> int {
        if (int rc = need_ctx("cuStreamQuery")) return rc;
        int rc = 0;
        return stream_of(h, &rc, "cuStreamQuery") ? CUDA_SUCCESS : rc;
    });
}

RLSR_API int cuStreamWaitEvent(void* h, void* ev, unsigned flags) {
    return api_call("cuStreamWaitEvent", [&]() -> int {
        if (int rc = need_ctx("cuStreamWaitEvent")) return rc;
        int rc = 0;
        Stream* s = stream_of(h, &rc, "cuStreamWaitEvent");
        if (s == nullptr) return rc;
        Event* e = static_cast<Event*>(ev);
        if (ev == nullptr || g_events.count(e) == 0) {
            return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamWaitEvent: " + hex((uint64_t) ev) + " is not a live event");
        }
        (void) flags;
        // everything before the event has run already; only joining another stream into a capture is not emulated
        if (e->captured_in != nullptr && e->captured_in != s && e->captured_in->capturing) {
            return fail(CUDA_ERROR_NOT_SUPPORTED, "cuStreamWaitEvent: joining " + stream_name(s) + " into the capture "
                                                          "of " + stream_name(e->captured_in) +
                                                          " (multi-stream capture) is not emulated");
        }
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuEventCreate(void** ph, unsigned flags) {
    return api_call("cuEventCreate", [&]() -> int {
        if (int rc = need_ctx("cuEventCreate")) return rc;
        if (ph == nullptr || (flags & ~0xfu)) return CUDA_ERROR_INVALID_VALUE;
        Event* e = new Event();
        e->flags = flags;
        g_events.insert(e);
        *ph = e;
        return CUDA_SUCCESS;
    });
}

static Event* event_of(void* h, int* rc, const char* fn) {
    Event* e = static_cast<Event*>(h);
    if (h == nullptr || g_events.count(e) == 0) {
        *rc = fail(CUDA_ERROR_INVALID_HANDLE, std::string(fn) + ": " + hex((uint64_t) h) + " is not a live event");
        return nullptr;
    }
    return e;
}

RLSR_API int cuEventRecord(void* ev, void* h) {
    return api_call("cuEventRecord", [&]() -> int {
        if (int rc = need_ctx("cuEventRecord")) return rc;
        int rc = 0;
        Event* e = event_of(ev, &rc, "cuEventRecord");
        if (e == nullptr) return rc;
        Stream* s = stream_of(h, &rc, "cuEventRecord");
        if (s == nullptr) return rc;
        if (s->capturing) {  // marks a point of the capture, for cuStreamWaitEvent
            e->captured_in = s;
            return CUDA_SUCCESS;
        }
        if (s == &g_legacy && (rc = legacy_forbids("cuEventRecord"))) return rc;
        e->captured_in = nullptr;
        e->recorded = true;
        e->t_ns = now_ns();
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuEventQuery(void* ev) {
    return api_call("cuEventQuery", [&]() -> int {
        if (int rc = need_ctx("cuEventQuery")) return rc;
        int rc = 0;
        return event_of(ev, &rc, "cuEventQuery") ? CUDA_SUCCESS : rc;
    });
}

RLSR_API int cuEventSynchronize(void* ev) {
    return api_call("cuEventSynchronize", [&]() -> int {
        if (int rc = need_ctx("cuEventSynchronize")) return rc;
        int rc = 0;
        Event* e = event_of(ev, &rc, "cuEventSynchronize");
        if (e == nullptr) return rc;
        if (e->captured_in != nullptr && e->captured_in->capturing) {
            return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuEventSynchronize of an event recorded inside a "
                                                                   "capture");
        }
        return CUDA_SUCCESS;
    });
}

static int elapsed(float* ms, void* a, void* b) {
    return api_call("cuEventElapsedTime_v2", [&]() -> int {
        if (int rc = need_ctx("cuEventElapsedTime_v2")) return rc;
        int rc = 0;
        Event* s = event_of(a, &rc, "cuEventElapsedTime_v2");
        if (s == nullptr) return rc;
        Event* e = event_of(b, &rc, "cuEventElapsedTime_v2");
        if (e == nullptr) return rc;
        if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if ((s->flags | e->flags) & CU_EVENT_DISABLE_TIMING) {
            return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime_v2: an event was created with "
                                                   "CU_EVENT_DISABLE_TIMING");
        }
        if (!s->recorded || !e->recorded) {
            return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime_v2: both events must have been recorded");
        }
        *ms = (float) ((e->t_ns - s->t_ns) / 1e6);
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuEventElapsedTime_v2(float* ms, void* a, void* b) { return elapsed(ms, a, b); }
RLSR_API int cuEventElapsedTime(float* ms, void* a, void* b) { return elapsed(ms, a, b); }

RLSR_API int cuEventDestroy_v2(void* ev) {
    return api_call("cuEventDestroy_v2", [&]() -> int {
        if (int rc = need_ctx("cuEventDestroy_v2")) return rc;
        int rc = 0;
        Event* e = event_of(ev, &rc, "cuEventDestroy_v2");
        if (e == nullptr) return rc;
        g_events.erase(e);
        delete e;
        return CUDA_SUCCESS;
    });
}

// =====================================================================================================================
// modules and launches
// =====================================================================================================================
static const char kImageMagic[] = "\177ELF\nRLSR-CUDA-EMULATOR-IMAGE\n";

RLSR_API int cuModuleLoadData(void** pmod, const void* image) {
    return api_call("cuModuleLoadData", [&]() -> int {
        if (int rc = need_ctx("cuModuleLoadData")) return rc;
        if (pmod == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if (int rc = capture_forbids("cuModuleLoadData")) return rc;
        const char* img = static_cast<const char*>(image);
        if (strncmp(img, kImageMagic, sizeof kImageMagic - 1) != 0) {
            const bool elf = memcmp(img, "\177ELF", 4) == 0;
            return fail(CUDA_ERROR_INVALID_IMAGE,
                        std::string("cuModuleLoadData: ") +
                                (elf ? "a cubin of a real NVRTC/nvcc" : "PTX or an unknown image") +
                                ": the emulator only loads the images its own NVRTC makes (compile the program through "
                                "Nvrtc/KernelCache with the emulator loaded)");
        }
        std::string text(img + sizeof kImageMagic - 1, strnlen(img + sizeof kImageMagic - 1, 4096));
        auto field = [&](const char* key) {
            std::string k = std::string(key) + "=";
            size_t p = text.find(k);
            if (p == std::string::npos) return std::string();
            size_t e = text.find('\n', p);
            return text.substr(p + k.size(), e == std::string::npos ? std::string::npos : e - p - k.size());
        };
        const std::string file = field("file"), hash = field("source-fnv1a");
        const FileDesc* fd = find_file(file);
        std::string expanded, err;
        if (fd == nullptr || !expanded_source(file, expanded, err)) {
            return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: the image names '" + file +
                                                          "', which this emulator build does not contain; rebuild it "
                                                          "(native/emulator/build.sh DIR)");
        }
        if (hash != hex(fnv1a(expanded))) {
            return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: the image of '" + file +
                                                          "' was made from another version of the source than this "
                                                          "emulator build (stale kernel cache entry or stale "
                                                          "emulator: rebuild with native/emulator/build.sh DIR)");
        }
        Module* m = new Module();
        m->file = fd;
        m->ctx = t_current;
        g_modules.insert(m);
        *pmod = m;
        return CUDA_SUCCESS;
    });
}

static Module* module_of(void* h, int* rc, const char* fn) {
    Module* m = static_cast<Module*>(h);
    if (h == nullptr || g_modules.count(m) == 0) {
        *rc = fail(CUDA_ERROR_INVALID_HANDLE, std::string(fn) + ": " + hex((uint64_t) h) + " is not a loaded module");
        return nullptr;
    }
    return m;
}

RLSR_API int cuModuleUnload(void* h) {
    return api_call("cuModuleUnload", [&]() -> int {
        if (int rc = need_ctx("cuModuleUnload")) return rc;
        if (int rc = capture_forbids("cuModuleUnload")) return rc;
        int rc = 0;
        Module* m = module_of(h, &rc, "cuModuleUnload");
        if (m == nullptr) return rc;
        g_modules.erase(m);
        m->alive = false;
        for (auto& [name, f] : m->functions) g_functions.erase(f);  // Function objects stay: graphs may point at them
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuModuleGetFunction(void** pf, void* h, const char* name) {
    return api_call("cuModuleGetFunction", [&]() -> int {
        if (int rc = need_ctx("cuModuleGetFunction")) return rc;
        int rc = 0;
        Module* m = module_of(h, &rc, "cuModuleGetFunction");
        if (m == nullptr) return rc;
        if (pf == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
        auto it = m->functions.find(name);
        if (it != m->functions.end()) {
            *pf = it->second;
            return CUDA_SUCCESS;
        }
        for (int i = 0; i < m->file->count; ++i) {
            if (strcmp(m->file->kernels[i].name, name) == 0) {
                Function* f = new Function();
                f->k = &m->file->kernels[i];
                f->module = m;
                m->functions[name] = f;
                g_functions.insert(f);
                *pf = f;
                return CUDA_SUCCESS;
            }
        }
        std::string names;
        for (int i = 0; i < m->file->count; ++i) names += std::string(i ? ", " : "") + m->file->kernels[i].name;
        // expected by callers that probe for a kernel: the detail is kept for cuGetErrorString, not logged
        std::string d = "cuModuleGetFunction: no extern \"C\" __global__ kernel '" + std::string(name) + "' in " +
                        m->file->file + " (it has: " + names + ")";
        return fail_quiet(CUDA_ERROR_NOT_FOUND, d);
    });
}

static Function* function_of(void* h, int* rc, const char* fn) {
    Function* f = static_cast<Function*>(h);
    if (h == nullptr || g_functions.count(f) == 0) {
        *rc = fail(CUDA_ERROR_INVALID_HANDLE, std::string(fn) + ": " + hex((uint64_t) h) +
                                                      " is not a function of a loaded module");
        return nullptr;
    }
    return f;
}

RLSR_API int cuFuncGetAttribute(int* pi, int attrib, void* h) {
    return api_call("cuFuncGetAttribute", [&]() -> int {
        if (int rc = need_ctx("cuFuncGetAttribute")) return rc;
        int rc = 0;
        Function* f = function_of(h, &rc, "cuFuncGetAttribute");
        if (f == nullptr) return rc;
        if (pi == nullptr) return CUDA_ERROR_INVALID_VALUE;
        switch (attrib) {
            case 0: *pi = f->k->max_threads; return CUDA_SUCCESS;  // MAX_THREADS_PER_BLOCK
            case 1: *pi = 0; return CUDA_SUCCESS;                  // SHARED_SIZE_BYTES (static; not measured)
            case 2: *pi = 0; return CUDA_SUCCESS;                  // CONST_SIZE_BYTES
            case 3: *pi = 0; return CUDA_SUCCESS;                  // LOCAL_SIZE_BYTES
            case 4: *pi = 32; return CUDA_SUCCESS;                 // NUM_REGS (a plausible number, never used here)
            case 5: *pi = 90; return CUDA_SUCCESS;                 // PTX_VERSION
            case 6: *pi = 90; return CUDA_SUCCESS;                 // BINARY_VERSION
            case 7: *pi = 0; return CUDA_SUCCESS;                  // CACHE_MODE_CA
            case 8: *pi = f->max_dynamic_smem; return CUDA_SUCCESS;  // MAX_DYNAMIC_SHARED_SIZE_BYTES
            case 9: *pi = f->carveout; return CUDA_SUCCESS;          // PREFERRED_SHARED_MEMORY_CARVEOUT
            default: return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncGetAttribute: unknown attribute " + std::to_string(attrib));
        }
    });
}

RLSR_API int cuFuncSetAttribute(void* h, int attrib, int value) {
    return api_call("cuFuncSetAttribute", [&]() -> int {
        if (int rc = need_ctx("cuFuncSetAttribute")) return rc;
        int rc = 0;
        Function* f = function_of(h, &rc, "cuFuncSetAttribute");
        if (f == nullptr) return rc;
        switch (attrib) {
            case 8:
                if (value < 0 || value > kMaxDynamicSharedOptin) {
                    return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, " +
                                                                  std::to_string(value) + "): at most " +
                                                                  std::to_string(kMaxDynamicSharedOptin) + " on sm_90");
                }
                f->max_dynamic_smem = value;
                return CUDA_SUCCESS;
            case 9:
                if (value < -1 || value > 100) return CUDA_ERROR_INVALID_VALUE;
                f->carveout = value;
                return CUDA_SUCCESS;
            default:
                return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute: attribute " + std::to_string(attrib) +
                                                              " cannot be set");
        }
    });
}

RLSR_API int cuLaunchKernel(void* h, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shared_bytes, void* hstream, void** params, void** extra) {
    return api_call("cuLaunchKernel", [&]() -> int {
        if (int rc = need_ctx("cuLaunchKernel")) return rc;
        int rc = 0;
        Function* f = function_of(h, &rc, "cuLaunchKernel");
        if (f == nullptr) return rc;
        const KernelDesc& k = *f->k;
        auto who = [&k] { return "cuLaunchKernel of '" + std::string(k.name) + "'"; };  // only on errors
        if (extra != nullptr) {
            return fail(CUDA_ERROR_INVALID_VALUE, who() + ": `extra` (CU_LAUNCH_PARAM_BUFFER_*) is not emulated; pass "
                                                        "kernelParams");
        }
        if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0) {
            return fail(CUDA_ERROR_INVALID_VALUE, who() + ": grid and block dimensions must be positive");
        }
        const unsigned long long threads = (unsigned long long) bx * by * bz;
        if (bx > 1024 || by > 1024 || bz > 64 || threads > 1024) {
            return fail(CUDA_ERROR_INVALID_VALUE, who() + ": block (" + std::to_string(bx) + "," + std::to_string(by) +
                                                          "," + std::to_string(bz) + ") has " +
                                                          std::to_string(threads) +
                                                          " threads; a GPU allows at most 1024 (x, y <= 1024, z <= 64)");
        }
        if (threads > (unsigned long long) k.max_threads) {
            return fail(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
                        who() + ": a block of " + std::to_string(threads) + " threads exceeds the kernel's "
                                                                          "__launch_bounds__(" +
                                std::to_string(k.max_threads) + ")");
        }
        if (gy > 65535 || gz > 65535 || gx > 2147483647u) {
            return fail(CUDA_ERROR_INVALID_VALUE, who() + ": grid (" + std::to_string(gx) + "," + std::to_string(gy) +
                                                          "," + std::to_string(gz) +
                                                          ") exceeds the limits (x < 2^31, y and z <= 65535)");
        }
        if (shared_bytes > (unsigned) f->max_dynamic_smem) {
            return fail(CUDA_ERROR_INVALID_VALUE,
                        who() + ": " + std::to_string(shared_bytes) + " bytes of dynamic shared memory exceed the "
                                                                     "function's limit of " +
                                std::to_string(f->max_dynamic_smem) +
                                " (raise it with cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES), "
                                "at most 232448 on sm_90)");
        }
        if (k.num_params > 0 && params == nullptr) {
            return fail(CUDA_ERROR_INVALID_VALUE, who() + ": kernelParams is NULL but the kernel takes " +
                                                          std::to_string(k.num_params) + " parameters");
        }
        Stream* s = stream_of(hstream, &rc, "cuLaunchKernel");
        if (s == nullptr) return rc;
        const LaunchDims d{gx, gy, gz, bx, by, bz, shared_bytes};
        const size_t align = k.args_align > 16 ? k.args_align : 16;
        if (s->capturing) {
            // the parameter values are copied now, as the driver does when it records a kernel node
            std::shared_ptr<unsigned char> block((unsigned char*) ::operator new(k.args_size ? k.args_size : 1,
                                                                                   std::align_val_t(align)),
                                                 [align](unsigned char* p) { ::operator delete(p, std::align_val_t(align)); });
            k.unpack(params, block.get());
            return stream_submit(hstream, "cuLaunchKernel",
                                 [f, d, block] { return run_kernel(f, d, block.get()); });
        }
        if (s == &g_legacy && (rc = legacy_forbids("cuLaunchKernel"))) return rc;
        alignas(16) unsigned char local[2048];
        void* args = local;
        if (k.args_size > sizeof local || k.args_align > 16) {
            args = ::operator new(k.args_size, std::align_val_t(align));
        }
        k.unpack(params, args);
        // RLSR_CUDA_EMULATOR_NULL_LAUNCH=1: every check and the parameter unpacking, but no kernel runs, so a
        // benchmark of the launch path sees the host cost of the caller (the Java bindings) and not the emulation
        static const bool null_launch = getenv("RLSR_CUDA_EMULATOR_NULL_LAUNCH") != nullptr;
        rc = null_launch ? CUDA_SUCCESS : run_kernel(f, d, args);
        if (args != local) ::operator delete(args, std::align_val_t(align));
        return rc;
    });
}

// =====================================================================================================================
// capture and graphs
// =====================================================================================================================
static int begin_capture(void* h, int mode) {
    return api_call("cuStreamBeginCapture_v2", [&]() -> int {
        if (int rc = need_ctx("cuStreamBeginCapture_v2")) return rc;
        int rc = 0;
        Stream* s = stream_of(h, &rc, "cuStreamBeginCapture_v2");
        if (s == nullptr) return rc;
        if (s == &g_legacy) {
            return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamBeginCapture_v2: the legacy stream cannot be "
                                                                   "captured");
        }
        if (mode < CAPTURE_GLOBAL || mode > CAPTURE_RELAXED) return CUDA_ERROR_INVALID_VALUE;
        if (s->capturing) {
            return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture_v2: " + stream_name(s) +
                                                          " is already being captured");
        }
        s->capturing = true;
        s->mode = mode;
        s->thread = pthread_self();
        s->graph = new Graph();
        s->invalidated = false;
        s->invalid_reason.clear();
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuStreamBeginCapture_v2(void* h, int mode) { return begin_capture(h, mode); }
RLSR_API int cuStreamBeginCapture(void* h, int mode) { return begin_capture(h, mode); }

RLSR_API int cuStreamEndCapture(void* h, void** pgraph) {
    return api_call("cuStreamEndCapture", [&]() -> int {
        if (int rc = need_ctx("cuStreamEndCapture")) return rc;
        int rc = 0;
        Stream* s = stream_of(h, &rc, "cuStreamEndCapture");
        if (s == nullptr) return rc;
        if (pgraph == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if (!s->capturing) {
            return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture: " + stream_name(s) + " is not being captured");
        }
        if (s->mode != CAPTURE_RELAXED && !pthread_equal(s->thread, pthread_self())) {
            return fail(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "cuStreamEndCapture: the capture of " + stream_name(s) +
                                                                        " was begun on another thread");
        }
        Graph* g = s->graph;
        s->graph = nullptr;
        s->capturing = false;
        for (Event* e : g_events)
            if (e->captured_in == s) e->captured_in = nullptr;
        if (s->invalidated) {
            delete g;
            *pgraph = nullptr;
            return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "cuStreamEndCapture: the capture was invalidated: " +
                                                                       s->invalid_reason);
        }
        g_graphs.insert(g);
        *pgraph = g;
        return CUDA_SUCCESS;
    });
}

// CUstreamCaptureStatus: 0 none, 1 active, 2 invalidated
RLSR_API int cuStreamIsCapturing(void* h, int* status) {
    return api_call("cuStreamIsCapturing", [&]() -> int {
        if (int rc = need_ctx("cuStreamIsCapturing")) return rc;
        int rc = 0;
        Stream* s = stream_of(h, &rc, "cuStreamIsCapturing");
        if (s == nullptr) return rc;
        if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
        *status = !s->capturing ? 0 : s->invalidated ? 2 : 1;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuGraphInstantiateWithFlags(void** pexec, void* graph, unsigned long long flags) {
    return api_call("cuGraphInstantiateWithFlags", [&]() -> int {
        if (int rc = need_ctx("cuGraphInstantiateWithFlags")) return rc;
        Graph* g = static_cast<Graph*>(graph);
        if (graph == nullptr || g_graphs.count(g) == 0) {
            return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphInstantiateWithFlags: " + hex((uint64_t) graph) +
                                                           " is not a live graph");
        }
        if (pexec == nullptr) return CUDA_ERROR_INVALID_VALUE;
        (void) flags;
        GraphExec* x = new GraphExec();
        x->nodes = g->nodes;  // the executable graph is a snapshot: editing or destroying the graph leaves it alone
        g_execs.insert(x);
        *pexec = x;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuGraphLaunch(void* exec, void* h) {
    return api_call("cuGraphLaunch", [&]() -> int {
        if (int rc = need_ctx("cuGraphLaunch")) return rc;
        GraphExec* x = static_cast<GraphExec*>(exec);
        if (exec == nullptr || g_execs.count(x) == 0) {
            return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphLaunch: " + hex((uint64_t) exec) +
                                                           " is not a live executable graph");
        }
        int rc = 0;
        Stream* s = stream_of(h, &rc, "cuGraphLaunch");
        if (s == nullptr) return rc;
        if (s->capturing) {  // a graph launched into a capture becomes part of it
            for (const Node& n : x->nodes)
                if ((rc = stream_submit(h, n.what.c_str(), n.run))) return rc;
            return CUDA_SUCCESS;
        }
        if (s == &g_legacy && (rc = legacy_forbids("cuGraphLaunch"))) return rc;
        for (const Node& n : x->nodes)
            if ((rc = n.run())) return rc;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuGraphDestroy(void* graph) {
    return api_call("cuGraphDestroy", [&]() -> int {
        Graph* g = static_cast<Graph*>(graph);
        if (graph == nullptr || g_graphs.count(g) == 0) return CUDA_ERROR_INVALID_VALUE;
        g_graphs.erase(g);
        delete g;
        return CUDA_SUCCESS;
    });
}

RLSR_API int cuGraphExecDestroy(void* exec) {
    return api_call("cuGraphExecDestroy", [&]() -> int {
        GraphExec* x = static_cast<GraphExec*>(exec);
        if (exec == nullptr || g_execs.count(x) == 0) return CUDA_ERROR_INVALID_VALUE;
        g_execs.erase(x);
        delete x;
        return CUDA_SUCCESS;
    });
}

// The number of nodes a capture recorded (cuGraphGetNodes with a null array, as in CUDA).
RLSR_API int cuGraphGetNodes(void* graph, void** nodes, size_t* count) {
    return api_call("cuGraphGetNodes", [&]() -> int {
        Graph* g = static_cast<Graph*>(graph);
        if (graph == nullptr || g_graphs.count(g) == 0 || count == nullptr) return CUDA_ERROR_INVALID_VALUE;
        if (nodes != nullptr) {
            for (size_t i = 0; i < *count && i < g->nodes.size(); ++i) nodes[i] = &g->nodes[i];
        }
        *count = g->nodes.size();
        return CUDA_SUCCESS;
    });
}
