/** The {@code rlsr} command line (picocli): demo, sft, rl, pipeline, eval, generate, config. */
package dev.rlsr.trainer.cli;
