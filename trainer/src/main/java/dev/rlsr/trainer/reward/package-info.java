/**
 * Reference-based rewards for GRPO/RLSR: {@code score(batch (N)) -> rewards (N)} over rows
 * (exampleId, prompt x, response y, reference y*).
 *
 * <p>Legend: N = rows in a reward batch (P prompts x G rollouts), D = embedding width.
 * Names in specs: {@code cosine} (RLSR, cos(E(x ⊕ y), E(x ⊕ y*)) in [-1, 1]), {@code bleu} (sacreBLEU sentence
 * BLEU / 100), {@code rougeL} (ROUGE-L F1), {@code exact} (normalised exact match, 0/1), {@code length}
 * (length penalty in [-1, 0]); combined with {@link dev.rlsr.trainer.reward.RewardSpec} and built by
 * {@link dev.rlsr.trainer.reward.Reward#fromSpec}.
 */
package dev.rlsr.trainer.reward;
