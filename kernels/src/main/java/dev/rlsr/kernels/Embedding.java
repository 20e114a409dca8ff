package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Token embedding on the device: forward {@code out[n, :] = table[ids[n], :]} (the gather kernel of
 * {@code copy_rows.cu}) and backward {@code dTable[ids[n], :] += dOut[n, :]} ({@code native/cuda/embedding.cu}).
 *
 * <p>Shapes: ids I32 (N) on the device; table (V, C) and out (N, C) F32 or BF16; dOut (N, C) F32 or BF16; dTable
 * (V, C) F32, accumulated. Ids cannot be checked on the host (device data): in the forward an id outside [0, V)
 * reads nothing and gives a <b>NaN row</b>; in the backward it contributes nothing. (The CPU reference throws for
 * both.)
 *
 * <p>The backward is deterministic, with no float atomics: the (id, n) pairs are sorted on the device (unique keys,
 * so the order is by id, then by n), then every run of equal ids is summed in n order, in fp32, in pieces of at most
 * 32 rows whose partial sums are added in order; a run of at most 32 entries that does not cross a piece boundary
 * adds its rows into dTable one by one, the CPU reference's order. It needs {@link #backwardScratchBytes} of scratch.
 * Launches are asynchronous on {@code stream}. {@link EmbeddingReference} is the CPU twin.
 */
public final class Embedding {
    static final String FILE = "embedding";
    private static final Kernel SORT = Kernel.of(FILE, "embedding_backward_sort_kernel");
    private static final Kernel MERGE = Kernel.of(FILE, "embedding_backward_merge_kernel");
    private static final Kernel RUNS_F32 = Kernel.of(FILE, "embedding_backward_runs_f32_kernel");
    private static final Kernel RUNS_BF16 = Kernel.of(FILE, "embedding_backward_runs_bf16_kernel");
    private static final Kernel FIXUP = Kernel.of(FILE, "embedding_backward_fixup_kernel");
    private static final int TILE = 2048;
    private static final int SORT_THREADS = 1024;
    private static final int MERGE_THREADS = 256;
    private static final int CHUNK = 32;
    private static final int RUN_THREADS = 128;
    private static final int NAN_F32 = 0x7fc00000;
    private static final int NAN_BF16_PAIR = 0x7fc07fc0;

    private Embedding() {
    }

    /**
     * {@code out[i, :] = table[ids[i], :]} for i &lt; n; an id outside [0, v) gives a NaN row.
     *
     * @param ids    I32 token ids (n)
     * @param n      tokens, &gt; 0
     * @param table  embedding table (v, c)
     * @param dtype  F32 or BF16, of table and out
     * @param v      vocabulary rows of the table, &gt; 0
     * @param c      hidden size, &gt; 0
     * @param out    output (n, c), disjoint from table and ids
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void forward(long ids, int n, long table, DType dtype, int v, int c, long out, long stream) {
        String op = "Embedding.forward";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (tokens)", n);
        Checks.positive(op, "v (vocabulary)", v);
        Checks.positive(op, "c (hidden size)", c);
        Checks.pointer(op, "ids", ids, Integer.BYTES);
        Checks.pointer(op, "table", table, dtype.bytes());
        Checks.pointer(op, "out", out, dtype.bytes());
        long rowBytes = (long) c * dtype.bytes();
        Checks.disjoint(op, "out", out, n * rowBytes, "table", table, v * rowBytes);
        Checks.disjoint(op, "out", out, n * rowBytes, "ids", ids, 4L * n);
        CopyRows.gather(op, table, v, ids, n, out, rowBytes, dtype == DType.F32 ? NAN_F32 : NAN_BF16_PAIR, stream);
    }

    /**
     * Scratch bytes of {@link #backward}: two key arrays of n uint64 and two partial rows of c floats per 32 tokens.
     *
     * @param n tokens, &gt; 0
     * @param c hidden size, &gt; 0
     * @return bytes
     */
    public static long backwardScratchBytes(int n, int c) {
        String op = "Embedding.backwardScratchBytes";
        Checks.positive(op, "n (tokens)", n);
        Checks.positive(op, "c (hidden size)", c);
        return 16L * n + partialsBytes(n, c);
    }

    private static long partialsBytes(int n, int c) {
        return 2L * ((n + CHUNK - 1) / CHUNK) * c * Float.BYTES;
    }

    /**
     * {@code dTable[ids[i], :] += dOut[i, :]} for i &lt; n, deterministic; ids outside [0, v) are skipped.
     *
     * @param ids     I32 token ids (n)
     * @param n       tokens, &gt; 0
     * @param dOut    upstream gradient (n, c), F32 or BF16
     * @param dtype   dtype of dOut
     * @param c       hidden size, &gt; 0
     * @param dTable  F32 gradient of the table (v, c), accumulated; disjoint from dOut
     * @param v       vocabulary rows, &gt; 0
     * @param scratch {@link #backwardScratchBytes} bytes of device memory, 16-byte aligned, disjoint from the others
     * @param stream  a {@code CUstream}, 0 for the legacy default stream
     */
    public static void backward(long ids, int n, long dOut, DType dtype, int c, long dTable, int v, long scratch,
            long stream) {
        String op = "Embedding.backward";
        Checks.activation(op, dtype);
        Checks.positive(op, "n (tokens)", n);
        Checks.positive(op, "c (hidden size)", c);
        Checks.positive(op, "v (vocabulary)", v);
        Checks.pointer(op, "ids", ids, Integer.BYTES);
        Checks.pointer(op, "dOut", dOut, dtype.bytes());
        Checks.pointer(op, "dTable", dTable, Float.BYTES);
        Checks.pointer(op, "scratch", scratch, 16);
        long tableBytes = 4L * v * c, outBytes = (long) n * c * dtype.bytes(), scratchBytes = backwardScratchBytes(n, c);
        Checks.disjoint(op, "dTable", dTable, tableBytes, "dOut", dOut, outBytes);
        Checks.disjoint(op, "dTable", dTable, tableBytes, "ids", ids, 4L * n);
        Checks.disjoint(op, "scratch", scratch, scratchBytes, "dTable", dTable, tableBytes);
        Checks.disjoint(op, "scratch", scratch, scratchBytes, "dOut", dOut, outBytes);
        Checks.disjoint(op, "scratch", scratch, scratchBytes, "ids", ids, 4L * n);

        long keysA = scratch, keysB = scratch + 8L * n, partials = scratch + 16L * n;
        SORT.launch((n + TILE - 1) / TILE, SORT_THREADS, stream, KernelArgs.local().ptr(ids).i32(n).i32(v).ptr(keysA));
        long in = keysA, out = keysB;
        for (long width = TILE; width < n; width *= 2) {
            MERGE.launch((n + MERGE_THREADS - 1) / MERGE_THREADS, MERGE_THREADS, stream,
                    KernelArgs.local().ptr(in).ptr(out).i32(n).i32((int) width));
            long t = in;
            in = out;
            out = t;
        }
        int chunks = (n + CHUNK - 1) / CHUNK;
        Kernel runs = dtype == DType.F32 ? RUNS_F32 : RUNS_BF16;
        runs.launch(chunks, RUN_THREADS, stream,
                KernelArgs.local().ptr(in).i32(n).i32(v).ptr(dOut).i32(c).ptr(dTable).ptr(partials));
        FIXUP.launch(chunks, RUN_THREADS, stream,
                KernelArgs.local().ptr(in).i32(n).i32(v).i32(c).ptr(partials).ptr(dTable));
    }
}
