package dev.rlsr.trainer.reward;

import java.util.List;

/**
 * {@code rougeL}: ROUGE-L F1 of the response against the reference (range [0, 1]), see {@link RougeL}.
 * The prompt is not used. A response with no alphanumeric token scores 0.
 */
public final class RougeLReward implements Reward {
    public static final String NAME = "rougeL";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public double[] score(List<RewardInput> batch) {
        double[] out = new double[batch.size()];
        for (int i = 0; i < out.length; i++) {
            RewardInput in = batch.get(i);
            out[i] = RougeL.score(in.response(), in.reference()).f1();
        }
        return out;
    }
}
