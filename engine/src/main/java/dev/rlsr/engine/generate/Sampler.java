package dev.rlsr.engine.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Draws one token from a row of logits (V) under a {@link SamplingConfig}: temperature, then top-k, then top-p, as
 * HF's logits warpers do, then an inverse-CDF draw with the row's own random stream. Holds scratch buffers of size V
 * so that sampling allocates nothing per token; one instance per thread.
 *
 * <p>Ties are broken towards the lower token id everywhere (argmax, top-k, top-p), so top-k = 1 and a vanishing
 * top-p both reproduce greedy decoding exactly. {@link #lastEntropy()} is the entropy (nats) of the distribution
 * {@code softmax(logits / temperature)} before the top-k/top-p filters (temperature 1 for greedy): the policy
 * entropy TRL logs, from the logits the sample was drawn from.
 */
public final class Sampler {
    private final SamplingConfig config;
    private final int vocab;
    private final double invTemperature;
    /** exp((z - max)) per token, z = logit / temperature. */
    private final double[] weights;
    /** Sort keys (descending weight, ascending id) for top-k / top-p; null when no filter is on. */
    private final long[] order;
    private double lastEntropy;
    private static final long MAX_KEY = (1L << 41) - 1;
    private static final int MAX_VOCAB = 1 << 22;

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
        this.invTemperature = config.temperature() > 0 ? 1.0 / config.temperature() : 1.0;
        this.weights = new double[vocab];
        if (vocab > MAX_VOCAB) {
            throw new IllegalArgumentException("vocabulary of " + vocab + " exceeds the sampler's limit " + MAX_VOCAB);
        }
        boolean filters = (config.topK() > 0 && config.topK() < vocab) || config.topP() < 1.0;
        this.order = filters ? new long[vocab] : null;
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
     * Samples a token id from {@code logits[offset, offset + V)}.
     *
     * @param logits an array holding the row
     * @param offset the row's first element
     * @param rng    the row's random stream
     * @return the token id
     */
    public int sample(float[] logits, int offset, SplittableRandom rng) {
        double max = Double.NEGATIVE_INFINITY;
        int argmax = 0;
        for (int i = 0; i < vocab; i++) {
            float x = logits[offset + i];
            if (x > max) {
                max = x;
                argmax = i;
            }
        }
        if (max == Double.NEGATIVE_INFINITY || Double.isNaN(max)) {
            throw new NonFiniteLogitsException("cannot sample: the logits row has no finite maximum (NaN or all"
                    + " -inf)");
        }
        double zmax = max * invTemperature, sum = 0, sumWz = 0;
        for (int i = 0; i < vocab; i++) {
            double z = logits[offset + i] * invTemperature - zmax;
            double w = Math.exp(z);
            weights[i] = w;
            sum += w;
            sumWz += w * z;
        }
        // H = log(sum) - E[z - zmax]
        lastEntropy = Math.log(sum) - sumWz / sum;
        if (config.isGreedy()) {
            return argmax;
        }
        if (order == null) {
            double u = rng.nextDouble() * sum, c = 0;
            for (int i = 0; i < vocab; i++) {
                c += weights[i];
                if (u < c) {
                    return i;
                }
            }
            return lastPositive();
        }
        // sort key: descending weight, then ascending id. Positive doubles order like their bit patterns; the top 41
        // bits (exponent + 30 mantissa bits, relative resolution 1e-9, finer than any two distinct fp32 logits)
        // leave 22 bits for the id
        for (int i = 0; i < vocab; i++) {
            long bits = Double.doubleToRawLongBits(weights[i]) >>> 22;
            order[i] = ((MAX_KEY - bits) << 22) | i;
        }
        Arrays.sort(order);
        int kept = config.topK() > 0 ? Math.min(config.topK(), vocab) : vocab;
        double keptMass = 0;
        for (int j = 0; j < kept; j++) {
            keptMass += weights[(int) (order[j] & (MAX_VOCAB - 1))];
        }
        if (config.topP() < 1.0) {
            // HF TopP: drop tokens whose ascending cumulative probability is <= 1 - top_p, i.e. keep a token while
            // the mass ranked before it is < top_p; at least one token stays
            double limit = config.topP() * keptMass, before = 0;
            int j = 0;
            while (j < kept && (j == 0 || before < limit)) {
                before += weights[(int) (order[j] & (MAX_VOCAB - 1))];
                j++;
            }
            kept = j;
            keptMass = before;
        }
        double u = rng.nextDouble() * keptMass, c = 0;
        for (int j = 0; j < kept; j++) {
            int id = (int) (order[j] & (MAX_VOCAB - 1));
            c += weights[id];
            if (u < c) {
                return id;
            }
        }
        return (int) (order[kept - 1] & (MAX_VOCAB - 1));
    }

    private int lastPositive() {
        for (int i = vocab - 1; i >= 0; i--) {
            if (weights[i] > 0) {
                return i;
            }
        }
        return 0;
    }
}
