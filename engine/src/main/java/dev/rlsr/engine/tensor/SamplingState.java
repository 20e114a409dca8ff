package dev.rlsr.engine.tensor;

import dev.rlsr.kernels.DType;

/**
 * The device state of sampling one batch of B rows ({@link Backend#sample}): the per-row parameters (temperature, top-k,
 * top-p; greedy = temperature 0), the stop ids, and what persists across steps (the seed and counters, the finished
 * flags, each row's step) plus the histories of sampled tokens and their log-probabilities (B, maxSteps), so a
 * decode loop reads nothing back per step but the 4-byte count of unfinished rows.
 */
public final class SamplingState implements AutoCloseable {
    /** I32 words of {@link #counters}: seed low, seed high, unfinished rows, rows finished on non-finite logits. */
    public static final int COUNTERS = 4;
    /** Index of the unfinished-row count in {@link #counters}. */
    public static final int UNFINISHED = 2;
    /** Index of the non-finite-row count in {@link #counters}. */
    public static final int NON_FINITE = 3;

    private final Backend backend;
    final int rows;
    final int maxSteps;
    final int padId;
    final int stopCount;
    final Tensor temperature;
    final Tensor topK;
    final Tensor topP;
    final Tensor stopIds;
    final Tensor counters;
    final Tensor finished;
    final Tensor steps;
    final Tensor tokenHistory;
    final Tensor logprobHistory;
    final Tensor logprobs;

    /**
     * State for B rows sharing one configuration.
     *
     * @param backend     where it lives
     * @param rows        B
     * @param maxSteps    columns of the histories (the most tokens a row can sample)
     * @param temperature T (0 = greedy)
     * @param topK        k (0 = off)
     * @param topP        p (1 = off)
     * @param stopIds     token ids that finish a row
     * @param padId       the token written for finished rows
     */
    public SamplingState(Backend backend, int rows, int maxSteps, double temperature, int topK, double topP,
                         int[] stopIds, int padId) {
        if (rows < 1 || maxSteps < 1) {
            throw new IllegalArgumentException("sampling needs rows >= 1 and maxSteps >= 1, got " + rows + ", "
                    + maxSteps);
        }
        this.backend = backend;
        this.rows = rows;
        this.maxSteps = maxSteps;
        this.padId = padId;
        this.stopCount = stopIds == null ? 0 : stopIds.length;
        float[] t = new float[rows], p = new float[rows];
        int[] k = new int[rows];
        java.util.Arrays.fill(t, (float) temperature);
        java.util.Arrays.fill(p, (float) topP);
        java.util.Arrays.fill(k, topK);
        this.temperature = backend.upload(t, rows);
        this.topK = backend.upload(k, rows);
        this.topP = backend.upload(p, rows);
        this.stopIds = stopCount == 0 ? null : backend.upload(stopIds.clone(), stopCount);
        this.counters = backend.zeros(DType.I32, COUNTERS);
        this.finished = backend.zeros(DType.I32, rows);
        this.steps = backend.zeros(DType.I32, rows);
        this.tokenHistory = backend.zeros(DType.I32, rows, maxSteps);
        this.logprobHistory = backend.zeros(DType.F32, rows, maxSteps);
        this.logprobs = backend.zeros(DType.F32, rows);
    }

    /**
     * Sets every row's temperature, top-k and top-p (the same buffers: a recorded step keeps reading them).
     *
     * @param temperature T (0 = greedy)
     * @param topK        k (0 = off)
     * @param topP        p (1 = off)
     */
    public void configure(double temperature, int topK, double topP) {
        float[] t = new float[rows], p = new float[rows];
        int[] k = new int[rows];
        java.util.Arrays.fill(t, (float) temperature);
        java.util.Arrays.fill(p, (float) topP);
        java.util.Arrays.fill(k, topK);
        backend.upload(t, this.temperature);
        backend.upload(k, this.topK);
        backend.upload(p, this.topP);
    }

    /** {@return B} */
    public int rows() {
        return rows;
    }

    /** {@return the histories' columns} */
    public int maxSteps() {
        return maxSteps;
    }

    /** {@return I32 (COUNTERS): seed, unfinished rows, non-finite rows} */
    public Tensor counters() {
        return counters;
    }

    /** {@return I32 (B): 1 for a finished row} */
    public Tensor finished() {
        return finished;
    }

    /** {@return I32 (B, maxSteps): token b sampled at its step s, the pad id after it finished} */
    public Tensor tokenHistory() {
        return tokenHistory;
    }

    /** {@return F32 (B, maxSteps): log_softmax(logits / T)[token] of each sampled token, before top-k/top-p} */
    public Tensor logprobHistory() {
        return logprobHistory;
    }

    /** {@return F32 (B): each row's temperature} */
    public Tensor temperature() {
        return temperature;
    }

    /** {@return I32 (B): each row's top-k} */
    public Tensor topK() {
        return topK;
    }

    /** {@return F32 (B): each row's top-p} */
    public Tensor topP() {
        return topP;
    }

    /** {@return I32 (stop count), or null when there are none} */
    public Tensor stopIds() {
        return stopIds;
    }

    /** {@return the number of stop ids} */
    public int stopCount() {
        return stopCount;
    }

    /** {@return the token written for finished rows} */
    public int padId() {
        return padId;
    }

    /** {@return I32 (B): each row's step (the generator's counter)} */
    public Tensor steps() {
        return steps;
    }

    /** {@return F32 (B): the log-probability of each row's latest token} */
    public Tensor logprobs() {
        return logprobs;
    }

    @Override
    public void close() {
        for (Tensor x : new Tensor[]{temperature, topK, topP, stopIds, counters, finished, steps, tokenHistory,
                logprobHistory, logprobs}) {
            if (x != null) {
                x.close();
            }
        }
    }
}
