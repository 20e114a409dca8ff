package dev.rlsr.trainer.reward;

import java.util.List;

/**
 * {@code bleu}: sacreBLEU sentence BLEU of the response against the reference, divided by 100 (range [0, 1]),
 * see {@link SentenceBleu}. The prompt is not used. An empty response (or reference) scores 0.
 */
public final class BleuReward implements Reward {
    public static final String NAME = "bleu";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public double[] score(List<RewardInput> batch) {
        double[] out = new double[batch.size()];
        for (int i = 0; i < out.length; i++) {
            RewardInput in = batch.get(i);
            out[i] = SentenceBleu.score(in.response(), in.reference()) / 100.0;
        }
        return out;
    }
}
