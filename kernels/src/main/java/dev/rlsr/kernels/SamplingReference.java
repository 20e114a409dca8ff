package dev.rlsr.kernels;

import java.util.Arrays;

/**
 * CPU reference and CPU implementation of {@link Sampling}: the contract of token sampling, stated here once and
 * followed bit for bit by {@code native/cuda/sampling.cu}, so that the device and the CPU draw the <em>same token</em>
 * for the same logits, parameters, seed, row and step.
 *
 * <h2>The distribution of one row</h2>
 * Logits x (V), F32 or BF16 widened exactly. With {@code xmax} the largest logit and {@code s = (float) log2(e) / T}
 * (one fp32 division), token i has the integer weight
 * {@code w_i = floor(2^40 * 2^((x_i - xmax) * s))}, computed by {@link #weight} in fp32 with explicit fused
 * multiply-adds (0.67 ulp; the same operations on the device), so {@code w = 2^40} for the maximum and {@code w = 0}
 * below 2^-40 of it (such tokens are never drawn: together they hold less than V * 2^-40 of the mass). Masses are
 * exact 64-bit sums of weights.
 * <ol>
 *   <li><b>Rank.</b> Tokens are ordered by logit descending, then index ascending ({@code -0} equals {@code +0}).</li>
 *   <li><b>Top-k</b> (k &gt; 0): keeps the first k tokens of that order. {@code M_k} = their mass (all tokens when
 *       k &le; 0, or when k is at least the number of tokens with w &gt; 0).</li>
 *   <li><b>Top-p</b> (p &lt; 1): of those, keeps the j-th token (0-based, in rank order) when j = 0 or when the mass
 *       ranked before it is below {@code limit = floor((double) M_k * (double) p)} (0 when p &le; 0): the smallest
 *       prefix whose mass reaches p, as HF's {@code TopPLogitsWarper} (which drops tokens whose ascending cumulative
 *       probability is &le; 1 - p). Ties at a boundary stay in index order, so a boundary can cut between equal
 *       logits.</li>
 *   <li><b>Draw.</b> {@code u = floor(r * M_kept / 2^64)} for the 64-bit random number r of (seed, row, step); the
 *       token is the first index i (index order) where the running mass of the kept tokens exceeds u. So token i is
 *       drawn with probability {@code w_i / M_kept}.</li>
 *   <li><b>Greedy</b> when T is not &gt; 0 (0, negative, NaN) or k = 1: the argmax, first index on ties; nothing
 *       random is used.</li>
 *   <li><b>Log-probability</b> of the chosen token: {@code log_softmax(x / T)[token]} over all V tokens, before top-k
 *       and top-p (the "old policy" log-prob of GRPO as TRL computes it from the sampling logits divided by T), with
 *       T = 1 for greedy rows; computed as {@code (x_token - xmax) / T - ln(M_all * 2^-40)}.</li>
 *   <li><b>Non-finite rows</b> (a NaN anywhere, a +inf maximum, or every logit -inf) have no distribution: the
 *       row samples nothing ({@link #NON_FINITE}).</li>
 * </ol>
 * T = +inf gives equal weights to every finite logit. A tiny T (s = +inf) keeps only the maximal logits.
 *
 * <h2>The generator</h2>
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; the constants of Random123),
 * key = (low, high) 32-bit words of the seed, counter = (row, step, 0, 0); r = {@code x0 | x1 << 32} of its output
 * ({@link #random64}). Rows and steps index the stream directly, so a row draws the same numbers whatever the others do.
 *
 * <h2>Why the device matches exactly</h2>
 * Every decision is made on integers (ranks, counts, masses, u) or on fp32 values produced by the same IEEE operations
 * in the same order on both sides (subtraction, one multiplication, fused multiply-adds, exact power-of-two scaling);
 * nothing depends on a summation order. The kernel finds the boundaries with radix histograms instead of a sort, and
 * the draw with block scans instead of a loop, and gets the same integers. Only the log-probability is a rounded
 * result: the device computes it in fp32 (division, {@code logf}), this class in double.
 */
public final class SamplingReference {
    /** What {@link Workspace#sample} returns for a row that has no distribution (NaN, +inf maximum, all -inf). */
    public static final int NON_FINITE = -1;
    /** The weight of the maximal logit, 2^40. */
    static final long ONE = 1L << 40;
    /** log2(e) rounded to fp32. */
    static final float LOG2E = Float.intBitsToFloat(0x3fb8aa3b);
    // Cephes exp2f: 2^f = 1 + f * P(f) on [-0.5, 0.5]
    private static final float C0 = Float.intBitsToFloat(0x3f317218);
    private static final float C1 = Float.intBitsToFloat(0x3e75fdee);
    private static final float C2 = Float.intBitsToFloat(0x3d635774);
    private static final float C3 = Float.intBitsToFloat(0x3c1d96a6);
    private static final float C4 = Float.intBitsToFloat(0x3aaf9f29);
    private static final float C5 = Float.intBitsToFloat(0x3920fdde);

    private SamplingReference() {
    }

    /**
     * The integer weight {@code floor(2^40 * 2^((x - xmax) * s))} of a logit, as the kernel computes it.
     *
     * @param x    the logit
     * @param xmax the row's largest logit
     * @param s    log2(e) / T in fp32
     * @return the weight, in [0, 2^40]
     */
    static long weight(float x, float xmax, float s) {
        float d = x - xmax;
        if (d == 0f) {
            return ONE;
        }
        float y = d * s;
        if (!(y >= -40f)) {
            return 0;
        }
        // explicit fused multiply-adds, as the kernel (where the compiler would otherwise choose)
        float t = Math.fma(d, s, 0.5f);
        int n = (int) t;
        if ((float) n > t) {
            n--;
        }
        float f = Math.fma(d, s, -(float) n);
        float p = Math.fma(C5, f, C4);
        p = Math.fma(p, f, C3);
        p = Math.fma(p, f, C2);
        p = Math.fma(p, f, C1);
        p = Math.fma(p, f, C0);
        p = Math.fma(p, f, 1f);
        return (long) (p * Float.intBitsToFloat((n + 40 + 127) << 23));
    }

    /** Unsigned order of values (larger value, larger key), -0 as +0; NaN never reaches it. */
    static int key(float x) {
        int b = x == 0f ? 0 : Float.floatToRawIntBits(x);
        return b < 0 ? ~b : b | 0x80000000;
    }

    /**
     * Philox4x32-10 of one counter under one key (Random123's {@code philox4x32_R(10, ctr, key)}).
     *
     * @param ctr the four counter words
     * @param key the two key words
     * @return the four output words
     */
    static int[] philox4x32(int[] ctr, int[] key) {
        int c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                k0 += 0x9E3779B9;
                k1 += 0xBB67AE85;
            }
            long p0 = 0xD2511F53L * Integer.toUnsignedLong(c0);
            long p1 = 0xCD9E8D57L * Integer.toUnsignedLong(c2);
            int n0 = (int) (p1 >>> 32) ^ c1 ^ k0;
            int n2 = (int) (p0 >>> 32) ^ c3 ^ k1;
            c1 = (int) p1;
            c3 = (int) p0;
            c0 = n0;
            c2 = n2;
        }
        return new int[] {c0, c1, c2, c3};
    }

    /**
     * The 64-bit random number of a row at a step: Philox4x32-10 with key (seed low, seed high) and counter (row,
     * step, 0, 0), output words 0 and 1 as the low and high halves.
     *
     * @param seed the seed
     * @param row  the row (its index in the batch)
     * @param step the step (the row's decode step, from 0)
     * @return the random bits
     */
    public static long random64(long seed, int row, int step) {
        int[] x = philox4x32(new int[] {row, step, 0, 0}, new int[] {(int) seed, (int) (seed >>> 32)});
        return Integer.toUnsignedLong(x[0]) | ((long) x[1] << 32);
    }

    /**
     * Scratch for sampling rows of one vocabulary size: holds V-sized buffers so that a sample allocates nothing.
     * One per thread.
     */
    public static final class Workspace {
        private final int vocab;
        private final long[] weights;
        private final boolean[] kept;
        private long[] order;
        private float logprob = Float.NaN;

        /**
         * Scratch for rows of {@code vocab} logits.
         *
         * @param vocab V, in [1, {@link Sampling#MAX_VOCAB}]
         */
        public Workspace(int vocab) {
            if (vocab < 1 || vocab > Sampling.MAX_VOCAB) {
                throw new IllegalArgumentException("vocabulary size must be in [1, " + Sampling.MAX_VOCAB + "], got "
                        + vocab);
            }
            this.vocab = vocab;
            this.weights = new long[vocab];
            this.kept = new boolean[vocab];
        }

        /** {@return V} */
        public int vocab() {
            return vocab;
        }

        /**
         * {@return the log-probability of the last sampled token} (see the class comment; NaN after a non-finite
         * row)
         */
        public float logprob() {
            return logprob;
        }

        /**
         * Samples one token of {@code x[off, off + V)}.
         *
         * @param x           logits (F32, or BF16 widened)
         * @param off         the row's first element
         * @param temperature T; not &gt; 0 is greedy
         * @param topK        k; &le; 0 is off, 1 is greedy
         * @param topP        p; &ge; 1 (or NaN) is off
         * @param seed        the generator's seed
         * @param row         the row, the generator's first counter word
         * @param step        the step, the generator's second counter word
         * @return the token id, or {@link #NON_FINITE}
         */
        public int sample(float[] x, int off, float temperature, int topK, float topP, long seed, int row, int step) {
            Views.check("logits", x.length, off, vocab);
            int argmax = -1;
            float xmax = 0;
            for (int i = 0; i < vocab; i++) {
                float v = x[off + i];
                if (Float.isNaN(v)) {
                    logprob = Float.NaN;
                    return NON_FINITE;
                }
                if (argmax < 0 || v > xmax) {
                    xmax = v;
                    argmax = i;
                }
            }
            if (Float.isInfinite(xmax)) {
                logprob = Float.NaN;
                return NON_FINITE;
            }
            boolean greedy = !(temperature > 0f);
            float tt = greedy ? 1f : temperature;
            float s = LOG2E / tt;
            long mAll = 0;
            int live = 0;
            for (int i = 0; i < vocab; i++) {
                long w = weight(x[off + i], xmax, s);
                weights[i] = w;
                mAll += w;
                if (w != 0) {
                    live++;
                }
            }
            int token = greedy || topK == 1 ? argmax : draw(x, off, topK, topP, seed, row, step, live, mAll);
            logprob = (float) (((double) x[off + token] - xmax) / tt - Math.log(mAll * 0x1p-40));
            return token;
        }

        private int draw(float[] x, int off, int topK, float topP, long seed, int row, int step, int live,
                long mAll) {
            boolean kOn = topK > 0 && topK < live;
            boolean pOn = topP < 1f;
            long mKept = mAll;
            boolean all = !kOn && !pOn;
            if (!all) {
                // rank order of the live tokens (w > 0; the others follow them and are never drawn): logit
                // descending, index ascending, as one unsigned 64-bit key (~key(x), index)
                if (order == null) {
                    order = new long[vocab];
                }
                int n = 0;
                for (int i = 0; i < vocab; i++) {
                    if (weights[i] != 0) {
                        long k = Integer.toUnsignedLong(~key(x[off + i]));
                        order[n++] = ((k << 32) | i) ^ Long.MIN_VALUE;
                    }
                }
                Arrays.sort(order, 0, n);
                int nk = kOn ? topK : n;
                long mk = 0;
                for (int j = 0; j < nk; j++) {
                    mk += weights[index(order[j])];
                }
                int nKept = nk;
                mKept = mk;
                if (pOn) {
                    double lim = (double) mk * (double) topP;
                    long limit = lim > 0 ? (long) lim : 0;
                    long before = 0;
                    int j = 0;
                    while (j < nk && (j == 0 || before < limit)) {
                        before += weights[index(order[j])];
                        j++;
                    }
                    nKept = j;
                    mKept = before;
                }
                Arrays.fill(kept, false);
                for (int j = 0; j < nKept; j++) {
                    kept[index(order[j])] = true;
                }
            }
            long u = Math.unsignedMultiplyHigh(random64(seed, row, step), mKept);
            long c = 0;
            for (int i = 0; i < vocab; i++) {
                if (all || kept[i]) {
                    c += weights[i];
                    if (c > u) {
                        return i;
                    }
                }
            }
            throw new IllegalStateException("the draw ran past the kept mass " + mKept + " (u = " + u + ")");
        }

        private static int index(long sortKey) {
            return (int) (sortKey & 0xffffffffL);
        }
    }

    /**
     * {@link Sampling#reset} on host arrays: the seed into {@code counters}, every row unfinished at step 0.
     *
     * @param counters (4) I32: seed low, seed high, unfinished rows, non-finite rows
     * @param finished (B) I32 flags
     * @param steps    (B) I32 per-row step counters
     * @param rows     B
     * @param seed     the generator's seed
     */
    public static void reset(int[] counters, int[] finished, int[] steps, int rows, long seed) {
        Rows.checkPositive("rows", rows);
        Views.check("counters", counters.length, 0, Sampling.COUNTERS);
        Views.check("finished", finished.length, 0, rows);
        Views.check("steps", steps.length, 0, rows);
        Arrays.fill(finished, 0, rows, 0);
        Arrays.fill(steps, 0, rows, 0);
        counters[Sampling.SEED_LO] = (int) seed;
        counters[Sampling.SEED_HI] = (int) (seed >>> 32);
        counters[Sampling.UNFINISHED] = rows;
        counters[Sampling.NON_FINITE] = 0;
    }

    /**
     * {@link Sampling#sample} on host arrays: one step of B rows, with the same state updates. Row b reads logits
     * row {@code b / group}, samples with its own T, k, p at step {@code steps[b]} (then increments it), writes its
     * token and log-prob (pad and 0 for a row already finished; pad and NaN for a non-finite row, which is then
     * finished and counted), marks the row finished when the token is a stop id, and decrements
     * {@code counters[UNFINISHED]} for every row that finishes.
     *
     * @param logits         (B / group, V) F32 logits (BF16 widened)
     * @param logitsOff      its offset
     * @param rows           B, a multiple of group
     * @param vocab          V
     * @param group          rows per logits row (G samples of one prompt share its logits at the first step)
     * @param temperature    (B) per-row T
     * @param topK           (B) per-row k
     * @param topP           (B) per-row p
     * @param stopIds        ids that finish a row (any length)
     * @param padId          the token of finished rows
     * @param counters       (4) seed low, seed high, unfinished rows, non-finite rows
     * @param finished       (B) flags, updated
     * @param steps          (B) step counters, incremented
     * @param tokens         (B) out
     * @param logprobs       (B) out
     * @param tokenHistory   (B, historyLen) out at column {@code step} when {@code step < historyLen}, or null
     * @param logprobHistory (B, historyLen) likewise, or null
     * @param historyLen     columns of the histories
     */
    public static void sample(float[] logits, int logitsOff, int rows, int vocab, int group, float[] temperature,
            int[] topK, float[] topP, int[] stopIds, int padId, int[] counters, int[] finished, int[] steps,
            int[] tokens, float[] logprobs, int[] tokenHistory, float[] logprobHistory, int historyLen) {
        Rows.checkPositive("rows", rows);
        Rows.checkPositive("group", group);
        if (rows % group != 0) {
            throw new IllegalArgumentException("rows " + rows + " must be a multiple of group " + group);
        }
        Views.check("logits", logits.length, logitsOff, (long) (rows / group) * vocab);
        Views.check("temperature", temperature.length, 0, rows);
        Views.check("topK", topK.length, 0, rows);
        Views.check("topP", topP.length, 0, rows);
        Views.check("counters", counters.length, 0, Sampling.COUNTERS);
        Views.check("finished", finished.length, 0, rows);
        Views.check("steps", steps.length, 0, rows);
        Views.check("tokens", tokens.length, 0, rows);
        Views.check("logprobs", logprobs.length, 0, rows);
        if (tokenHistory != null) {
            Views.check("tokenHistory", tokenHistory.length, 0, (long) rows * historyLen);
        }
        if (logprobHistory != null) {
            Views.check("logprobHistory", logprobHistory.length, 0, (long) rows * historyLen);
        }
        long seed = Integer.toUnsignedLong(counters[Sampling.SEED_LO])
                | ((long) counters[Sampling.SEED_HI] << 32);
        Workspace ws = new Workspace(vocab);
        for (int b = 0; b < rows; b++) {
            int step = steps[b];
            steps[b] = step + 1;
            int token = padId;
            float logp = 0f;
            if (finished[b] == 0) {
                int id = ws.sample(logits, logitsOff + (b / group) * vocab, temperature[b], topK[b], topP[b], seed, b,
                        step);
                boolean end;
                if (id == NON_FINITE) {
                    logp = Float.NaN;
                    end = true;
                    counters[Sampling.NON_FINITE]++;
                } else {
                    token = id;
                    logp = ws.logprob();
                    end = false;
                    for (int s : stopIds) {
                        end |= s == id;
                    }
                }
                if (end) {
                    finished[b] = 1;
                    counters[Sampling.UNFINISHED]--;
                }
            }
            tokens[b] = token;
            logprobs[b] = logp;
            if (step >= 0 && step < historyLen) {
                if (tokenHistory != null) {
                    tokenHistory[b * historyLen + step] = token;
                }
                if (logprobHistory != null) {
                    logprobHistory[b * historyLen + step] = logp;
                }
            }
        }
    }

    /**
     * {@link #sample(float[], int, int, int, int, float[], int[], float[], int[], int, int[], int[], int[], int[],
     * float[], int[], float[], int)} on bf16 logits (widened exactly).
     *
     * @param logits         (B / group, V) bf16 bits
     * @param logitsOff      its offset
     * @param rows           B
     * @param vocab          V
     * @param group          rows per logits row
     * @param temperature    (B) per-row T
     * @param topK           (B) per-row k
     * @param topP           (B) per-row p
     * @param stopIds        ids that finish a row
     * @param padId          the token of finished rows
     * @param counters       (4) seed low, seed high, unfinished rows, non-finite rows
     * @param finished       (B) flags, updated
     * @param steps          (B) step counters, incremented
     * @param tokens         (B) out
     * @param logprobs       (B) out
     * @param tokenHistory   (B, historyLen) out, or null
     * @param logprobHistory (B, historyLen) out, or null
     * @param historyLen     columns of the histories
     */
    public static void sample(short[] logits, int logitsOff, int rows, int vocab, int group, float[] temperature,
            int[] topK, float[] topP, int[] stopIds, int padId, int[] counters, int[] finished, int[] steps,
            int[] tokens, float[] logprobs, int[] tokenHistory, float[] logprobHistory, int historyLen) {
        Rows.checkPositive("rows", rows);
        Rows.checkPositive("group", group);
        float[] wide = Views.widen(logits, logitsOff, Math.multiplyExact(rows / group, vocab));
        sample(wide, 0, rows, vocab, group, temperature, topK, topP, stopIds, padId, counters, finished, steps, tokens,
                logprobs, tokenHistory, logprobHistory, historyLen);
    }
}
