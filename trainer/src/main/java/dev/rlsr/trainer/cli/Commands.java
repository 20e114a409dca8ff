package dev.rlsr.trainer.cli;

import dev.rlsr.engine.generate.RolloutEngine;
import dev.rlsr.engine.generate.Rollouts;
import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tokenizer.Message;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.config.ConfigSchema;
import dev.rlsr.trainer.config.RunConfig;
import dev.rlsr.trainer.config.TrainerConfigs;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.demo.DemoPipeline;
import dev.rlsr.trainer.run.MetricsLog;
import dev.rlsr.trainer.run.RunDir;
import dev.rlsr.trainer.run.RunFailure;
import dev.rlsr.trainer.run.RunListener;
import dev.rlsr.trainer.run.PeakMemory;
import dev.rlsr.trainer.run.RunReport;
import dev.rlsr.trainer.run.StageRunner;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** The subcommands of {@code rlsr}. Results go to stdout, progress and logs to stderr. */
final class Commands {
    private Commands() {
    }

    /** What every run command does around its stages: config, run directory, listener, backend. */
    abstract static class RunCommand implements Callable<Integer> {
        @Mixin
        CommonOptions common;

        /** The config with the command's shorthand options applied. */
        abstract RunConfig config();

        /** The stages of the command; the report is written afterwards. */
        abstract void body(RunConfig cfg, RunDir run, RunListener listener, Backend backend, RunReport report);

        String title(RunConfig cfg) {
            return "rlsr run";
        }

        /**
         * Everything that can be checked before the run directory is created or locked: config combinations, model
         * directories, tokenizer against model, data files. A failure here leaves the file system untouched.
         */
        void preflight(RunConfig cfg) {
        }

        /** Releases what {@link #preflight} opened (a tokenizer); called once the command ends. */
        void releasePreflight() {
        }

        @Override
        public Integer call() {
            long t0 = System.nanoTime();
            RunConfig cfg = config();
            try {
                preflight(cfg);
                StageRunner.preflightRewardDevice(cfg);
                List<String> deviceLog = new ArrayList<>();
                // the device is chosen (and a missing GPU reported) before the run directory is created
                try (Backend backend = StageRunner.selectBackend(cfg.getString("run.device"),
                        cfg.getString("run.precision"), deviceLog::add);
                     RunDir run = RunDir.open(Path.of(cfg.getString("run.dir")));
                     RunListener listener = new RunListener(new MetricsLog(run.resolve(RunDir.METRICS)), System.err,
                             common.quiet, Commands.isTerminal(), run.resolve(RunDir.LOG))) {
                    warnIfConfigChanged(run, cfg, listener);
                    RunDir.writeAtomically(run.resolve(RunDir.CONFIG), cfg.toYaml());
                    deviceLog.forEach(listener::log);
                    listener.log("run directory: " + run.root());
                    RunReport report = new RunReport(title(cfg));
                    body(cfg, run, listener, backend, report);
                    listener.log(PeakMemory.describe());
                    report.totalSeconds((System.nanoTime() - t0) / 1e9);
                    report.write(run, cfg.getInt("eval.samples_in_report"));
                    System.out.print(report.consoleTable());
                    System.out.println("report: " + run.resolve(RunDir.REPORT) + "   summary: "
                            + run.resolve(RunDir.SUMMARY));
                }
            } finally {
                releasePreflight();
            }
            return 0;
        }

        private static void warnIfConfigChanged(RunDir run, RunConfig cfg, RunListener listener) {
            Path old = run.resolve(RunDir.CONFIG);
            if (Files.exists(old) && run.latestCheckpoint().isPresent()) {
                try {
                    RunConfig prev = RunConfig.defaults().withFile(old);
                    List<String> changed = new ArrayList<>();
                    for (String k : ConfigSchema.keys().keySet()) {
                        if (!prev.node(k).equals(cfg.node(k))) {
                            changed.add(k);
                        }
                    }
                    if (!changed.isEmpty()) {
                        listener.log("warning: resuming with a changed configuration (" + String.join(", ", changed)
                                + "); the resumed stages follow the new values");
                    }
                } catch (RuntimeException ignored) {
                    // an unreadable old config does not block the run
                }
            }
        }
    }

    /** Shorthand options of the training commands. */
    static final class ModelDataOptions {
        @Option(names = {"-m", "--model"}, paramLabel = "DIR",
                description = "Hugging Face model directory to start from (same as --set model.path=DIR).")
        Path model;

        @Option(names = {"-d", "--data"}, paramLabel = "FILE",
                description = "Training data, JSONL (same as --set data.train=FILE); 'demo' for the bundled set.")
        String data;

        List<String> shorthand() {
            List<String> s = new ArrayList<>();
            if (model != null) {
                s.add("model.path=" + model);
            }
            if (data != null) {
                s.add("data.train=" + data);
            }
            return s;
        }
    }

    /**
     * The initial model directory of a training command and its tokenizer, checked before the run directory exists:
     * a complete model directory whose config.json matches its weights' headers, and a tokenizer whose ids all have
     * a row in the model's embedding.
     */
    static final class Start implements AutoCloseable {
        final Path dir;
        final Tokenizer tokenizer;

        Start(RunConfig cfg) {
            String p = cfg.getString("model.path");
            dir = p.isBlank() ? null : Path.of(p);
            StageRunner.checkModelDir(dir, "model directory (model.path)");
            tokenizer = StageRunner.loadTokenizer(dir, "model directory");
            try {
                StageRunner.preflightModel(dir, "model directory (model.path)", tokenizer);
            } catch (RuntimeException e) {
                tokenizer.close();
                throw e;
            }
        }

        @Override
        public void close() {
            tokenizer.close();
        }
    }

    /** A command that trains a model directory on a dataset: sft, rl, pipeline. */
    abstract static class TrainCommand extends RunCommand {
        @Mixin
        ModelDataOptions md;

        @Option(names = "--skip-eval", description = "Do not evaluate the models before and after training.")
        boolean skipEval;

        /** The start model and tokenizer, from {@link #preflight}. */
        Start start;

        @Override
        RunConfig config() {
            return common.resolve(RunConfig.defaults(), md.shorthand());
        }

        /** The trainer sections this command runs, built once so that their combined checks run now. */
        abstract void checkSections(RunConfig cfg);

        @Override
        void preflight(RunConfig cfg) {
            checkSections(cfg);
            TrainerConfigs.sampling(cfg, "eval.sampling");
            StageRunner.checkDataFiles(cfg);
            start = new Start(cfg);
        }

        @Override
        void releasePreflight() {
            if (start != null) {
                start.close();
                start = null;
            }
        }
    }

    @Command(name = "sft", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Supervised fine-tuning of a model on (prompt, response) pairs: prompt-masked"
                    + " cross-entropy, AdamW with warmup and cosine decay.",
                    "Writes checkpoints, metrics.jsonl, plots, report.md and summary.json into the run directory,"
                            + " and evaluates the start and the final model on the held-out split.",
                    "Example: rlsr sft -m models/Qwen3-0.6B -d data/train.jsonl --set sft.epochs=2 -o runs/sft"})
    static final class Sft extends TrainCommand {
        @Override
        String title(RunConfig cfg) {
            return "SFT of " + cfg.getString("model.path");
        }

        @Override
        void checkSections(RunConfig cfg) {
            TrainerConfigs.sft(cfg);
        }

        @Override
        void body(RunConfig cfg, RunDir run, RunListener listener, Backend backend, RunReport report) {
            Start s = start;
            try (StageRunner runner = new StageRunner(cfg, run, listener, backend, s.tokenizer, s.dir, report)) {
                StageRunner.Data data = runner.loadData();
                List<Example> eval = limit(data.eval(), cfg);
                if (!skipEval && !eval.isEmpty()) {
                    try (DecoderModel m0 = StageRunner.loadModel(s.dir, backend, "model")) {
                        runner.evaluate("start", m0, eval);
                    }
                }
                try (DecoderModel m = runner.sft("sft", () -> StageRunner.loadModel(s.dir, backend, "model"),
                        data.train(), data.eval())) {
                    if (!skipEval && !eval.isEmpty()) {
                        runner.evaluate("sft", m, eval);
                        deltas(cfg, report, "sft", "start");
                    }
                }
                listener.log("final model: " + run.stageModel("sft"));
            }
        }
    }

    @Command(name = "rl", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Reinforcement learning with GRPO and a reference-based reward (rl.reward): cosine"
                    + " (RLSR: cosine similarity of SentenceBERT embeddings), bleu, rougeL, exact, length or a"
                    + " weighted sum such as 0.7*cosine+0.3*rougeL.",
                    "Example: rlsr rl -m runs/sft/models/sft -d data/train.jsonl --set rl.steps=200"
                            + " --set rl.group_size=8 -o runs/rlsr"})
    static final class Rl extends TrainCommand {
        @Override
        String title(RunConfig cfg) {
            return "GRPO (" + cfg.getReward("rl.reward") + ") of " + cfg.getString("model.path");
        }

        @Override
        void checkSections(RunConfig cfg) {
            TrainerConfigs.rl(cfg);
        }

        @Override
        void body(RunConfig cfg, RunDir run, RunListener listener, Backend backend, RunReport report) {
            String stage = StageRunner.rlStageName(cfg.getReward("rl.reward"));
            Start s = start;
            try (StageRunner runner = new StageRunner(cfg, run, listener, backend, s.tokenizer, s.dir, report)) {
                StageRunner.Data data = runner.loadData();
                List<Example> eval = limit(data.eval(), cfg);
                if (!skipEval && !eval.isEmpty()) {
                    try (DecoderModel m0 = StageRunner.loadModel(s.dir, backend, "model")) {
                        runner.evaluate("start", m0, eval);
                    }
                }
                try (DecoderModel m = runner.rl(stage, () -> StageRunner.loadModel(s.dir, backend, "model"), s.dir,
                        data.train())) {
                    if (!skipEval && !eval.isEmpty()) {
                        runner.evaluate(stage, m, eval);
                        deltas(cfg, report, stage, "start");
                    }
                }
                listener.log("final model: " + run.stageModel(stage));
            }
        }
    }

    @Command(name = "pipeline", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"SFT, then RL from the SFT model, in one command (the paper's SFT+RLSR with the default"
                    + " cosine reward). Evaluates the start, SFT and SFT+RL models on the held-out split with"
                    + " paired bootstrap intervals of their differences.",
                    "Example: rlsr pipeline -c configs/qwen3-0.6b.yaml -o runs/pipeline"})
    static final class Pipeline extends TrainCommand {
        @Override
        String title(RunConfig cfg) {
            return "SFT + " + StageRunner.rlStageName(cfg.getReward("rl.reward")).toUpperCase(Locale.ROOT) + " of "
                    + cfg.getString("model.path");
        }

        @Override
        void checkSections(RunConfig cfg) {
            TrainerConfigs.sft(cfg);
            TrainerConfigs.rl(cfg);
        }

        @Override
        void body(RunConfig cfg, RunDir run, RunListener listener, Backend backend, RunReport report) {
            String rlStage = "sft+" + StageRunner.rlStageName(cfg.getReward("rl.reward"));
            Start s = start;
            try (StageRunner runner = new StageRunner(cfg, run, listener, backend, s.tokenizer, s.dir, report)) {
                StageRunner.Data data = runner.loadData();
                List<Example> eval = limit(data.eval(), cfg);
                boolean doEval = !skipEval && !eval.isEmpty();
                if (doEval) {
                    try (DecoderModel m0 = StageRunner.loadModel(s.dir, backend, "model")) {
                        runner.evaluate("start", m0, eval);
                    }
                }
                try (DecoderModel m = runner.sft("sft", () -> StageRunner.loadModel(s.dir, backend, "model"),
                        data.train(), data.eval())) {
                    if (doEval) {
                        runner.evaluate("sft", m, eval);
                    }
                }
                Path sftDir = run.stageModel("sft");
                try (DecoderModel m = runner.rl(rlStage, () -> StageRunner.loadModel(sftDir, backend, "model"),
                        sftDir, data.train())) {
                    if (doEval) {
                        runner.evaluate(rlStage, m, eval);
                        deltas(cfg, report, rlStage, "sft");
                        deltas(cfg, report, "sft", "start");
                    }
                }
                listener.log("final model: " + run.stageModel(rlStage));
            }
        }
    }

    @Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Evaluates one or more models on the held-out split: mean reward with a 95%% bootstrap"
                    + " interval, ROUGE-L, BLEU, eval loss and response length; with several models also the"
                    + " paired differences to the first one.",
                    "Decoding follows eval.sampling (default temperature 0 = greedy, deterministic).",
                    "Example: rlsr eval -m runs/p/models/sft -m runs/p/models/sft+rlsr -d data/eval.jsonl"})
    static final class Eval extends RunCommand {
        @Option(names = {"-m", "--model"}, paramLabel = "DIR", required = true,
                description = "Model directory to evaluate (repeat to compare; the first is the baseline).")
        List<Path> models;

        @Option(names = {"-d", "--data"}, paramLabel = "FILE",
                description = "Held-out JSONL file (same as --set data.eval=FILE); 'demo' for the bundled"
                        + " held-out set.")
        String data;

        @Override
        RunConfig config() {
            List<String> s = new ArrayList<>();
            if (data != null) {
                s.add("data.eval=" + data);
            }
            RunConfig c = common.resolve(RunConfig.defaults(), s);
            return common.runDir == null && c.getString("run.dir").equals("runs/run") ? c.with("run.dir",
                    "runs/eval", "rlsr eval") : c;
        }

        @Override
        String title(RunConfig cfg) {
            return "Evaluation";
        }

        /** Each model's own tokenizer (vocabulary and chat template), in the order of -m; from {@link #preflight}. */
        final List<Tokenizer> tokenizers = new ArrayList<>();

        @Override
        void preflight(RunConfig cfg) {
            TrainerConfigs.sampling(cfg, "eval.sampling");
            StageRunner.checkDataFiles(cfg);
            for (Path m : models) {
                StageRunner.checkModelDir(m, "model directory");
                Tokenizer t = StageRunner.loadTokenizer(m, "model directory");
                tokenizers.add(t);
                StageRunner.preflightModel(m, "model directory", t);
            }
        }

        @Override
        void releasePreflight() {
            tokenizers.forEach(Tokenizer::close);
            tokenizers.clear();
        }

        @Override
        void body(RunConfig cfg, RunDir run, RunListener listener, Backend backend, RunReport report) {
            try (StageRunner runner = new StageRunner(cfg, run, listener, backend, tokenizers.getFirst(),
                    models.getFirst(), report)) {
                // the same examples for every model (the differences are paired by prompt): those that fit the
                // length limits under every model's tokenizer and chat template
                List<Example> eval = limit(runner.loadEval(tokenizers), cfg);
                if (eval.isEmpty()) {
                    throw new RunFailure(RunFailure.DATA, "no held-out examples to evaluate: set data.eval (or -d"
                            + " FILE), or a data.eval_fraction > 0 of data.train.");
                }
                List<String> names = new ArrayList<>();
                for (int i = 0; i < models.size(); i++) {
                    Path m = models.get(i);
                    String name = uniqueName(m, names);
                    names.add(name);
                    try (DecoderModel model = StageRunner.loadModel(m, backend, "model")) {
                        runner.evaluate(name, model, tokenizers.get(i), eval);
                    }
                }
                for (int i = 1; i < names.size(); i++) {
                    deltas(cfg, report, names.get(i), names.getFirst());
                }
            }
        }

        private static String uniqueName(Path m, List<String> taken) {
            Path f = m.toAbsolutePath().normalize().getFileName();
            String base = f == null ? "model" : f.toString();
            String n = base;
            for (int i = 2; taken.contains(n); i++) {
                n = base + "-" + i;
            }
            return n;
        }
    }

    @Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"A miniature of the paper's experiment on the CPU, with nothing downloaded: pre-trains a"
                    + " small byte-level model from scratch on the bundled demo set (the base model), then runs SFT,"
                    + " RLSR and SFT+RLSR from it with the bundled SentenceBERT cosine reward, evaluates the four on"
                    + " the held-out split (greedy decoding) and reports paired bootstrap intervals of"
                    + " sft+rlsr - sft, rlsr - base and rlsr - sft. About 5 minutes on 2 cores.",
                    "Settings: the bundled demo.yaml under --config/--set, e.g. --set rl.steps=10 for a quicker run."
                            + " On a real GPU (--device cuda, or auto finding one) demo-gpu.yaml goes between them: a"
                            + " model of about 25M parameters and longer RL (demo.preset: auto, cpu or gpu).",
                    "Example: rlsr demo            (writes runs/demo; rerun to resume an interrupted demo)"})
    static final class Demo extends RunCommand {
        @Override
        RunConfig config() {
            return common.resolve(DemoPipeline.defaults(), List.of());
        }

        @Override
        String title(RunConfig cfg) {
            return "RLSR demo";
        }

        /** Everything the demo's config must satisfy, checked before the device or a run directory is opened. */
        private static void check(RunConfig cfg) {
            TrainerConfigs.sft(cfg);
            TrainerConfigs.rl(cfg);
            TrainerConfigs.sampling(cfg, "eval.sampling");
            StageRunner.demoModelConfig(cfg, dev.rlsr.engine.tokenizer.ByteLevelTokenizer.VOCAB_SIZE);
            StageRunner.preflightRewardDevice(cfg);
        }

        @Override
        public Integer call() {
            long t0 = System.nanoTime();
            RunConfig cfg = config();
            check(cfg);
            List<String> deviceLog = new ArrayList<>();
            try (Backend backend = StageRunner.selectBackend(cfg.getString("run.device"),
                    cfg.getString("run.precision"), deviceLog::add)) {
                // the preset depends on the device: the GPU one goes under the user's file and overrides
                boolean gpu = DemoPipeline.gpuPreset(cfg.getString("demo.preset"), backend);
                if (gpu) {
                    cfg = common.resolve(DemoPipeline.defaults(true), List.of());
                    check(cfg);
                }
                deviceLog.add("demo preset: " + (gpu ? "gpu (demo-gpu.yaml over demo.yaml)" : "cpu (demo.yaml)")
                        + (cfg.getString("demo.preset").equals("auto") ? ", chosen by the device (demo.preset: auto)"
                        : ", from demo.preset"));
                return run(cfg, backend, deviceLog, t0);
            }
        }

        private int run(RunConfig cfg, Backend backend, List<String> deviceLog, long t0) {
            try (RunDir run = RunDir.open(Path.of(cfg.getString("run.dir")));
                 RunListener listener = new RunListener(new MetricsLog(run.resolve(RunDir.METRICS)), System.err,
                         common.quiet, Commands.isTerminal(), run.resolve(RunDir.LOG))) {
                deviceLog.forEach(listener::log);
                listener.log("run directory: " + run.root());
                RunReport report = DemoPipeline.run(cfg, run, listener, backend);
                listener.log(PeakMemory.describe());
                System.out.println();
                System.out.print(report.consoleTable());
                System.out.println(DemoPipeline.verdicts(report));
                System.out.printf(Locale.ROOT, "demo finished in %.1f s; report: %s%n", (System.nanoTime() - t0) / 1e9,
                        run.resolve(RunDir.REPORT));
            }
            return 0;
        }

        @Override
        void body(RunConfig cfg, RunDir run, RunListener listener, Backend backend, RunReport report) {
            throw new UnsupportedOperationException();
        }
    }

    @Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Generates a response for each prompt with the model's chat template (prompts from"
                    + " the arguments, or one per line from --file or standard input).",
                    "Decoding follows eval.sampling (default greedy); --temperature etc. override it.",
                    "Example: rlsr generate -m runs/demo/models/sft+rlsr \"How much is four times seven?\""})
    static final class Generate implements Callable<Integer> {
        @Mixin
        CommonOptions common;

        @Option(names = {"-m", "--model"}, paramLabel = "DIR", required = true, description = "Model directory.")
        Path model;

        @Option(names = {"-f", "--file"}, paramLabel = "FILE",
                description = "Read prompts from a file, one per line ('-' = standard input).")
        String file;

        @Option(names = {"-t", "--temperature"}, description = "Sampling temperature (0 = greedy).")
        Double temperature;

        @Option(names = "--max-new-tokens", description = "Longest response in tokens.")
        Integer maxNewTokens;

        @Option(names = "--seed", description = "Sampling seed.")
        Long seed;

        @Option(names = "--system", description = "A system prompt.")
        String system;

        @Parameters(paramLabel = "PROMPT", arity = "0..*", description = "Prompts.")
        List<String> prompts = new ArrayList<>();

        @Override
        public Integer call() {
            List<String> s = new ArrayList<>();
            if (temperature != null) {
                s.add("eval.sampling.temperature=" + temperature);
            }
            if (maxNewTokens != null) {
                s.add("eval.sampling.max_new_tokens=" + maxNewTokens);
            }
            if (seed != null) {
                s.add("eval.sampling.seed=" + seed);
            }
            RunConfig cfg = common.resolve(RunConfig.defaults(), s);
            List<String> all = new ArrayList<>(prompts);
            if (file != null) {
                all.addAll(readPrompts(file));
            } else if (all.isEmpty()) {
                all.addAll(readPrompts("-"));
            }
            if (all.isEmpty()) {
                throw new RunFailure(RunFailure.USAGE, "no prompts: pass them as arguments, with --file FILE, or on"
                        + " standard input (one per line).");
            }
            RunListener quietLog = new RunListener(null, System.err, true, false, null);
            SamplingConfig sampling = TrainerConfigs.sampling(cfg, "eval.sampling");
            StageRunner.checkModelDir(model, "model");
            Backend backend = StageRunner.selectBackend(cfg.getString("run.device"), cfg.getString("run.precision"),
                    common.quiet ? new dev.rlsr.trainer.train.TrainListener() {} : quietLog);
            try (backend; Tokenizer tok = StageRunner.loadTokenizer(model, "model")) {
                StageRunner.preflightModel(model, "model", tok);
                try (DecoderModel m = StageRunner.loadModel(model, backend, "model")) {
                    generate(m, tok, all, cfg, sampling);
                }
            }
            return 0;
        }

        private void generate(DecoderModel m, Tokenizer tok, List<String> all, RunConfig cfg,
                              SamplingConfig sampling) {
            try (RolloutEngine engine = RolloutEngine.of(m, tok)) {
                int batch = cfg.getInt("eval.batch_size");
                for (int start = 0; start < all.size(); start += batch) {
                    List<String> chunk = all.subList(start, Math.min(all.size(), start + batch));
                    List<int[]> ids = new ArrayList<>();
                    for (String p : chunk) {
                        List<Message> msgs = new ArrayList<>();
                        if (system != null) {
                            msgs.add(Message.system(system));
                        }
                        msgs.add(Message.user(p));
                        ids.add(tok.encodeChat(msgs, true));
                    }
                    Rollouts r = engine.generate(ids, 1, sampling.isGreedy() ? sampling
                            : sampling.withSeed(sampling.seed() * 1_000_003L + start));
                    for (int i = 0; i < chunk.size(); i++) {
                        if (all.size() > 1) {
                            System.out.println("### " + chunk.get(i));
                        }
                        System.out.println(r.texts().get(i));
                        if (all.size() > 1) {
                            System.out.println();
                        }
                    }
                }
            }
        }

        private static List<String> readPrompts(String file) {
            try (BufferedReader r = file.equals("-")
                    ? new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))
                    : Files.newBufferedReader(Path.of(file), StandardCharsets.UTF_8)) {
                return r.lines().filter(l -> !l.isBlank()).toList();
            } catch (IOException e) {
                throw new RunFailure(RunFailure.DATA, "cannot read prompts from " + file + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
            } catch (UncheckedIOException e) {
                throw new RunFailure(RunFailure.DATA, "cannot read prompts from " + file + ": "
                        + e.getCause().getMessage(), e);
            }
        }
    }

    @Command(name = "config", mixinStandardHelpOptions = true,
            description = {"Prints every config key with its default and meaning (--yaml: the defaults as a"
                    + " config file; --demo: the demo's defaults)."})
    static final class Config implements Callable<Integer> {
        @Option(names = "--yaml", description = "Print the resolved defaults as YAML.")
        boolean yaml;

        @Option(names = "--demo", description = "Use the demo's defaults.")
        boolean demo;

        @Override
        public Integer call() {
            RunConfig c = demo ? DemoPipeline.defaults() : RunConfig.defaults();
            if (yaml) {
                System.out.print(c.toYaml());
                return 0;
            }
            for (Map.Entry<String, ConfigSchema.Key> e : ConfigSchema.keys().entrySet()) {
                ConfigSchema.Key k = e.getValue();
                System.out.printf(Locale.ROOT, "%-32s %-14s %s (%s)%n", k.path(), c.node(k.path()).toString(),
                        k.doc(), k.expected());
            }
            return 0;
        }
    }

    /** True when stderr's console is an interactive terminal (progress bars redraw in place). */
    static boolean isTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    static List<Example> limit(List<Example> eval, RunConfig cfg) {
        int n = cfg.getInt("eval.max_examples");
        return n > 0 && eval.size() > n ? eval.subList(0, n) : eval;
    }

    static void deltas(RunConfig cfg, RunReport report, String a, String b) {
        if (report.evals().containsKey(a) && report.evals().containsKey(b)) {
            report.delta(a, b, cfg.getInt("eval.bootstrap_samples"), cfg.getDouble("eval.confidence"),
                    cfg.getLong("eval.bootstrap_seed"));
        }
    }
}
