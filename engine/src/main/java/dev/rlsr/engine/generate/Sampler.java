package dev.rlsr.engine.generate;

import dev.rlsr.kernels.SamplingReference;

/**
 * Draws one token from a row of logits (V) under a {@link SamplingConfig}: temperature, then top-k, then top-p, as
 * HF's logits warpers do, through {@link SamplingReference} (the CPU twin of the device's sampling kernel), so the
 * CPU and the device draw the same token for the same logits, seed, row and step. Randomness is the counter-based
 * Philox4x32-10 stream of (seed, row, step): a token depends on nothing else. Holds scratch buffers of size V so
 * that sampling allocates nothing per token; one instance per thread.
 *
 * <p>Ties are broken towards the lower token id everywhere (argmax, top-k, top-p), so top-k = 1 and a vanishing
 * top-p both reproduce greedy decoding exactly. Temperature and top-p travel as fp32, as on the device.
 * {@link #lastEntropy()} is the entropy (nats) of the distribution {@code softmax(logits / temperature)} before the
 * top-k/top-p filters (temperature 1 for greedy): the policy entropy TRL logs, from the logits the sample was drawn
 * from. {@link #lastLogprob()} is the log-probability of the token under that same distribution (the "old policy"
 * log-prob of GRPO).
 */
public final class Sampler {
    private final SamplingConfig config;
    private final int vocab;
    private final float temperature;
    private final float topP;
    private final double invTemperature;
    private final SamplingReference.Workspace workspace;
    private double lastEntropy;

    /**
     * A sampler with scratch buffers for a vocabulary of {@code vocab}.
     *
     * @param config the sampling settings
     * @param vocab  V
     */
    public Sampler(SamplingConfig config, int vocab) {
        if (vocab < 1) {
            throw new IllegalArgumentException("vocabulary size must be >= 1, got " + vocab);
        }
        this.config = config;
        this.vocab = vocab;
        this.temperature = (float) config.temperature();
        this.topP = (float) config.topP();
        this.invTemperature = config.temperature() > 0 ? 1.0 / config.temperature() : 1.0;
        this.workspace = new SamplingReference.Workspace(vocab);
    }

    /** {@return the sampling settings} */
    public SamplingConfig config() {
        return config;
    }

    /** {@return the entropy (nats) of the distribution the last {@link #sample} drew from} (before filtering). */
    public double lastEntropy() {
        return lastEntropy;
    }

    /**
     * {@return the log-probability of the last sampled token} under {@code softmax(logits / temperature)} before
     * top-k/top-p (temperature 1 for greedy), as {@link SamplingReference} and the device compute it
     */
    public float lastLogprob() {
        return workspace.logprob();
    }

    /**
     * Samples a token id from {@code logits[offset, offset + V)}.
     *
     * @param logits an array holding the row
     * @param offset the row's first element
     * @param row    the row's index in its batch (its generator stream)
     * @param step   the decode step (the position in the row's stream)
     * @return the token id
     * @throws NonFiniteLogitsException when the row holds a NaN, a +inf maximum, or only -inf
     */
    public int sample(float[] logits, int offset, int row, int step) {
        int id = workspace.sample(logits, offset, temperature, config.topK(), topP, config.seed(), row, step);
        if (id == SamplingReference.NON_FINITE) {
            throw new NonFiniteLogitsException("cannot sample: the logits row holds a NaN or a +inf, or only -inf");
        }
        lastEntropy = entropy(logits, offset);
        return id;
    }

    /** H = log(sum) - E[z - zmax] of softmax(z), z = logits / T, in double (the row is finite here). */
    private double entropy(float[] logits, int offset) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double zmax = max * invTemperature, sum = 0, sumWz = 0;
        for (int i = 0; i < vocab; i++) {
            double z = logits[offset + i] * invTemperature - zmax;
            double w = Math.exp(z);
            if (w > 0) { // a -inf logit adds nothing (0 * -inf would be NaN)
                sum += w;
                sumWz += w * z;
            }
        }
        return Math.log(sum) - sumWz / sum;
    }
}
