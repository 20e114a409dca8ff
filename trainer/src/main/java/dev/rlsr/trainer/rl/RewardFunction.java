package dev.rlsr.trainer.rl;

import dev.rlsr.trainer.reward.RewardInput;

import java.util.List;

/**
 * What the RL loop needs of a reward: {@code batch (N) -> rewards (N)}, called once per rollout batch. Every
 * {@link dev.rlsr.trainer.reward.Reward} is one ({@code reward::score}); tests pass lambdas.
 */
@FunctionalInterface
public interface RewardFunction {
    double[] score(List<RewardInput> batch);
}
