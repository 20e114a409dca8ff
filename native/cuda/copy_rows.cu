// Row copies, dtype-agnostic (rows are byte ranges; elements of 2 or 4 bytes).
//
//   copy rows:   for b < batch, r < rows: dst[b, dst_row0 + r, :] = src[b, src_row0 + r, :], where src holds
//                src_stride rows per batch and dst dst_stride (Backend.copyRows: the KV-cache append).
//   gather rows: dst[i, :] = src[idx[i], :] for i < n, src (R, W); an index outside [0, R) reads nothing and writes
//                the row as the repeated 32-bit `fill` word (the launcher passes NaN: fp32 0x7fc00000, bf16 pairs
//                0x7fc07fc0), so a bad index cannot go unseen and cannot read out of bounds. Also embedding forward.
//   append row:  dst[b, *row, :] = src[b, :] for b < batch, src (batch, W), dst (batch, dst_stride, W), *row an I32
//                in device memory (the KV-cache append of a graph-replayed decode step, whose row changes every step
//                while the launch does not). A row outside [0, dst_stride) writes nothing: it cannot write out of
//                bounds, and the rows that exist keep their contents.
//
// One warp per (row, 2 KiB segment of the row): long rows (gathered logits, 600 KB) spread over many warps, short
// rows (one KV head row, 256 B) take one warp. A segment moves as 16-byte vectors when both its ends and its length
// are 16-byte aligned, else as 4-byte words, else as 2-byte halves: all coalesced. Segments start at multiples of
// 2 KiB from the row start, so a segment is aligned exactly when its row is.
#include "rlsr_common.cuh"

#define CR_THREADS 256
#define CR_WARPS (CR_THREADS / 32)
#define CR_SEG 2048  // bytes per warp work item

__device__ __forceinline__ void cr_copy(const unsigned char* __restrict__ s, unsigned char* __restrict__ d, int bytes,
                                        int lane) {
    const unsigned long long a = (unsigned long long) s | (unsigned long long) d | (unsigned long long) bytes;
    if ((a & 15ull) == 0) {
        const uint4* vs = reinterpret_cast<const uint4*>(s);
        uint4* vd = reinterpret_cast<uint4*>(d);
        for (int k = lane; k < bytes / 16; k += 32) vd[k] = __ldg(vs + k);
    } else if ((a & 3ull) == 0) {
        const unsigned int* ws = reinterpret_cast<const unsigned int*>(s);
        unsigned int* wd = reinterpret_cast<unsigned int*>(d);
        for (int k = lane; k < bytes / 4; k += 32) wd[k] = __ldg(ws + k);
    } else {
        const unsigned short* hs = reinterpret_cast<const unsigned short*>(s);
        unsigned short* hd = reinterpret_cast<unsigned short*>(d);
        for (int k = lane; k < bytes / 2; k += 32) hd[k] = __ldg(hs + k);
    }
}

// `fill` repeated over the segment; `off` is the segment's byte offset from its row start, which fixes which half
// of the 32-bit word a 2-byte element gets (the word starts at the row start).
__device__ __forceinline__ void cr_fill(unsigned char* d, int bytes, int off, unsigned int fill, int lane) {
    const unsigned long long a = (unsigned long long) d | (unsigned long long) bytes;
    if ((a & 15ull) == 0) {
        uint4* vd = reinterpret_cast<uint4*>(d);
        const uint4 w = make_uint4(fill, fill, fill, fill);
        for (int k = lane; k < bytes / 16; k += 32) vd[k] = w;
    } else if ((a & 3ull) == 0) {
        unsigned int* wd = reinterpret_cast<unsigned int*>(d);
        for (int k = lane; k < bytes / 4; k += 32) wd[k] = fill;
    } else {
        unsigned short* hd = reinterpret_cast<unsigned short*>(d);
        for (int k = lane; k < bytes / 2; k += 32) {
            const int half = ((off >> 1) + k) & 1;  // 2-byte element index within the row, modulo 2
            hd[k] = (unsigned short) (half ? fill >> 16 : fill & 0xffffu);
        }
    }
}

// launch: ceil(batch*rows*segs / 8) blocks of 256
extern "C" __global__ void __launch_bounds__(CR_THREADS)
copy_rows_kernel(const unsigned char* __restrict__ src, unsigned char* __restrict__ dst, int batch, int rows,
                 int src_stride, int src_row0, int dst_stride, int dst_row0, long long row_bytes, int segs) {
    const long long item = (long long) blockIdx.x * CR_WARPS + (threadIdx.x >> 5);
    if (item >= (long long) batch * rows * segs) return;  // per warp: no barrier below
    const long long i = item / segs;
    const int seg = (int) (item - i * segs);
    const long long b = i / rows, r = i - b * rows;
    const long long off = (long long) seg * CR_SEG;
    const long long left = row_bytes - off;
    const int bytes = (int) (left < CR_SEG ? left : CR_SEG);
    const unsigned char* s = src + (b * src_stride + src_row0 + r) * row_bytes + off;
    unsigned char* d = dst + (b * dst_stride + dst_row0 + r) * row_bytes + off;
    cr_copy(s, d, bytes, threadIdx.x & 31);
}

// launch: ceil(n*segs / 8) blocks of 256
extern "C" __global__ void __launch_bounds__(CR_THREADS)
gather_rows_kernel(const unsigned char* __restrict__ src, int src_rows, const int* __restrict__ idx, int n,
                   unsigned char* __restrict__ dst, long long row_bytes, int segs, unsigned int fill) {
    const long long item = (long long) blockIdx.x * CR_WARPS + (threadIdx.x >> 5);
    if (item >= (long long) n * segs) return;
    const long long i = item / segs;
    const int seg = (int) (item - i * segs);
    const long long off = (long long) seg * CR_SEG;
    const long long left = row_bytes - off;
    const int bytes = (int) (left < CR_SEG ? left : CR_SEG);
    const int r = __ldg(idx + i);
    unsigned char* d = dst + i * row_bytes + off;
    if (r < 0 || r >= src_rows) {
        cr_fill(d, bytes, (int) off, fill, threadIdx.x & 31);
    } else {
        cr_copy(src + (long long) r * row_bytes + off, d, bytes, threadIdx.x & 31);
    }
}

// launch: ceil(batch*segs / 8) blocks of 256 (independent of *row, so one captured launch serves every step)
extern "C" __global__ void __launch_bounds__(CR_THREADS)
append_row_kernel(const unsigned char* __restrict__ src, unsigned char* __restrict__ dst, const int* __restrict__ row,
                  int batch, int dst_stride, long long row_bytes, int segs) {
    const long long item = (long long) blockIdx.x * CR_WARPS + (threadIdx.x >> 5);
    if (item >= (long long) batch * segs) return;
    const int r = __ldg(row);
    if (r < 0 || r >= dst_stride) return;
    const long long b = item / segs;
    const int seg = (int) (item - b * segs);
    const long long off = (long long) seg * CR_SEG;
    const long long left = row_bytes - off;
    const int bytes = (int) (left < CR_SEG ? left : CR_SEG);
    cr_copy(src + b * row_bytes + off, dst + (b * dst_stride + r) * row_bytes + off, bytes, threadIdx.x & 31);
}
