/**
 * Held-out evaluation ({@link dev.rlsr.trainer.eval.Evaluator}: reward, ROUGE-L, BLEU, eval loss, response length) and
 * bootstrap statistics ({@link dev.rlsr.trainer.eval.Bootstrap}: percentile intervals of means and of paired
 * differences over prompts).
 */
package dev.rlsr.trainer.eval;
