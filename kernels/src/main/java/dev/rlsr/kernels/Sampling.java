package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Token sampling on the device ({@code native/cuda/sampling.cu}): logits (B, V) F32 or BF16 in, the next token of
 * every row (I32 (B)) and its log-probability (F32 (B)) out, with per-row temperature, top-k and top-p, a
 * counter-based generator (Philox4x32-10 of (seed, row, step)), stop ids and finished rows, all on the device, so a
 * decode loop reads nothing back but, when it wants, the 4-byte count of unfinished rows.
 * {@link SamplingReference} states the contract (the distribution, the tie rules, the generator, the log-probability)
 * and is the CPU implementation: the kernel draws the <b>same token</b> as the reference for the same inputs.
 *
 * <h2>Device state of one batch (persists across the steps; {@link #reset} starts a new batch)</h2>
 * <ul>
 *   <li>{@code counters}: I32 ({@link #COUNTERS}) = seed low word, seed high word, unfinished rows, non-finite rows
 *       (indices {@link #SEED_LO}, {@link #SEED_HI}, {@link #UNFINISHED}, {@link #NON_FINITE}). The host may read
 *       {@code UNFINISHED} (and {@code NON_FINITE}, adjacent) after a step to stop early.</li>
 *   <li>{@code finished}: I32 (B) flags; a row finishes when it samples a stop id or has non-finite logits.</li>
 *   <li>{@code steps}: I32 (B), the decode step of each row; {@link #sample} uses {@code steps[b]} as the
 *       generator's counter and increments it, so the same launch (a CUDA graph) can be replayed every step.</li>
 * </ul>
 * Per-row parameters (device, written once per batch): temperature F32 (B), top-k I32 (B), top-p F32 (B); stop ids
 * I32 (n). Nothing that changes between steps is a kernel argument.
 *
 * <p>One 1024-thread block per row, no sort of the vocabulary: two passes over the row without filters (maximum; the
 * weights and their tile sums), plus one to three radix-select passes per active filter and a search of the row in
 * index order for the draw. Launches are asynchronous on {@code stream} and allocate nothing.
 */
public final class Sampling {
    static final String FILE = "sampling";
    private static final Kernel F32 = Kernel.of(FILE, "sampling_f32_kernel");
    private static final Kernel BF16_ = Kernel.of(FILE, "sampling_bf16_kernel");
    private static final Kernel RESET = Kernel.of(FILE, "sampling_reset_kernel");
    private static final int THREADS = 1024;
    private static final int RESET_THREADS = 256;

    /** I32 words of the {@code counters} block. */
    public static final int COUNTERS = 4;
    /** Index in {@code counters} of the seed's low 32 bits. */
    public static final int SEED_LO = 0;
    /** Index in {@code counters} of the seed's high 32 bits. */
    public static final int SEED_HI = 1;
    /** Index in {@code counters} of the number of rows not finished yet. */
    public static final int UNFINISHED = 2;
    /** Index in {@code counters} of the number of rows finished for non-finite logits (an error for the caller). */
    public static final int NON_FINITE = 3;
    /** Largest vocabulary (the kernel keeps one mass per 1024 vectors of a row in shared memory). */
    public static final int MAX_VOCAB = 1 << 22;

    private Sampling() {
    }

    /**
     * Starts a batch: writes the seed and {@code UNFINISHED = rows}, {@code NON_FINITE = 0} into {@code counters},
     * clears {@code finished} and {@code steps}. One launch.
     *
     * @param counters I32 ({@link #COUNTERS})
     * @param finished I32 (rows)
     * @param steps    I32 (rows)
     * @param rows     B, &gt; 0
     * @param seed     the generator's seed
     * @param stream   a {@code CUstream}, 0 for the legacy default stream
     */
    public static void reset(long counters, long finished, long steps, int rows, long seed, long stream) {
        String op = "Sampling.reset";
        Checks.positive(op, "rows", rows);
        Checks.pointer(op, "counters", counters, Integer.BYTES);
        Checks.pointer(op, "finished", finished, Integer.BYTES);
        Checks.pointer(op, "steps", steps, Integer.BYTES);
        RESET.launch(Checks.grid(op, rows, RESET_THREADS), RESET_THREADS, stream, KernelArgs.local().ptr(counters)
                .ptr(finished).ptr(steps).i32(rows).i32((int) seed).i32((int) (seed >>> 32)));
    }

    /**
     * One sampling step of B rows (see {@link SamplingReference} for the exact distribution). Row b reads logits row
     * {@code b / group}; a finished row writes {@code padId} and log-prob 0 and draws nothing; a row with a NaN, a
     * +inf maximum or only -inf writes {@code padId} and NaN, finishes, and counts in {@code NON_FINITE}. A row that
     * samples one of the stop ids finishes after writing it. Every row's {@code steps} entry is incremented.
     *
     * @param logits         (B / group, V) F32 or BF16
     * @param dtype          F32 or BF16
     * @param rows           B, &gt; 0, a multiple of group
     * @param vocab          V, in [1, {@link #MAX_VOCAB}]
     * @param group          logits rows shared by {@code group} consecutive rows (G samples of a prompt after its
     *                       prefill), else 1
     * @param temperature    F32 (B): T; not &gt; 0 is greedy
     * @param topK           I32 (B): k; &le; 0 is off, 1 is greedy
     * @param topP           F32 (B): p; &ge; 1 is off
     * @param stopIds        I32 (stopCount), or 0 when stopCount is 0
     * @param stopCount      number of stop ids, &gt;= 0
     * @param padId          the token written for finished rows, in [0, V)
     * @param counters       I32 ({@link #COUNTERS}) batch counters (from {@link #reset})
     * @param finished       I32 (B) flags, updated
     * @param steps          I32 (B) step counters, incremented
     * @param tokens         I32 (B) out: the sampled tokens (the next decode step's input ids)
     * @param logprobs       F32 (B) out: {@code log_softmax(logits / T)[token]} before top-k/top-p (T = 1 for greedy
     *                       rows)
     * @param tokenHistory   I32 (B, historyLen) out at column {@code steps[b]} while it is &lt; historyLen, or 0
     * @param logprobHistory F32 (B, historyLen) likewise, or 0
     * @param historyLen     columns of the histories (0 when both are absent)
     * @param stream         a {@code CUstream}, 0 for the legacy default stream
     */
    public static void sample(long logits, DType dtype, int rows, int vocab, int group, long temperature, long topK,
            long topP, long stopIds, int stopCount, int padId, long counters, long finished, long steps, long tokens,
            long logprobs, long tokenHistory, long logprobHistory, int historyLen, long stream) {
        String op = "Sampling.sample";
        Checks.activation(op, dtype);
        Checks.positive(op, "rows", rows);
        Checks.positive(op, "group", group);
        if (rows % group != 0) {
            throw new IllegalArgumentException(op + ": rows (" + rows + ") must be a multiple of group (" + group
                    + ")");
        }
        if (vocab < 1 || vocab > MAX_VOCAB) {
            throw new IllegalArgumentException(op + ": vocab must be in [1, " + MAX_VOCAB + "], got " + vocab);
        }
        if (padId < 0 || padId >= vocab) {
            throw new IllegalArgumentException(op + ": padId " + padId + " is outside the vocabulary [0, " + vocab
                    + ")");
        }
        Checks.nonNegative(op, "stopCount", stopCount);
        Checks.nonNegative(op, "historyLen", historyLen);
        if ((tokenHistory != 0 || logprobHistory != 0) && historyLen == 0) {
            throw new IllegalArgumentException(op + ": a history buffer needs historyLen > 0");
        }
        Checks.pointer(op, "logits", logits, dtype.bytes());
        Checks.pointer(op, "temperature", temperature, Float.BYTES);
        Checks.pointer(op, "topK", topK, Integer.BYTES);
        Checks.pointer(op, "topP", topP, Float.BYTES);
        if (stopCount > 0) {
            Checks.pointer(op, "stopIds", stopIds, Integer.BYTES);
        }
        Checks.pointer(op, "counters", counters, Integer.BYTES);
        Checks.pointer(op, "finished", finished, Integer.BYTES);
        Checks.pointer(op, "steps", steps, Integer.BYTES);
        Checks.pointer(op, "tokens", tokens, Integer.BYTES);
        Checks.pointer(op, "logprobs", logprobs, Float.BYTES);
        Checks.optionalPointer(op, "tokenHistory", tokenHistory, Integer.BYTES);
        Checks.optionalPointer(op, "logprobHistory", logprobHistory, Float.BYTES);
        long logitBytes = (long) (rows / group) * vocab * dtype.bytes();
        long rowBytes = 4L * rows;
        Checks.disjoint(op, "tokens", tokens, rowBytes, "logits", logits, logitBytes);
        Checks.disjoint(op, "logprobs", logprobs, rowBytes, "logits", logits, logitBytes);
        Checks.disjoint(op, "tokens", tokens, rowBytes, "logprobs", logprobs, rowBytes);
        Checks.disjoint(op, "tokens", tokens, rowBytes, "steps", steps, rowBytes);
        Checks.disjoint(op, "tokens", tokens, rowBytes, "finished", finished, rowBytes);
        Checks.disjoint(op, "steps", steps, rowBytes, "finished", finished, rowBytes);
        Kernel kernel = dtype == DType.F32 ? F32 : BF16_;
        kernel.launch(rows, THREADS, stream, KernelArgs.local().ptr(logits).i32(rows).i32(vocab).i32(group)
                .ptr(temperature).ptr(topK).ptr(topP).ptr(stopIds).i32(stopCount).i32(padId).ptr(counters)
                .ptr(finished).ptr(steps).ptr(tokens).ptr(logprobs).ptr(tokenHistory).ptr(logprobHistory)
                .i32(historyLen));
    }
}
