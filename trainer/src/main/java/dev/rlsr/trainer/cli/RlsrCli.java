package dev.rlsr.trainer.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code rlsr} command line. Subcommands (sft, rl, pipeline, eval, generate, demo) are added by issue [D]. */
@Command(name = "rlsr", mixinStandardHelpOptions = true, version = "rlsr 0.1.0",
        description = {"SFT, GRPO and RLSR (Reinforcement Learning with Supervised Reward) post-training "
                + "for Qwen/Llama-family language models, on NVIDIA GPUs or the CPU."},
        subcommands = {CommandLine.HelpCommand.class})
public final class RlsrCli implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new RlsrCli()).execute(args));
    }
}
