// The SIMT scheduler: one fiber per CUDA thread, the blocks of a grid one after another on the calling thread.
//
// A "runner" fiber takes the next thread of the block that has not started and runs it; when that thread returns
// without ever waiting, the same runner (same stack, no context switch) goes on with the next one, so a kernel without
// barriers or shuffles runs every thread of a block on one fiber at plain C++ speed. When a thread reaches a sync
// point (__syncthreads, __syncwarp, a shuffle, vote or warp reduction) it records what it waits for and switches back
// to the scheduler, which starts a new runner for the next thread. Once every thread of the block has either exited or
// is waiting, the scheduler releases what can proceed (a warp whose named lanes all reached the same warp operation; the
// block barrier when every thread that has not exited reached the same __syncthreads) and resumes those threads in
// thread order. When nothing can proceed the block is deadlocked: that, and every other misuse a GPU would only
// sometimes show (lanes that disagree on the warp operation, a shuffle reading a lane that exited or was not named,
// __syncthreads at different lines), fails the launch with a message naming the kernel, the block and the threads.
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <string.h>

#include "emu.h"

#if !defined(RLSR_EMU_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define RLSR_EMU_UCONTEXT 1
#endif
#ifdef RLSR_EMU_UCONTEXT
#include <ucontext.h>
#endif

namespace rlsr_emu {

// ---- the built-in variables the shim's threadIdx/blockIdx/blockDim/gridDim read (layout of uint3 / dim3) -----------
struct U3 {
    unsigned x, y, z;
};
U3 g_thread_idx;
U3 g_block_idx;
U3 g_block_dim;
U3 g_grid_dim;
unsigned char* g_dynamic_smem;

long long clock_ticks() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
}

// ---- context switch ---------------------------------------------------------------------------------------------
#ifndef RLSR_EMU_UCONTEXT
struct Ctx {
    void* sp;
};
extern "C" void rlsr_emu_switch(void** save_sp, void* load_sp);
extern "C" void rlsr_emu_fiber_start();

#if defined(__APPLE__)
#define RLSR_SYM(n) "_" #n
#define RLSR_FUNC_BEGIN(n) ".private_extern " RLSR_SYM(n) "\n.globl " RLSR_SYM(n) "\n.p2align 4\n" RLSR_SYM(n) ":\n"
#define RLSR_FUNC_END(n) "\n"
#else
#define RLSR_SYM(n) #n
#define RLSR_FUNC_BEGIN(n) ".globl " #n "\n.hidden " #n "\n.type " #n ", @function\n.p2align 4\n" #n ":\n"
#define RLSR_FUNC_END(n) ".size " #n ", .-" #n "\n"
#endif

#if defined(__x86_64__)
// Callee-saved registers (rbp rbx r12-r15) go on the old stack, the stack pointer into *save_sp; then the other way
// round from load_sp. The floating-point control words are not switched: every fiber runs with the caller's.
asm(".text\n" RLSR_FUNC_BEGIN(rlsr_emu_switch)
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n" RLSR_FUNC_END(rlsr_emu_switch)
    RLSR_FUNC_BEGIN(rlsr_emu_fiber_start)
    "    .cfi_startproc\n"
    "    .cfi_undefined rip\n"
    "    movq %r12, %rdi\n"
    "    callq *%r13\n"
    "    ud2\n"
    "    .cfi_endproc\n" RLSR_FUNC_END(rlsr_emu_fiber_start));

static void ctx_make(Ctx* c, char* stack_lo, size_t size, void (*entry)(void*), void* arg) {
    uintptr_t top = ((uintptr_t) stack_lo + size - 16) & ~(uintptr_t) 15;  // rsp at the trampoline: 16-aligned
    void** sp = (void**) top;
    *--sp = (void*) &rlsr_emu_fiber_start;  // ret target
    *--sp = nullptr;                        // rbp
    *--sp = nullptr;                        // rbx
    *--sp = arg;                            // r12
    *--sp = (void*) entry;                  // r13
    *--sp = nullptr;                        // r14
    *--sp = nullptr;                        // r15
    c->sp = sp;
}
#elif defined(__aarch64__)
// x19-x30 and d8-d15 (the AAPCS64 callee-saved set) in a 160-byte frame.
asm(".text\n" RLSR_FUNC_BEGIN(rlsr_emu_switch)
    "    sub sp, sp, #160\n"
    "    stp x19, x20, [sp, #0]\n"
    "    stp x21, x22, [sp, #16]\n"
    "    stp x23, x24, [sp, #32]\n"
    "    stp x25, x26, [sp, #48]\n"
    "    stp x27, x28, [sp, #64]\n"
    "    stp x29, x30, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    mov x9, sp\n"
    "    str x9, [x0]\n"
    "    mov sp, x1\n"
    "    ldp x19, x20, [sp, #0]\n"
    "    ldp x21, x22, [sp, #16]\n"
    "    ldp x23, x24, [sp, #32]\n"
    "    ldp x25, x26, [sp, #48]\n"
    "    ldp x27, x28, [sp, #64]\n"
    "    ldp x29, x30, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    add sp, sp, #160\n"
    "    ret\n" RLSR_FUNC_END(rlsr_emu_switch)
    RLSR_FUNC_BEGIN(rlsr_emu_fiber_start)
    "    mov x0, x19\n"
    "    blr x20\n"
    "    brk #0\n" RLSR_FUNC_END(rlsr_emu_fiber_start));

static void ctx_make(Ctx* c, char* stack_lo, size_t size, void (*entry)(void*), void* arg) {
    uintptr_t top = ((uintptr_t) stack_lo + size - 16) & ~(uintptr_t) 15;
    void** frame = (void**) (top - 160);
    memset(frame, 0, 160);
    frame[0] = arg;                             // x19
    frame[1] = (void*) entry;                   // x20
    frame[11] = (void*) &rlsr_emu_fiber_start;  // x30
    c->sp = frame;
}
#endif

static inline void ctx_switch(Ctx* save, Ctx* load) { rlsr_emu_switch(&save->sp, load->sp); }

#else  // ucontext fallback: portable, slower (swapcontext also saves the signal mask with a system call)
struct Ctx {
    ucontext_t uc;
};
static void ucontext_trampoline(unsigned lo_entry, unsigned hi_entry, unsigned lo_arg, unsigned hi_arg) {
    auto entry = (void (*)(void*)) (((uintptr_t) hi_entry << 32) | lo_entry);
    void* arg = (void*) (((uintptr_t) hi_arg << 32) | lo_arg);
    entry(arg);
    abort();
}
static void ctx_make(Ctx* c, char* stack_lo, size_t size, void (*entry)(void*), void* arg) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack_lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    uintptr_t e = (uintptr_t) entry, a = (uintptr_t) arg;
    makecontext(&c->uc, (void (*)()) ucontext_trampoline, 4, (unsigned) e, (unsigned) (e >> 32), (unsigned) a,
                (unsigned) (a >> 32));
}
static inline void ctx_switch(Ctx* save, Ctx* load) { swapcontext(&save->uc, &load->uc); }
#endif

// ---- fibers: stacks from a pool, a guard page below each ----------------------------------------------------------
struct Fiber {
    Ctx ctx;
    char* map;        // mmap base: guard page, then the stack
    size_t map_size;
    Fiber* next_free;
    bool finished;
};

static Fiber* g_free_fibers;

static size_t page_size() {
    static size_t p = (size_t) sysconf(_SC_PAGESIZE);
    return p;
}

static size_t stack_bytes() {
    static size_t s = [] {
        size_t kb = 256;
        if (const char* e = getenv("RLSR_CUDA_EMULATOR_STACK_KB")) {
            long v = atol(e);
            if (v >= 16) kb = (size_t) v;
        }
        return kb * 1024;
    }();
    return s;
}

static Fiber* fiber_get() {
    if (Fiber* f = g_free_fibers) {
        g_free_fibers = f->next_free;
        return f;
    }
    const size_t page = page_size();
    const size_t size = stack_bytes() + page;
    void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    mprotect(m, page, PROT_NONE);
    note_guard_region((uint64_t) m, (uint64_t) m + page,
                      "the guard page below a CUDA thread's stack: stack overflow (deep recursion or a large local "
                      "array; RLSR_CUDA_EMULATOR_STACK_KB sets the stack size)");
    Fiber* f = new Fiber();
    f->map = (char*) m;
    f->map_size = size;
    return f;
}

static void fiber_put(Fiber* f) {
    f->next_free = g_free_fibers;
    g_free_fibers = f;
}

// ---- one block in flight --------------------------------------------------------------------------------------------
enum : uint8_t { T_UNSTARTED, T_RUNNING, T_READY, T_BAR, T_WARP, T_EXITED };
constexpr int OP_BARRIER = 100;  // plain __syncthreads; OP_BARRIER + 1 + k for __syncthreads_count/and/or

struct Thread {
    Fiber* fiber;
    uint8_t state;
    int epoch;  // the scheduler round in which the thread last started or resumed, or exited
    int op;
    int line;
    const char* file;
    unsigned mask;
    int arg;
    int width;
    unsigned long long value;
    unsigned long long result;
};

struct Run {
    const KernelDesc* kernel;
    const void* args;
    int n;  // threads per block
    int next_unstarted;
    int live;
    int cur;
    int round;  // scheduler rounds of this block: releases happen between rounds
    Ctx sched;
    bool failed;
    int fail_code;
    std::string error;
    Thread th[1024];
    U3 coord[1024];
};
static Run R;

static const char* op_name(int op) {
    switch (op) {
        case OP_SHFL_IDX: return "__shfl_sync";
        case OP_SHFL_UP: return "__shfl_up_sync";
        case OP_SHFL_DOWN: return "__shfl_down_sync";
        case OP_SHFL_XOR: return "__shfl_xor_sync";
        case OP_BALLOT: return "__ballot_sync";
        case OP_ANY: return "__any_sync";
        case OP_ALL: return "__all_sync";
        case OP_SYNCWARP: return "__syncwarp";
        case OP_REDUCE_ADD: return "__reduce_add_sync";
        case OP_REDUCE_MIN_I:
        case OP_REDUCE_MIN_U: return "__reduce_min_sync";
        case OP_REDUCE_MAX_I:
        case OP_REDUCE_MAX_U: return "__reduce_max_sync";
        case OP_REDUCE_AND: return "__reduce_and_sync";
        case OP_REDUCE_OR: return "__reduce_or_sync";
        case OP_REDUCE_XOR: return "__reduce_xor_sync";
        case OP_BARRIER: return "__syncthreads";
        case OP_BARRIER + 1: return "__syncthreads_count";
        case OP_BARRIER + 2: return "__syncthreads_and";
        case OP_BARRIER + 3: return "__syncthreads_or";
        default: return "?";
    }
}

static std::string site(const Thread& t) {
    return std::string(op_name(t.op)) + " at " + (t.file ? t.file : "?") + ":" + std::to_string(t.line);
}

static std::string coord_str(const U3& c) {
    return "(" + std::to_string(c.x) + "," + std::to_string(c.y) + "," + std::to_string(c.z) + ")";
}

static std::string where_prefix() {
    return "kernel '" + std::string(R.kernel->name) + "' block " + coord_str(g_block_idx);
}

// "threads 0-15, 32 (x,y,z = ...)" for a sorted list of linear thread ids
static std::string thread_list(const std::vector<int>& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size();) {
        size_t j = i;
        while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
        if (!s.empty()) s += ", ";
        s += std::to_string(ids[i]);
        if (j > i) s += "-" + std::to_string(ids[j]);
        i = j + 1;
    }
    const bool multi = g_block_dim.y > 1 || g_block_dim.z > 1;
    return (ids.size() == 1 ? "thread " : "threads ") + s + (multi ? " (linear ids, x fastest)" : "");
}

[[noreturn]] static void thread_fail(int code, const std::string& msg) {
    R.failed = true;
    R.fail_code = code;
    R.error = where_prefix() + " thread " + coord_str(R.coord[R.cur]) + ": " + msg;
    Thread& t = R.th[R.cur];
    ctx_switch(&t.fiber->ctx, &R.sched);  // never resumed: the scheduler abandons the block
    __builtin_unreachable();
}

static void block_fail(int code, const std::string& msg) {
    R.failed = true;
    R.fail_code = code;
    R.error = where_prefix() + ": " + msg;
}

static void runner_main(void* p) {
    Fiber* self = static_cast<Fiber*>(p);
    for (;;) {
        const int t = R.next_unstarted;
        if (t >= R.n) break;
        R.next_unstarted = t + 1;
        Thread& th = R.th[t];
        th.state = T_RUNNING;
        th.fiber = self;
        th.epoch = R.round;
        R.cur = t;
        g_thread_idx = R.coord[t];
        R.kernel->thread_main(R.args);
        th.state = T_EXITED;
        th.epoch = R.round;
        th.fiber = nullptr;
        R.live--;
    }
    self->finished = true;
    ctx_switch(&self->ctx, &R.sched);
    __builtin_unreachable();
}

static bool start_runner() {
    Fiber* f = fiber_get();
    if (f == nullptr) {
        block_fail(CUDA_ERROR_OUT_OF_MEMORY, "no memory for another CUDA thread stack (mmap failed: " +
                                                     std::string(strerror(errno)) + ")");
        return false;
    }
    f->finished = false;
    ctx_make(&f->ctx, f->map + page_size(), f->map_size - page_size(), runner_main, f);
    ctx_switch(&R.sched, &f->ctx);
    if (f->finished) fiber_put(f);
    return !R.failed;
}

static bool resume(int t) {
    Thread& th = R.th[t];
    Fiber* f = th.fiber;
    th.state = T_RUNNING;
    th.epoch = R.round;
    R.cur = t;
    g_thread_idx = R.coord[t];
    ctx_switch(&R.sched, &f->ctx);
    if (f->finished) fiber_put(f);
    return !R.failed;
}

// ---- sync points, called on a thread's fiber -------------------------------------------------------------------------
static inline unsigned long long wait_at(int op, const char* file, int line, unsigned mask, unsigned long long value,
                                         int arg, int width, uint8_t state) {
    Thread& t = R.th[R.cur];
    t.state = state;
    t.op = op;
    t.file = file;
    t.line = line;
    t.mask = mask;
    t.value = value;
    t.arg = arg;
    t.width = width;
    ctx_switch(&t.fiber->ctx, &R.sched);
    return R.th[R.cur].result;
}

void syncthreads(const char* file, int line) { wait_at(OP_BARRIER, file, line, 0, 0, 0, 0, T_BAR); }

int syncthreads_op(const char* file, int line, int op, int predicate) {
    return (int) wait_at(OP_BARRIER + 1 + op, file, line, 0, predicate ? 1 : 0, 0, 0, T_BAR);
}

unsigned long long warp_op(const char* file, int line, int op, unsigned mask, unsigned long long value, int arg,
                           int width) {
    const int lane = R.cur & 31;
    if (!(mask & (1u << lane))) {
        char buf[64];
        snprintf(buf, sizeof buf, "0x%08x", mask);
        thread_fail(CUDA_ERROR_LAUNCH_FAILED, std::string(op_name(op)) + " at " + file + ":" + std::to_string(line) +
                                                      " with mask " + buf + ", which does not include the calling lane " +
                                                      std::to_string(lane) + " (undefined on a GPU)");
    }
    if (op <= OP_SHFL_XOR && (width < 1 || width > 32 || (width & (width - 1)) != 0)) {
        thread_fail(CUDA_ERROR_LAUNCH_FAILED, std::string(op_name(op)) + " at " + file + ":" + std::to_string(line) +
                                                      " with width " + std::to_string(width) +
                                                      ": the width must be a power of 2 from 1 to 32");
    }
    return wait_at(op, file, line, mask, value, arg, width, T_WARP);
}

// The lanes that had not exited when the calling thread's warp last converged: threads run one after another, so a
// lane that exited in this same round (after the release the caller came from) still counts, as on a GPU where the
// warp would have executed the call together.
unsigned active_mask() {
    const int base = R.cur & ~31;
    const int since = R.th[R.cur].epoch;
    unsigned m = 0;
    for (int l = 0; l < 32 && base + l < R.n; ++l) {
        const Thread& t = R.th[base + l];
        if (t.state != T_EXITED || t.epoch >= since) m |= 1u << l;
    }
    return m;
}

void device_assert_fail(const char* expr, const char* file, int line) {
    thread_fail(CUDA_ERROR_ASSERT, std::string("device-side assert `") + expr + "` failed at " + file + ":" +
                                           std::to_string(line));
}

// ---- releasing waiters ---------------------------------------------------------------------------------------------
static bool same_site(const Thread& a, const Thread& b) {
    return a.op == b.op && a.line == b.line && (a.file == b.file || (a.file && b.file && !strcmp(a.file, b.file)));
}

// All live threads are at a barrier: they must be the same one.
static int release_barrier() {
    const Thread* first = nullptr;
    int count = 0;
    for (int t = 0; t < R.n; ++t) {
        const Thread& th = R.th[t];
        if (th.state != T_BAR) continue;
        if (first == nullptr) {
            first = &th;
        } else if (!same_site(*first, th)) {
            std::vector<int> a, b;
            for (int u = 0; u < R.n; ++u) {
                if (R.th[u].state != T_BAR) continue;
                (same_site(*first, R.th[u]) ? a : b).push_back(u);
            }
            block_fail(CUDA_ERROR_LAUNCH_FAILED,
                       "divergent __syncthreads: " + thread_list(a) + " wait at " + site(*first) + " but " +
                               thread_list(b) + " at " + site(th) +
                               " (a barrier must be reached by every thread of the block at the same place)");
            return -1;
        }
        count += th.value ? 1 : 0;
    }
    const int op = first->op - OP_BARRIER - 1;
    int released = 0;
    for (int t = 0; t < R.n; ++t) {
        Thread& th = R.th[t];
        if (th.state != T_BAR) continue;
        th.result = op == 0 ? (unsigned long long) count : op == 1 ? (count == R.live) : (count > 0);
        th.state = T_READY;
        ++released;
    }
    return released;
}

// Resolves the warp operation of the lanes `need` of warp `w` (all waiting at the same one). false after an error.
static bool complete_warp_op(int w, unsigned need, unsigned exited, unsigned exist) {
    const int base = w * 32;
    const Thread& a = R.th[base + __builtin_ctz(need)];
    const int op = a.op;
    if (op <= OP_SHFL_XOR) {
        for (unsigned m = need; m; m &= m - 1) {
            const int l = __builtin_ctz(m);
            Thread& t = R.th[base + l];
            const int width = t.width, seg = l & ~(width - 1), last = seg + width - 1;
            int j = l;
            switch (op) {
                // PTX shfl.sync: the lane operand is taken modulo 32; a source outside the lane's segment of
                // `width` lanes (up: below it, down/bfly: above it) means "keep your own value"
                case OP_SHFL_IDX: j = seg + (t.arg & (width - 1)); break;
                case OP_SHFL_UP: j = l - (t.arg & 31); if (j < seg) j = l; break;
                case OP_SHFL_DOWN: j = l + (t.arg & 31); if (j > last) j = l; break;
                case OP_SHFL_XOR: j = l ^ (t.arg & 31); if (j > last) j = l; break;
            }
            if (!(need & (1u << j))) {
                const char* why = !(exist & (1u << j)) ? "does not exist (the block ends inside this warp)"
                                  : (exited & (1u << j)) ? "has exited"
                                                         : "is not named in the mask";
                char buf[16];
                snprintf(buf, sizeof buf, "0x%08x", t.mask);
                block_fail(CUDA_ERROR_LAUNCH_FAILED,
                           "warp " + std::to_string(w) + ": " + site(t) + " (mask " + buf + "): lane " +
                                   std::to_string(l) + " reads lane " + std::to_string(j) + ", which " + why +
                                   " (its value is undefined on a GPU); a shuffle by part of a warp");
                return false;
            }
            t.result = R.th[base + j].value;
        }
    } else {
        unsigned long long acc = 0;
        unsigned ballot = 0;
        bool first = true;
        for (unsigned m = need; m; m &= m - 1) {
            const int l = __builtin_ctz(m);
            const unsigned long long v = R.th[base + l].value;
            const unsigned u = (unsigned) v;
            if (v) ballot |= 1u << l;
            switch (op) {
                case OP_REDUCE_ADD: acc = (unsigned) (acc + u); break;
                case OP_REDUCE_MIN_I: acc = first || (int) u < (int) acc ? u : acc; break;
                case OP_REDUCE_MAX_I: acc = first || (int) u > (int) acc ? u : acc; break;
                case OP_REDUCE_MIN_U: acc = first || u < (unsigned) acc ? u : acc; break;
                case OP_REDUCE_MAX_U: acc = first || u > (unsigned) acc ? u : acc; break;
                case OP_REDUCE_AND: acc = first ? u : (acc & u); break;
                case OP_REDUCE_OR: acc |= u; break;
                case OP_REDUCE_XOR: acc ^= u; break;
                default: break;
            }
            first = false;
        }
        unsigned long long r = 0;
        switch (op) {
            case OP_BALLOT: r = ballot; break;
            case OP_ANY: r = ballot != 0; break;
            case OP_ALL: r = ballot == need; break;
            case OP_SYNCWARP: r = 0; break;
            default: r = acc; break;
        }
        for (unsigned m = need; m; m &= m - 1) R.th[base + __builtin_ctz(m)].result = r;
    }
    for (unsigned m = need; m; m &= m - 1) R.th[base + __builtin_ctz(m)].state = T_READY;
    return true;
}

static int release_warps() {
    int released = 0;
    for (int w = 0; w * 32 < R.n; ++w) {
        const int base = w * 32, cnt = R.n - base < 32 ? R.n - base : 32;
        const unsigned exist = cnt == 32 ? ~0u : ((1u << cnt) - 1);
        unsigned waiting = 0, exited = 0;
        for (int l = 0; l < cnt; ++l) {
            const uint8_t s = R.th[base + l].state;
            if (s == T_WARP) waiting |= 1u << l;
            else if (s == T_EXITED) exited |= 1u << l;
        }
        const unsigned gone = exited | ~exist;
        unsigned todo = waiting;
        while (todo) {
            const int l0 = __builtin_ctz(todo);
            const Thread& a = R.th[base + l0];
            const unsigned need = a.mask & ~gone;
            if (need & ~waiting) {  // a lane named in the mask is elsewhere: maybe it arrives later
                todo &= ~(1u << l0);
                continue;
            }
            for (unsigned m = need; m; m &= m - 1) {
                const Thread& b = R.th[base + __builtin_ctz(m)];
                if (!same_site(a, b) || b.mask != a.mask || (a.op <= OP_SHFL_XOR && b.width != a.width)) {
                    char ma[16], mb[16];
                    snprintf(ma, sizeof ma, "0x%08x", a.mask);
                    snprintf(mb, sizeof mb, "0x%08x", b.mask);
                    block_fail(CUDA_ERROR_LAUNCH_FAILED,
                               "warp " + std::to_string(w) + ": lane " + std::to_string(l0) + " waits at " + site(a) +
                                       " (mask " + ma + ") but lane " + std::to_string(__builtin_ctz(m)) + " at " +
                                       site(b) + " (mask " + mb +
                                       "): the lanes named in a warp operation's mask must all reach the same one");
                    return -1;
                }
            }
            if (!complete_warp_op(w, need, exited, exist)) return -1;
            released += __builtin_popcount(need);
            todo &= ~need;
            waiting &= ~need;
        }
    }
    return released;
}

// Nothing can proceed: describe who waits where.
static void describe_deadlock() {
    std::string groups;
    bool any_bar = false, any_warp = false;
    for (int t = 0; t < R.n;) {
        const Thread& a = R.th[t];
        if (a.state == T_EXITED) {
            ++t;
            continue;
        }
        std::vector<int> ids;
        int u = t;
        while (u < R.n && R.th[u].state == a.state && same_site(R.th[u], a)) ids.push_back(u++);
        any_bar |= a.state == T_BAR;
        any_warp |= a.state == T_WARP;
        if (!groups.empty()) groups += "; ";
        groups += thread_list(ids) + " wait at " + site(a);
        t = u;
    }
    std::string what;
    if (any_bar && any_warp)
        what = "deadlock: a __syncthreads reached by part of the block while the other threads wait at a warp "
               "operation";
    else if (any_warp)
        what = "deadlock: a warp operation whose mask names lanes that never reach it (a shuffle by part of a warp)";
    else
        what = "deadlock";
    std::vector<int> exited;
    for (int t = 0; t < R.n; ++t)
        if (R.th[t].state == T_EXITED) exited.push_back(t);
    block_fail(CUDA_ERROR_LAUNCH_FAILED,
               what + ": " + groups + (exited.empty() ? "" : "; " + thread_list(exited) + " have exited"));
}

static bool run_block() {
    R.next_unstarted = 0;
    R.live = R.n;
    R.round = 0;
    for (int t = 0; t < R.n; ++t) {
        R.th[t].state = T_UNSTARTED;
        R.th[t].fiber = nullptr;
    }
    for (;;) {
        for (int t = 0; t < R.n; ++t)
            if (R.th[t].state == T_READY && !resume(t)) return false;
        while (R.next_unstarted < R.n)
            if (!start_runner()) return false;
        if (R.live == 0) return true;
        int released = 0;
        int at_barrier = 0;
        for (int t = 0; t < R.n; ++t) at_barrier += R.th[t].state == T_BAR;
        if (at_barrier == R.live) {
            released = release_barrier();
        } else {
            released = release_warps();
        }
        if (released < 0) return false;
        if (released == 0) {
            describe_deadlock();
            return false;
        }
        ++R.round;
    }
}

// ---- dynamic shared memory: one buffer whose end touches a guard page ----------------------------------------------
static unsigned char* g_smem_map;
static size_t g_smem_map_size;
static size_t g_smem_bytes;  // this launch's size, for fault messages

static bool prepare_smem(size_t bytes) {
    const size_t page = page_size();
    const size_t need = (bytes + 15) / 16 * 16;
    const size_t usable = (need + page - 1) / page * page;
    if (g_smem_map == nullptr || g_smem_map_size - page < usable) {
        if (g_smem_map) munmap(g_smem_map, g_smem_map_size);
        const size_t size = (usable > 256 * 1024 ? usable : 256 * 1024) + page;
        void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            g_smem_map = nullptr;
            return false;
        }
        g_smem_map = (unsigned char*) m;
        g_smem_map_size = size;
        mprotect(g_smem_map + size - page, page, PROT_NONE);
        note_guard_region((uint64_t) (g_smem_map + size - page), (uint64_t) (g_smem_map + size),
                          "past the end of the launch's dynamic shared memory");
    }
    g_dynamic_smem = g_smem_map + g_smem_map_size - page - need;
    g_smem_bytes = bytes;
    return true;
}

static U3 g_grid;

static void grid_main(void*) {
    for (unsigned z = 0; z < g_grid.z; ++z)
        for (unsigned y = 0; y < g_grid.y; ++y)
            for (unsigned x = 0; x < g_grid.x; ++x) {
                g_block_idx = U3{x, y, z};
                // shared memory holds garbage on a GPU: NaN-ish bytes here, so a read before the write shows
                if (g_smem_bytes) memset(g_dynamic_smem, 0xff, g_smem_bytes);
                if (!run_block()) return;
            }
}

static void release_fibers() {
    for (int t = 0; t < R.n; ++t) {
        if (R.th[t].fiber) {
            Fiber* f = R.th[t].fiber;
            for (int u = t; u < R.n; ++u)
                if (R.th[u].fiber == f) R.th[u].fiber = nullptr;
            fiber_put(f);
        }
    }
}

int simt_launch(const KernelDesc& k, const LaunchDims& d, const void* args, std::string& error) {
    R.kernel = &k;
    R.args = args;
    R.n = (int) (d.bx * d.by * d.bz);
    R.failed = false;
    R.error.clear();
    for (int t = 0; t < R.n; ++t)
        R.coord[t] = U3{(unsigned) t % d.bx, ((unsigned) t / d.bx) % d.by, (unsigned) t / (d.bx * d.by)};
    g_block_dim = U3{d.bx, d.by, d.bz};
    g_grid_dim = U3{d.gx, d.gy, d.gz};
    g_grid = g_grid_dim;
    if (!prepare_smem(d.shared_bytes)) {
        error = "kernel '" + std::string(k.name) + "': no host memory for " + std::to_string(d.shared_bytes) +
                " bytes of dynamic shared memory";
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    FaultInfo fault;
    const bool ok = run_guarded(&grid_main, nullptr, &fault);
    if (!ok) {
        std::string where = "kernel '" + std::string(k.name) + "' block " + coord_str(g_block_idx) + " thread " +
                            coord_str(R.coord[R.cur < R.n ? R.cur : 0]);
        std::string what = describe_fault(fault);
        if (fault.addr >= (uint64_t) g_dynamic_smem && fault.addr < (uint64_t) (g_smem_map + g_smem_map_size)) {
            what += " (the launch has " + std::to_string(d.shared_bytes) + " bytes of dynamic shared memory)";
        }
        error = where + ": " + what;
        release_fibers();
        return fault_code(fault);
    }
    if (R.failed) {
        error = R.error;
        release_fibers();
        return R.fail_code;
    }
    return CUDA_SUCCESS;
}

}  // namespace rlsr_emu
