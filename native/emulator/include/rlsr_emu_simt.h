// The SIMT runtime's entry points that kernel code reaches through the shim's macros (threads switch only here).
#ifndef RLSR_EMU_SIMT_H
#define RLSR_EMU_SIMT_H

#pragma GCC visibility push(hidden)

namespace rlsr_emu {
enum WarpOp : int {
    OP_SHFL_IDX, OP_SHFL_UP, OP_SHFL_DOWN, OP_SHFL_XOR, OP_BALLOT, OP_ANY, OP_ALL, OP_SYNCWARP,
    OP_REDUCE_ADD, OP_REDUCE_MIN_I, OP_REDUCE_MAX_I, OP_REDUCE_MIN_U, OP_REDUCE_MAX_U, OP_REDUCE_AND, OP_REDUCE_OR,
    OP_REDUCE_XOR, OP_MMA_M16N8K16_BF16, OP_LDMATRIX
};
void syncthreads(const char* file, int line);
int syncthreads_op(const char* file, int line, int op, int predicate);  // op: 0 count, 1 and, 2 or
unsigned long long warp_op(const char* file, int line, int op, unsigned mask, unsigned long long value, int arg,
                           int width);
unsigned active_mask();
[[noreturn]] void device_assert_fail(const char* expr, const char* file, int line);
// Tensor cores, warp-wide (all 32 lanes), with the per-lane fragment layouts of the PTX ISA:
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 and ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16
void mma_m16n8k16_bf16(const char* file, int line, float* d, const unsigned* a, const unsigned* b, const float* c);
void ldmatrix(const char* file, int line, unsigned* r, int count, bool trans, const void* row);
long long clock_ticks();
}  // namespace rlsr_emu

#pragma GCC visibility pop
#endif  // RLSR_EMU_SIMT_H
