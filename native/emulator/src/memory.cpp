// Device memory is host memory: every cuMemAlloc gets its own mapping with a PROT_NONE guard page on both sides and
// the user block placed so that its end (rounded up to 256 bytes, CUDA's alignment) touches the upper guard page.
// An access past the rounding slack faults; the slack itself (< 256 bytes after the end, 256 bytes before the start)
// is filled with canary bytes that are checked after every kernel, so small overruns are reported too.
//
// Faults are turned into errors by run_guarded: device work (kernels, copies, GEMMs) runs between a sigsetjmp and
// the end of the work; a SIGSEGV/SIGBUS/SIGFPE/SIGILL on that thread meanwhile jumps back, every other signal goes to
// the handler that was installed before (the JVM's), so Java's own use of SIGSEGV keeps working.
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>

#include "emu.h"

namespace rlsr_emu {

namespace {

constexpr unsigned char kCanary[4] = {0xff, 0xa5, 0xc7, 0xff};  // as f32: NaN; as bf16: a NaN every other element
constexpr size_t kFrontCanary = 256;

struct Alloc {
    uint64_t ptr;
    size_t size;
    char* map;        // the whole mapping (guard pages included); null for pinned host memory
    size_t map_size;
    size_t slack;     // canary bytes after the end
    size_t front;     // canary bytes before the start
    bool host;
};

struct Freed {
    uint64_t lo, hi, ptr;
    size_t size;
};

struct Guard {
    uint64_t lo, hi;
    const char* meaning;
};

std::map<uint64_t, Alloc>& allocs() {
    static std::map<uint64_t, Alloc> m;
    return m;
}
std::deque<Freed> g_freed;  // quarantined mappings of freed allocations, oldest first
size_t g_quarantined;
constexpr size_t kQuarantineCount = 1024;
constexpr size_t kQuarantineBytes = (size_t) 64 << 30;  // address space only: the pages themselves are released
std::vector<Guard> g_guards;
size_t g_used;

size_t page() {
    static size_t p = (size_t) sysconf(_SC_PAGESIZE);
    return p;
}

size_t parse_size(const char* s, size_t fallback) {
    if (s == nullptr || *s == 0) return fallback;
    char* end = nullptr;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return fallback;
    switch (*end) {
        case 'k': case 'K': v *= 1024.0; break;
        case 'm': case 'M': v *= 1024.0 * 1024; break;
        case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
        case 't': case 'T': v *= 1024.0 * 1024 * 1024 * 1024; break;
        default: break;
    }
    return (size_t) v;
}

void fill_canary(unsigned char* p, size_t n, uint64_t phase) {
    for (size_t i = 0; i < n; ++i) p[i] = kCanary[(phase + i) & 3];
}

// index of the first byte that is not the canary, or n
size_t first_bad(const unsigned char* p, size_t n, uint64_t phase) {
    for (size_t i = 0; i < n; ++i)
        if (p[i] != kCanary[(phase + i) & 3]) return i;
    return n;
}

const Alloc* containing(uint64_t addr, bool with_guards) {
    auto& m = allocs();
    auto it = m.upper_bound(addr);
    // the allocation starting at or before addr; with guards, also the next one (addr in its front guard)
    if (it != m.begin()) {
        auto prev = std::prev(it);
        const Alloc& a = prev->second;
        if (addr < a.ptr + a.size) return &a;
        if (with_guards && a.map && addr < (uint64_t) a.map + a.map_size) return &a;
    }
    if (with_guards && it != m.end()) {
        const Alloc& a = it->second;
        if (a.map && addr >= (uint64_t) a.map) return &a;
    }
    return nullptr;
}

}  // namespace

std::string hex(uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "0x%llx", (unsigned long long) v);
    return buf;
}

size_t device_memory_total() {
    static size_t total = parse_size(getenv("RLSR_CUDA_EMULATOR_MEMORY"), (size_t) 16 << 30);
    return total;
}

size_t device_memory_used() { return g_used; }

int device_alloc(size_t size, uint64_t* out) {
    if (size == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc_v2: size 0");
    const size_t total = device_memory_total();
    if (size > total || g_used + size > total) {
        return fail(CUDA_ERROR_OUT_OF_MEMORY,
                    "cuMemAlloc_v2 of " + std::to_string(size) + " bytes: the emulated device has " +
                            std::to_string(total) + " bytes (" + std::to_string(g_used) +
                            " in use); set RLSR_CUDA_EMULATOR_MEMORY (e.g. 32G) for more");
    }
    const size_t pg = page();
    const size_t rounded = (size + 255) / 256 * 256;
    const size_t body = (rounded + pg - 1) / pg * pg;
    const size_t map_size = body + 2 * pg;
    void* m = mmap(nullptr, map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc_v2 of " + std::to_string(size) +
                                                      " bytes: mmap failed (" + strerror(errno) + ")");
    }
    char* map = (char*) m;
    if (mprotect(map + pg, body, PROT_READ | PROT_WRITE) != 0) {
        munmap(map, map_size);
        return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc_v2: mprotect failed (" + std::string(strerror(errno)) +
                                                      "; too many mappings? vm.max_map_count)");
    }
    Alloc a;
    a.ptr = (uint64_t) (map + pg + body - rounded);
    a.size = size;
    a.map = map;
    a.map_size = map_size;
    a.slack = rounded - size;
    a.front = std::min(kFrontCanary, (size_t) (a.ptr - (uint64_t) (map + pg)));
    a.host = false;
    // A GPU hands out memory with old contents, never zeros: small and medium allocations start as 0xff bytes (NaN
    // as f32 and bf16, -1 as integers) so that reading an element nobody wrote shows; big ones stay lazily zero.
    if (size <= ((size_t) 64 << 20)) memset((void*) a.ptr, 0xff, size);
    fill_canary((unsigned char*) (a.ptr + size), a.slack, a.ptr + size);
    fill_canary((unsigned char*) (a.ptr - a.front), a.front, a.ptr - a.front);
    allocs()[a.ptr] = a;
    g_used += size;
    *out = a.ptr;
    return CUDA_SUCCESS;
}

int device_free(uint64_t ptr, const char* fn) {
    auto& m = allocs();
    auto it = m.find(ptr);
    if (it == m.end() || it->second.host) {
        std::string why = describe_address(ptr);
        return fail(CUDA_ERROR_INVALID_VALUE, std::string(fn) + "(" + hex(ptr) + "): not the start of a live device "
                                                                               "allocation (" + why + ")");
    }
    const Alloc a = it->second;
    m.erase(it);
    g_used -= a.size;
    // Quarantine: the pages go back to the system but the addresses stay reserved (PROT_NONE) for a while, so a
    // kernel that still uses the pointer faults ("use after free") instead of reading a newer allocation.
    madvise(a.map, a.map_size, MADV_DONTNEED);
    mprotect(a.map, a.map_size, PROT_NONE);
    g_freed.push_back(Freed{(uint64_t) a.map, (uint64_t) a.map + a.map_size, a.ptr, a.size});
    g_quarantined += a.map_size;
    while (g_freed.size() > kQuarantineCount || g_quarantined > kQuarantineBytes) {
        const Freed& f = g_freed.front();
        munmap((void*) f.lo, f.hi - f.lo);
        g_quarantined -= f.hi - f.lo;
        g_freed.pop_front();
    }
    return CUDA_SUCCESS;
}

void device_free_all() {
    auto& m = allocs();
    for (auto it = m.begin(); it != m.end();) {
        if (!it->second.host) {
            const uint64_t p = it->first;
            ++it;
            device_free(p, "cuDevicePrimaryCtxRelease_v2");
        } else {
            ++it;
        }
    }
}

int host_alloc(size_t size, void** out) {
    if (size == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAllocHost_v2: size 0");
    void* p = nullptr;
    if (posix_memalign(&p, 4096, size) != 0 || p == nullptr) {
        return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAllocHost_v2 of " + std::to_string(size) + " bytes failed");
    }
    Alloc a{};
    a.ptr = (uint64_t) p;
    a.size = size;
    a.host = true;
    allocs()[a.ptr] = a;
    *out = p;
    return CUDA_SUCCESS;
}

int host_free(void* p) {
    auto& m = allocs();
    auto it = m.find((uint64_t) p);
    if (it == m.end() || !it->second.host) {
        return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost(" + hex((uint64_t) p) +
                                                      "): not memory from cuMemAllocHost_v2");
    }
    m.erase(it);
    free(p);
    return CUDA_SUCCESS;
}

int check_device_range(const char* fn, const char* what, uint64_t ptr, size_t bytes) {
    if (bytes == 0) return CUDA_SUCCESS;
    const Alloc* a = containing(ptr, false);
    if (a != nullptr && ptr + bytes <= a->ptr + a->size && ptr + bytes >= ptr) return CUDA_SUCCESS;
    std::string where = a != nullptr
            ? "it starts at offset " + std::to_string(ptr - a->ptr) + " of the " + std::to_string(a->size) +
                      "-byte allocation at " + hex(a->ptr) + " and ends " +
                      std::to_string(ptr + bytes - (a->ptr + a->size)) + " bytes past its end"
            : describe_address(ptr);
    return fail(CUDA_ERROR_INVALID_VALUE, std::string(fn) + ": " + what + " [" + hex(ptr) + ", +" +
                                                  std::to_string(bytes) + " bytes) is not inside one allocation: " +
                                                  where);
}

void note_guard_region(uint64_t lo, uint64_t hi, const char* meaning) { g_guards.push_back(Guard{lo, hi, meaning}); }

std::string describe_address(uint64_t addr) {
    if (const Alloc* a = containing(addr, true)) {
        const std::string alloc = "the " + std::to_string(a->size) + "-byte " +
                                  (a->host ? "pinned host" : "device") + " allocation at " + hex(a->ptr);
        if (addr < a->ptr) return std::to_string(a->ptr - addr) + " bytes before the start of " + alloc;
        if (addr >= a->ptr + a->size) return std::to_string(addr - (a->ptr + a->size)) + " bytes past the end of " + alloc;
        return "offset " + std::to_string(addr - a->ptr) + " inside " + alloc;
    }
    for (const Guard& g : g_guards)
        if (addr >= g.lo && addr < g.hi) return g.meaning;
    for (auto it = g_freed.rbegin(); it != g_freed.rend(); ++it) {
        if (addr >= it->lo && addr < it->hi) {
            return "memory of the " + std::to_string(it->size) + "-byte allocation at " + hex(it->ptr) +
                   ", which was freed (cuMemFree_v2): a use after free";
        }
    }
    if (addr < 65536) return "a null pointer (address " + hex(addr) + ")";
    return "not in any device allocation";
}

std::string check_canaries() {
    std::string first;
    int bad = 0;
    for (auto& [p, a] : allocs()) {
        if (a.host) continue;
        unsigned char* end = (unsigned char*) (a.ptr + a.size);
        size_t i = first_bad(end, a.slack, a.ptr + a.size);
        if (i < a.slack) {
            size_t last = a.slack;
            while (last > i && end[last - 1] == kCanary[(a.ptr + a.size + last - 1) & 3]) --last;
            if (bad++ == 0) {
                first = "wrote past the end of the " + std::to_string(a.size) + "-byte allocation at " + hex(a.ptr) +
                        " (bytes " + std::to_string(i) + ".." + std::to_string(last - 1) + " after its end)";
            }
            fill_canary(end, a.slack, a.ptr + a.size);
        }
        unsigned char* front = (unsigned char*) (a.ptr - a.front);
        i = first_bad(front, a.front, a.ptr - a.front);
        if (i < a.front) {
            if (bad++ == 0) {
                first = "wrote before the start of the " + std::to_string(a.size) + "-byte allocation at " +
                        hex(a.ptr) + " (" + std::to_string(a.front - i) + " bytes before it)";
            }
            fill_canary(front, a.front, a.ptr - a.front);
        }
    }
    if (bad > 1) first += " and " + std::to_string(bad - 1) + " more overrun(s)";
    return first;
}

// ---- guarded execution ----------------------------------------------------------------------------------------------
namespace {

sigjmp_buf g_jmp;
volatile sig_atomic_t g_guard_active;
pthread_t g_guard_thread;
FaultInfo g_fault;
struct sigaction g_old[65];
alignas(16) char g_altstack[256 * 1024];
constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

void on_fault(int sig, siginfo_t* info, void* uc) {
    if (g_guard_active && pthread_equal(pthread_self(), g_guard_thread)) {
        g_guard_active = 0;
        g_fault.sig = sig;
        g_fault.code = info ? info->si_code : 0;
        g_fault.addr = info ? (uint64_t) info->si_addr : 0;
        siglongjmp(g_jmp, 1);
    }
    // not ours: the previous handler (the JVM's), as libjsig would chain it
    const struct sigaction& o = g_old[sig];
    if (o.sa_flags & SA_SIGINFO) {
        if ((void*) o.sa_sigaction != (void*) SIG_DFL && (void*) o.sa_sigaction != (void*) SIG_IGN) {
            o.sa_sigaction(sig, info, uc);
            return;
        }
    } else if (o.sa_handler == SIG_IGN) {
        return;
    } else if (o.sa_handler != SIG_DFL) {
        o.sa_handler(sig);
        return;
    }
    // default action: reinstall it and return, so the faulting instruction runs again and ends the process
    signal(sig, SIG_DFL);
}

void install_handlers() {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int s : kSignals) sigaction(s, &sa, &g_old[s]);
}

int g_guard_depth;

}  // namespace

bool run_guarded(void (*fn)(void*), void* ctx, FaultInfo* fault) {
    static const bool installed = (install_handlers(), true);
    (void) installed;
    if (g_guard_depth > 0 || getenv("RLSR_CUDA_EMULATOR_NO_SIGNALS") != nullptr) {  // nested, or debugging in gdb
        fn(ctx);
        return true;
    }
    stack_t ss, old;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = g_altstack;
    ss.ss_size = sizeof g_altstack;
    const bool alt = sigaltstack(&ss, &old) == 0;
    g_guard_thread = pthread_self();
    g_guard_depth = 1;
    if (sigsetjmp(g_jmp, 1) == 0) {
        g_guard_active = 1;
        fn(ctx);
        g_guard_active = 0;
        g_guard_depth = 0;
        if (alt) sigaltstack(&old, nullptr);
        return true;
    }
    g_guard_active = 0;
    g_guard_depth = 0;
    if (alt) sigaltstack(&old, nullptr);
    *fault = g_fault;
    return false;
}

std::string describe_fault(const FaultInfo& f) {
    switch (f.sig) {
        case SIGSEGV:
        case SIGBUS:
            if (f.code == 0x80 /* SI_KERNEL */ && f.addr == 0) {
                return "illegal memory access (a general-protection fault: on x86-64 typically a misaligned 16-byte "
                       "vector access, e.g. a uint4/float4 load from an address that is not 16-byte aligned)";
            }
            return "illegal memory access at " + hex(f.addr) + ": " + describe_address(f.addr);
        case SIGFPE:
            return std::string("arithmetic exception (") +
                   (f.code == FPE_INTDIV ? "integer division by zero" : "integer overflow in a division") +
                   "; a GPU returns an undefined value here instead of trapping)";
        case SIGILL:
            return "illegal instruction (a trap, or an instruction this CPU lacks)";
        default:
            return "signal " + std::to_string(f.sig);
    }
}

int fault_code(const FaultInfo& f) {
    switch (f.sig) {
        case SIGSEGV:
        case SIGBUS: return CUDA_ERROR_ILLEGAL_ADDRESS;
        case SIGILL: return CUDA_ERROR_ILLEGAL_INSTRUCTION;
        default: return CUDA_ERROR_LAUNCH_FAILED;
    }
}

}  // namespace rlsr_emu
