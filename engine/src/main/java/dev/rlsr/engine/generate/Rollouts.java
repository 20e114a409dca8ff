package dev.rlsr.engine.generate;

/**
 * G sampled completions for each of P prompts; row {@code r = p*G + g}. Legend: R = P*G rows, Tp the longest prompt,
 * Lmax = maxNewTokens.
 *
 * @param prompts           P
 * @param groupSize         G
 * @param promptLen         Tp
 * @param promptIds         (P, Tp) left-padded prompt ids (pad id in the padding)
 * @param promptMask        (P, Tp) 1 = token, 0 = padding
 * @param maxNewTokens      Lmax
 * @param completionIds     (R, Lmax) sampled ids, the stop token included, then the pad id
 * @param completionLengths (R) tokens that belong to each completion (stop token included): the trained tokens
 * @param finish            (R) why each completion ended
 * @param texts             (R) decoded completions (unmodifiable) without the stop token and cut before a stop string, or null
 *                          when no decoder was given
 * @param completionLogprobs (R, Lmax) {@code log_softmax(logits / T)[token]} of each sampled token under the sampling
 *                          policy (before top-k/top-p; 0 after a completion ended): GRPO's old-policy log-probs
 * @param entropySum        sum over all sampled completion tokens of {@code -logp} (nats): its mean estimates the
 *                          sampling distribution's entropy without a pass over the vocabulary
 * @param sampledTokens     completion tokens sampled (sum of completionLengths)
 * @param prefillNanos      time spent prefilling the prompts (once per group)
 * @param decodeNanos       time spent in the decode loop (forward + sampling)
 */
public record Rollouts(int prompts, int groupSize, int promptLen, int[] promptIds, int[] promptMask, int maxNewTokens,
                       int[] completionIds, int[] completionLengths, FinishReason[] finish, java.util.List<String> texts,
                       float[] completionLogprobs, double entropySum, long sampledTokens, long prefillNanos, long decodeNanos) {

    /** Why a completion ended. */
    public enum FinishReason {
        /** emitted a stop token (EOS, {@code <|im_end|>}) */
        STOP_TOKEN,
        /** its text contains a stop string */
        STOP_STRING,
        /** reached maxNewTokens */
        LENGTH
    }

    /** {@return R = P*G, the number of completions} */
    public int rows() {
        return prompts * groupSize;
    }

    /** {@return the mean entropy per sampled token (nats), estimated by the mean -log p of the sampled tokens} */
    public double meanEntropy() {
        return sampledTokens == 0 ? 0 : entropySum / sampledTokens;
    }

    /** {@return the mean completion length in tokens} */
    public double meanLength() {
        return rows() == 0 ? 0 : (double) sampledTokens / rows();
    }

    /** {@return the longest completion in the batch} (the trained sequences need no more columns than Tp + this). */
    public int maxLength() {
        int m = 0;
        for (int l : completionLengths) {
            m = Math.max(m, l);
        }
        return m;
    }

    /**
     * The counted ids of one completion.
     *
     * @param row r = p*G + g
     * @return its ids, the stop token included
     */
    public int[] completion(int row) {
        return java.util.Arrays.copyOfRange(completionIds, row * maxNewTokens, row * maxNewTokens
                + completionLengths[row]);
    }

    /**
     * The unpadded prompt ids of prompt p.
     *
     * @param p the prompt's index
     * @return its ids without padding
     */
    public int[] prompt(int p) {
        int n = 0;
        for (int t = 0; t < promptLen; t++) {
            n += promptMask[p * promptLen + t];
        }
        return java.util.Arrays.copyOfRange(promptIds, (p + 1) * promptLen - n, (p + 1) * promptLen);
    }

    /** {@return the fraction of completions that hit maxNewTokens} */
    public double truncatedFraction() {
        int n = 0;
        for (FinishReason f : finish) {
            n += f == FinishReason.LENGTH ? 1 : 0;
        }
        return rows() == 0 ? 0 : (double) n / rows();
    }
}
