/**
 * The run directory and everything a run writes: {@link dev.rlsr.trainer.run.RunDir} (layout, atomic writes,
 * {@code latest} pointer), {@link dev.rlsr.trainer.run.RunCheckpointer} (HF model directory + optimizer + train state,
 * temp dir then rename), {@link dev.rlsr.trainer.run.MetricsLog} (metrics.jsonl), {@link dev.rlsr.trainer.run.RunListener}
 * and {@link dev.rlsr.trainer.run.ProgressBar} (console), {@link dev.rlsr.trainer.run.Plots} (PNG curves),
 * {@link dev.rlsr.trainer.run.RunReport} (report.md, summary.json), and {@link dev.rlsr.trainer.run.StageRunner}, which
 * runs resumable stages (pretrain, SFT, RL, eval) inside a run directory.
 */
package dev.rlsr.trainer.run;
