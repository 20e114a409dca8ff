package dev.rlsr.trainer.reward;

import java.util.List;

/**
 * {@code length}: a bounded length penalty {@code -min(1, |len(y) - len(y*)| / max(len(y*), 1))} in [-1, 0],
 * where len counts whitespace-separated words (Python {@code str.split()}), so it does not depend on any model
 * tokenizer. 0 when the response has the reference's length; -1 when it is empty (non-empty reference) or at
 * least twice as long. Meant as a small additive term ({@code 0.9*cosine+0.1*length}) that discourages
 * padding a response out to game similarity rewards.
 */
public final class LengthReward implements Reward {
    public static final String NAME = "length";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public double[] score(List<RewardInput> batch) {
        double[] out = new double[batch.size()];
        for (int i = 0; i < out.length; i++) {
            RewardInput in = batch.get(i);
            int y = PyStrings.split(in.response()).size();
            int ref = PyStrings.split(in.reference()).size();
            // written as 0 - x so that a perfect match is +0.0, not -0.0
            out[i] = 0.0 - Math.min(1.0, Math.abs(y - ref) / (double) Math.max(ref, 1));
        }
        return out;
    }
}
