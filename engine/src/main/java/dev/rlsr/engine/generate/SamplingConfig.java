package dev.rlsr.engine.generate;

import java.util.List;

/**
 * How completions are sampled. Filters apply in the order of HF {@code generate}: temperature, then top-k, then
 * top-p (nucleus) over what top-k kept.
 *
 * @param temperature  divides the logits; 0 means greedy (argmax, first index on ties)
 * @param topP         keep the smallest set of most likely tokens whose probability reaches topP; 1 = off
 * @param topK         keep the k most likely tokens; 0 = off
 * @param maxNewTokens most tokens generated per completion
 * @param stopStrings  a completion also ends when its text contains one of these (the stop string is cut from the
 *                     returned text, its tokens stay in the trained completion); empty list = only stop tokens
 * @param seed         sampling is a pure function of (seed, row, model, prompts): same seed, same tokens
 */
public record SamplingConfig(double temperature, double topP, int topK, int maxNewTokens, List<String> stopStrings,
                             long seed) {
    /** Checks every value, naming the bad one; copies the stop strings. */
    public SamplingConfig {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("sampling temperature must be a finite number >= 0 (0 = greedy), got "
                    + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1] (1 = off), got " + topP);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
        }
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + maxNewTokens);
        }
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop strings must not be empty");
            }
        }
    }

    /**
     * Plain sampling at temperature 1, no filters, no stop strings.
     *
     * @param maxNewTokens most tokens per completion
     * @param seed         random seed
     * @return the config
     */
    public static SamplingConfig of(int maxNewTokens, long seed) {
        return new SamplingConfig(1.0, 1.0, 0, maxNewTokens, List.of(), seed);
    }

    /**
     * Greedy decoding.
     *
     * @param maxNewTokens most tokens per completion
     * @return the config
     */
    public static SamplingConfig greedy(int maxNewTokens) {
        return new SamplingConfig(0.0, 1.0, 0, maxNewTokens, List.of(), 0);
    }

    /** {@return whether decoding is greedy: temperature 0 or top-k 1 (argmax, lowest id on ties)} */
    public boolean isGreedy() {
        return temperature == 0 || topK == 1;
    }

    /**
     * This config with another seed.
     *
     * @param newSeed the seed
     * @return the new config
     */
    public SamplingConfig withSeed(long newSeed) {
        return new SamplingConfig(temperature, topP, topK, maxNewTokens, stopStrings, newSeed);
    }

    /**
     * This config with another length limit.
     *
     * @param n most tokens per completion
     * @return the new config
     */
    public SamplingConfig withMaxNewTokens(int n) {
        return new SamplingConfig(temperature, topP, topK, n, stopStrings, seed);
    }
}
