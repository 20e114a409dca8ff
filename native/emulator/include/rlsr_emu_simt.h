// The SIMT runtime's entry points that kernel code reaches through the shim's macros (threads switch only here).
#ifndef RLSR_EMU_SIMT_H
#define RLSR_EMU_SIMT_H

#pragma GCC visibility push(hidden)

namespace rlsr_emu {
enum WarpOp : int {
    OP_SHFL_IDX, OP_SHFL_UP, OP_SHFL_DOWN, OP_SHFL_XOR, OP_BALLOT, OP_ANY, OP_ALL, OP_SYNCWARP,
    OP_REDUCE_ADD, OP_REDUCE_MIN_I, OP_REDUCE_MAX_I, OP_REDUCE_MIN_U, OP_REDUCE_MAX_U, OP_REDUCE_AND, OP_REDUCE_OR,
    OP_REDUCE_XOR
};
void syncthreads(const char* file, int line);
int syncthreads_op(const char* file, int line, int op, int predicate);  // op: 0 count, 1 and, 2 or
unsigned long long warp_op(const char* file, int line, int op, unsigned mask, unsigned long long value, int arg,
                           int width);
unsigned active_mask();
[[noreturn]] void device_assert_fail(const char* expr, const char* file, int line);
long long clock_ticks();
}  // namespace rlsr_emu

#pragma GCC visibility pop
#endif  // RLSR_EMU_SIMT_H
