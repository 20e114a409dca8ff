package dev.rlsr.trainer.cli;

import dev.rlsr.trainer.config.RunConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Options every run command shares: the config file, overrides, run directory, device and output style. */
public final class CommonOptions {
    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "Run configuration (YAML, or JSON for a .json file); `rlsr config` lists the keys.")
    Path config;

    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "Override one config key, e.g. --set rl.steps=50 --set rl.reward=0.7*cosine+0.3*rougeL"
                    + " (repeatable; applied after the file).")
    List<String> overrides = new ArrayList<>();

    @Option(names = {"-o", "--run-dir"}, paramLabel = "DIR",
            description = "Run directory (same as --set run.dir=DIR); a run directory with a checkpoint is resumed.")
    Path runDir;

    @Option(names = "--device", paramLabel = "DEVICE",
            description = "cpu, cuda or auto (default: run.device, auto): auto takes the GPU when one and the CUDA"
                    + " libraries are there; cuda without them stops with exit code 6 naming what is missing"
                    + " (`rlsr doctor` shows what was found).")
    String device;

    @Option(names = "--precision", paramLabel = "P",
            description = "bf16 or fp32 (default: run.precision, auto = bf16 on cuda, fp32 on cpu). bf16 keeps fp32"
                    + " master weights and fp32 accumulation; fp32 on cuda gives the CPU's results up to summation"
                    + " order.")
    String precision;

    @Option(names = {"-q", "--quiet"}, description = "No progress bars: plain timestamped log lines.")
    boolean quiet;

    @Option(names = {"-v", "--verbose"}, description = "Print the stack trace of an error.")
    boolean verbose;

    /** The config: {@code base} (defaults), then the file, then --set, then the shorthand options. */
    RunConfig resolve(RunConfig base, List<String> shorthand) {
        RunConfig c = base;
        if (config != null) {
            c = c.withFile(config);
        }
        c = c.withOverrides(overrides);
        List<String> more = new ArrayList<>(shorthand);
        if (runDir != null) {
            more.add("run.dir=" + runDir);
        }
        if (device != null) {
            more.add("run.device=" + device);
        }
        if (precision != null) {
            more.add("run.precision=" + precision);
        }
        return c.withOverrides(more);
    }
}
