package dev.rlsr.trainer.cli;

import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.tokenizer.TokenizerException;
import dev.rlsr.trainer.config.ConfigException;
import dev.rlsr.trainer.data.DatasetException;
import dev.rlsr.trainer.run.RunFailure;
import dev.rlsr.trainer.train.NonFiniteException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.io.StringWriter;

/**
 * The {@code rlsr} command line: {@code sft}, {@code rl}, {@code pipeline}, {@code eval}, {@code generate},
 * {@code demo}, {@code config}, {@code doctor}. Errors a user can fix (config, data, model directory, memory, device) print one
 * paragraph and exit with a code per kind ({@link RunFailure}); the stack trace only with {@code --verbose}.
 */
@Command(name = "rlsr", mixinStandardHelpOptions = true, version = "rlsr 0.1.0",
        description = {"SFT, GRPO and RLSR (Reinforcement Learning with Supervised Reward) post-training "
                + "for Qwen/Llama-family language models, on NVIDIA GPUs or the CPU.",
                "",
                "Each run command takes one config file (-c, YAML or JSON) plus --set KEY=VALUE overrides and writes"
                        + " a run directory (-o) with checkpoints, metrics.jsonl, plots, report.md and summary.json;"
                        + " rerunning a command on its run directory resumes it. `rlsr config` lists every key."},
        subcommands = {Commands.Demo.class, Commands.Sft.class, Commands.Rl.class, Commands.Pipeline.class,
                Commands.Eval.class, Commands.Generate.class, Commands.Config.class, Doctor.class,
                CommandLine.HelpCommand.class},
        footer = {"", "Exit codes: 0 ok, 1 unexpected error, 2 usage or config error, 3 data error, 4 model or"
                + " checkpoint error, 5 out of memory, 6 device not available, 7 training diverged (a loss, gradient"
                + " or weight that is not a finite number), 8 run directory in use by another run."})
public final class RlsrCli implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** A command line with rlsr's error handling; {@link CommandLine#execute} returns the exit code. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new RlsrCli());
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> handle(ex, cmd, parseResult));
        return cl;
    }

    static int handle(Exception ex, CommandLine cmd, CommandLine.ParseResult parseResult) {
        boolean verbose = parseResult.subcommands().stream().anyMatch(p -> p.hasMatchedOption("--verbose"))
                || parseResult.hasMatchedOption("--verbose");
        PrintWriter err = cmd.getErr();
        int code;
        String msg;
        switch (ex) {
            case RunFailure f -> {
                code = f.exitCode();
                msg = f.getMessage();
            }
            case ConfigException c -> {
                code = RunFailure.USAGE;
                msg = "config error: " + c.getMessage();
            }
            case DatasetException d -> {
                code = RunFailure.DATA;
                msg = "data error: " + d.getMessage();
            }
            case CheckpointException c -> {
                code = RunFailure.MODEL;
                msg = "model or checkpoint error: " + c.getMessage();
            }
            case TokenizerException t -> {
                code = RunFailure.MODEL;
                msg = "tokenizer error: " + t.getMessage();
            }
            case java.io.UncheckedIOException u -> {
                code = 1;
                msg = "file error: " + u.getMessage() + " (" + dev.rlsr.engine.io.IoMessages.describe(u.getCause())
                        + ")";
            }
            case NonFiniteException n -> {
                code = RunFailure.DIVERGED;
                msg = "training diverged: " + n.getMessage();
            }
            default -> {
                code = 1;
                msg = "unexpected error: " + ex + (verbose ? "" : " (run with --verbose for the stack trace)");
            }
        }
        err.println();
        err.println("rlsr " + cmd.getCommandName() + ": " + msg);
        if (verbose) {
            StringWriter sw = new StringWriter();
            ex.printStackTrace(new PrintWriter(sw));
            err.println(sw);
        }
        err.flush();
        return code;
    }

    /** What to change after running out of memory, for the command that ran (the first non-option argument). */
    static String outOfMemoryAdvice(String[] args) {
        String command = java.util.Arrays.stream(args).filter(a -> !a.startsWith("-")).findFirst().orElse("");
        String heap = "give the JVM more heap (RLSR_JAVA_OPTS=-Xmx...)";
        return switch (command) {
            case "sft", "rl", "pipeline", "demo" -> "Lower the batch settings of the stage that ran (sft.batch_size,"
                    + " rl.micro_batch, eval.batch_size) or " + heap + ". The last complete checkpoint is kept; rerun"
                    + " to resume.";
            case "eval" -> "Lower eval.batch_size (or eval.sampling.max_new_tokens) or " + heap + "; the models"
                    + " themselves must fit in memory one at a time.";
            case "generate" -> "Lower --max-new-tokens or eval.batch_size (prompts generated together), or " + heap
                    + "; the model itself must fit in memory.";
            default -> capitalize(heap) + ".";
        };
    }

    private static String capitalize(String s) {
        return Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }

    public static void main(String[] args) {
        // DJL and langchain4j log through SLF4J; without a provider it prints a three-line warning at start-up
        System.setProperty("slf4j.internal.verbosity", "ERROR");
        int code;
        try {
            code = commandLine().execute(args);
        } catch (OutOfMemoryError e) {
            System.err.println("rlsr: out of memory (" + e.getMessage() + "). " + outOfMemoryAdvice(args));
            code = RunFailure.RESOURCES;
        } catch (Throwable t) {
            // an Error picocli passes on (a broken installation: a missing class, a native library that fails)
            boolean verbose = java.util.Arrays.asList(args).contains("--verbose")
                    || java.util.Arrays.asList(args).contains("-v");
            System.err.println("rlsr: unexpected error: " + t + (verbose ? "" : " (run with --verbose for the stack"
                    + " trace)"));
            if (verbose) {
                t.printStackTrace();
            }
            code = 1;
        }
        System.exit(code);
    }
}
