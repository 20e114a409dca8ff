package dev.rlsr.trainer.run;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.kernels.cpu.CpuParallel;
import java.util.function.Consumer;
import dev.rlsr.engine.io.CheckpointChecks;
import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.engine.tokenizer.TokenizerException;
import dev.rlsr.trainer.config.ConfigException;
import dev.rlsr.trainer.config.RunConfig;
import dev.rlsr.trainer.config.TrainerConfigs;
import dev.rlsr.trainer.data.DataSplit;
import dev.rlsr.trainer.data.DatasetFormat;
import dev.rlsr.trainer.data.DemoDataset;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.data.JsonlReader;
import dev.rlsr.trainer.data.TokenLengthFilter;
import dev.rlsr.trainer.encoder.BertEncoder;
import dev.rlsr.trainer.encoder.Encoder;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.eval.Evaluator;
import dev.rlsr.trainer.reward.CosineReward;
import dev.rlsr.trainer.reward.Reward;
import dev.rlsr.trainer.reward.RewardSpec;
import dev.rlsr.trainer.rl.GrpoTrainer;
import dev.rlsr.trainer.rl.RlConfig;
import dev.rlsr.trainer.sft.SftConfig;
import dev.rlsr.trainer.sft.SftData;
import dev.rlsr.trainer.sft.SftTrainer;
import dev.rlsr.trainer.train.Batcher;
import dev.rlsr.trainer.train.Checkpointer;
import dev.rlsr.trainer.train.NonFiniteException;
import dev.rlsr.trainer.train.TrainListener;
import dev.rlsr.trainer.train.TrainState;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Runs the stages of a run inside its {@link RunDir}, each resumable: a stage whose final model exists
 * ({@code models/<stage>/}) is skipped and its model loaded; a stage with a checkpoint continues from it with the
 * same step count and data order (model, AdamW state and {@link TrainState} restored, metrics.jsonl cut back to the
 * checkpoint); otherwise the stage starts from the model it is given. Every stage's wall time is recorded in the
 * {@link RunReport}. Out-of-memory errors become a {@link RunFailure} naming the batch setting to lower.
 */
public final class StageRunner implements AutoCloseable {
    private final RunConfig config;
    private final RunDir run;
    private final RunListener listener;
    private final Backend backend;
    private final Tokenizer tokenizer;
    private final Path tokenizerDir;
    private final RunReport report;
    private Encoder encoder;
    private Reward evalReward;
    private CudaBackend ownRewardBackend;   // the reward encoder's device when the policy is not on CUDA

    public StageRunner(RunConfig config, RunDir run, RunListener listener, Backend backend, Tokenizer tokenizer,
                       Path tokenizerDir, RunReport report) {
        this.config = config;
        this.run = run;
        this.listener = listener;
        this.backend = backend;
        this.tokenizer = tokenizer;
        this.tokenizerDir = tokenizerDir;
        this.report = report;
        int profileStep = config.getInt("run.profile_step");
        if (profileStep > 0) {
            if (backend instanceof CudaBackend) {
                listener.profileStep(profileStep, run.root().resolve(StepProfiler.DIR));
            } else {
                listener.log("run.profile_step = " + profileStep + " is ignored: profiling times GPU work, and this"
                        + " run is on the CPU");
            }
        }
    }

    public RunDir run() {
        return run;
    }

    public RunReport report() {
        return report;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public Backend backend() {
        return backend;
    }

    public RunListener listener() {
        return listener;
    }

    // ------------------------------------------------------------------ devices, models, data

    /**
     * The backend for {@code --device} and {@code --precision}, chosen before anything is created: cpu (fp32 only);
     * cuda (exit code 6 naming what is missing when there is no usable GPU or CUDA library); auto = cuda when a real
     * GPU and the libraries are there (never the CUDA emulator, which only {@code --device cuda} selects), else the
     * CPU. Precision auto is bf16 on cuda and fp32 on the CPU. The choice is reported through {@code log}.
     *
     * @param device    cpu, cuda or auto
     * @param precision auto, bf16 or fp32
     * @param log       receives one line saying what was chosen and why
     * @return the backend; the caller closes it when the command ends
     */
    public static Backend selectBackend(String device, String precision, Consumer<String> log) {
        String p = precision == null ? "auto" : precision.toLowerCase(Locale.ROOT);
        if (!p.equals("auto") && !p.equals("bf16") && !p.equals("fp32")) {
            throw new RunFailure(RunFailure.USAGE, "unknown precision '" + precision + "'; use auto, bf16 or fp32");
        }
        String threads = CpuParallel.THREADS + " thread" + (CpuParallel.THREADS == 1 ? "" : "s");
        switch (device.toLowerCase(Locale.ROOT)) {
            case "cpu" -> {
                requireFp32OnCpu(p, "--device cpu");
                log.accept("device: cpu (" + threads + "), fp32");
                return CpuBackend.INSTANCE;
            }
            case "cuda" -> {
                String missing = CudaBackend.unavailableReason();
                if (!missing.isEmpty()) {
                    throw new RunFailure(RunFailure.DEVICE, "--device cuda was requested, but no usable GPU was"
                            + " found: " + missing + ". `rlsr doctor` lists what was found; --device cpu (or auto)"
                            + " runs on the CPU.");
                }
                return openCuda(p, log);
            }
            case "auto" -> {
                String missing = CudaBackend.unavailableReason();
                if (missing.isEmpty() && !CudaBackend.isEmulator()) {
                    return openCuda(p, log);
                }
                String why = missing.isEmpty() ? "the CUDA libraries are the CPU emulator (-Drlsr.cuda.emulator),"
                        + " which only --device cuda uses" : "no usable GPU (" + missing + ")";
                requireFp32OnCpu(p, "--device auto found " + why + " and");
                log.accept("device: cpu (" + threads + "), fp32; " + why);
                return CpuBackend.INSTANCE;
            }
            default -> throw new RunFailure(RunFailure.USAGE, "unknown device '" + device
                    + "'; use cpu, cuda or auto");
        }
    }

    private static void requireFp32OnCpu(String precision, String context) {
        if (precision.equals("bf16")) {
            throw new RunFailure(RunFailure.USAGE, context + " the CPU backend computes in fp32 only; use --precision"
                    + " fp32 (or auto), or --device cuda for bf16.");
        }
    }

    private static Backend openCuda(String precision, Consumer<String> log) {
        Precision prec = precision.equals("fp32") ? Precision.FP32 : Precision.BF16;
        try {
            CudaBackend be = CudaBackend.open(0, prec);
            log.accept("device: cuda " + be.deviceName() + ", " + prec + (CudaBackend.isEmulator()
                    ? " (the CUDA emulator: the GPU code path at CPU speed, for debugging)" : ""));
            return be;
        } catch (RuntimeException e) {
            throw new RunFailure(RunFailure.DEVICE, "cannot open the GPU: " + e.getMessage()
                    + ". `rlsr doctor` lists what was found; --device cpu runs on the CPU.", e);
        }
    }

    /**
     * {@link #selectBackend(String, String, Consumer)} logging through a listener.
     *
     * @param device    cpu, cuda or auto
     * @param precision auto, bf16 or fp32
     * @param log       the listener
     * @return the backend
     */
    public static Backend selectBackend(String device, String precision, TrainListener log) {
        return selectBackend(device, precision, log::log);
    }

    /** Checks that {@code dir} is a usable Hugging Face model directory, with a message naming what is missing. */
    public static void checkModelDir(Path dir, String what) {
        if (dir == null || dir.toString().isBlank()) {
            throw new RunFailure(RunFailure.USAGE, "no " + what + " given: set model.path in the config or pass"
                    + " --model DIR (a Hugging Face model directory with config.json, model.safetensors and"
                    + " tokenizer.json).");
        }
        if (!Files.exists(dir)) {
            throw new RunFailure(RunFailure.MODEL, "the " + what + " " + dir + " does not exist. Pass a Hugging Face"
                    + " model directory (config.json, *.safetensors, tokenizer.json).");
        }
        if (!Files.isDirectory(dir)) {
            throw new RunFailure(RunFailure.MODEL, "the " + what + " " + dir + " is a file, not a directory. Pass the"
                    + " directory that holds config.json, *.safetensors and tokenizer.json.");
        }
        if (!Files.isReadable(dir)) {
            throw new RunFailure(RunFailure.MODEL, "the " + what + " " + dir + " cannot be read (permissions).");
        }
        List<String> missing = new ArrayList<>();
        if (!Files.isRegularFile(dir.resolve("config.json"))) {
            missing.add("config.json");
        }
        if (!Files.isRegularFile(dir.resolve("model.safetensors"))
                && !Files.isRegularFile(dir.resolve("model.safetensors.index.json"))) {
            missing.add("model.safetensors (or model.safetensors.index.json)");
        }
        if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            missing.add("tokenizer.json");
        }
        if (!missing.isEmpty()) {
            throw new RunFailure(RunFailure.MODEL, "the " + what + " " + dir + " is not a complete Hugging Face model"
                    + " directory: " + String.join(", ", missing) + (missing.size() == 1 ? " is" : " are")
                    + " missing.");
        }
    }

    /**
     * Loads a model directory (checked first), turning format errors into a {@link RunFailure} ({@link
     * RunFailure#MODEL}) and a model too large for the memory into one ({@link RunFailure#RESOURCES}) that says so,
     * rather than giving batch-size advice.
     */
    public static DecoderModel loadModel(Path dir, Backend backend, String what) {
        checkModelDir(dir, what);
        try {
            return DecoderModel.load(dir, backend);
        } catch (CheckpointException | IllegalArgumentException e) {
            throw new RunFailure(RunFailure.MODEL, "cannot load the " + what + " " + dir + ": " + e.getMessage(), e);
        } catch (OutOfMemoryError e) {
            String size = "";
            try {
                long n = ModelConfig.load(dir).numParameters();
                size = String.format(Locale.ROOT, " (%,d parameters: %.1f GB of fp32 weights and as much again for"
                        + " their gradients)", n, n * 4.0 / 1e9);
            } catch (RuntimeException | OutOfMemoryError ignored) {
                // the size is only a hint
            }
            throw new RunFailure(RunFailure.RESOURCES, "not enough memory to load the " + what + " " + dir + size
                    + ": give the JVM more heap (RLSR_JAVA_OPTS=-Xmx...), or use a smaller model. Nothing was"
                    + " changed on disk.", e);
        }
    }

    public static Tokenizer loadTokenizer(Path dir, String what) {
        try {
            return Tokenizer.load(dir);
        } catch (TokenizerException e) {
            throw new RunFailure(RunFailure.MODEL, "cannot load the tokenizer of the " + what + " " + dir + ": "
                    + e.getMessage(), e);
        }
    }

    /** Train and held-out examples. */
    public record Data(List<Example> train, List<Example> eval) {}

    /**
     * Reads {@code data.train} (a JSONL file or "demo") and the held-out split ({@code data.eval}, or a
     * deterministic {@code data.eval_fraction} of train), then drops examples longer than the token limits.
     */
    public Data loadData() {
        String trainSpec = config.getString("data.train");
        String evalSpec = config.getString("data.eval");
        if (trainSpec.isBlank()) {
            throw new ConfigException("data.train", "no training data given: set data.train to a JSONL file"
                    + " (or 'demo' for the bundled demo set)");
        }
        JsonlReader.Options opts = new JsonlReader.Options(
                DatasetFormat.valueOf(config.getString("data.format").toUpperCase(Locale.ROOT)),
                JsonlReader.OnBadLine.valueOf(config.getString("data.on_bad_line").toUpperCase(Locale.ROOT)));
        List<Example> train;
        List<Example> eval;
        if (trainSpec.equals("demo")) {
            train = DemoDataset.load(DemoDataset.TRAIN_RESOURCE);
            eval = evalSpec.isBlank() || evalSpec.equals("demo") ? DemoDataset.load(DemoDataset.EVAL_RESOURCE)
                    : read(evalSpec, opts, "data.eval");
        } else {
            List<Example> all = read(trainSpec, opts, "data.train");
            if (evalSpec.isBlank()) {
                DataSplit split = new DataSplit(config.getDouble("data.eval_fraction"), config.getLong("data.split_seed"));
                train = all.stream().filter(split.train()).toList();
                eval = all.stream().filter(split.eval()).toList();
            } else {
                train = all;
                eval = evalSpec.equals("demo") ? DemoDataset.load(DemoDataset.EVAL_RESOURCE)
                        : read(evalSpec, opts, "data.eval");
            }
        }
        TokenLengthFilter filter = new TokenLengthFilter(tokenizer, config.getInt("data.max_prompt_tokens"),
                config.getInt("data.max_response_tokens"), Integer.MAX_VALUE);
        int before = train.size() + eval.size();
        train = train.stream().filter(filter).toList();
        eval = eval.stream().filter(filter).toList();
        if (filter.dropped() > 0) {
            listener.log("dropped " + filter.dropped() + " of " + before + " examples longer than"
                    + " data.max_prompt_tokens / data.max_response_tokens");
        }
        int maxTrain = config.getInt("data.max_train_examples");
        if (maxTrain > 0 && train.size() > maxTrain) {
            train = train.subList(0, maxTrain);
        }
        if (train.isEmpty()) {
            throw new RunFailure(RunFailure.DATA, "no training examples left in " + trainSpec + " (after the split"
                    + " and the token-length filter).");
        }
        listener.log("data: " + train.size() + " train, " + eval.size() + " held-out examples");
        return new Data(train, eval);
    }

    /**
     * The held-out examples only (for {@code rlsr eval}): {@code data.eval}, or else the held-out fraction of
     * {@code data.train}; token-length filtered like {@link #loadData}.
     */
    public List<Example> loadEval() {
        return loadEval(List.of(tokenizer));
    }

    /**
     * As {@link #loadEval()}, keeping only the examples that fit the token limits under every one of
     * {@code tokenizers} (each model's own vocabulary and chat template), so that several models are evaluated on
     * the same examples.
     */
    public List<Example> loadEval(List<Tokenizer> tokenizers) {
        String evalSpec = config.getString("data.eval");
        if (evalSpec.isBlank()) {
            if (config.getString("data.train").isBlank()) {
                throw new ConfigException("data.eval", "no held-out data given: set data.eval to a JSONL file (or"
                        + " 'demo'), or data.train with a data.eval_fraction > 0");
            }
            List<Example> eval = loadData().eval();
            for (Tokenizer t : tokenizers) {
                if (t != tokenizer) {
                    eval = eval.stream().filter(new TokenLengthFilter(t, config.getInt("data.max_prompt_tokens"),
                            config.getInt("data.max_response_tokens"), Integer.MAX_VALUE)).toList();
                }
            }
            return eval;
        }
        JsonlReader.Options opts = new JsonlReader.Options(
                DatasetFormat.valueOf(config.getString("data.format").toUpperCase(Locale.ROOT)),
                JsonlReader.OnBadLine.valueOf(config.getString("data.on_bad_line").toUpperCase(Locale.ROOT)));
        List<Example> eval = evalSpec.equals("demo") ? DemoDataset.load(DemoDataset.EVAL_RESOURCE)
                : read(evalSpec, opts, "data.eval");
        int before = eval.size();
        for (Tokenizer t : tokenizers) {
            eval = eval.stream().filter(new TokenLengthFilter(t, config.getInt("data.max_prompt_tokens"),
                    config.getInt("data.max_response_tokens"), Integer.MAX_VALUE)).toList();
        }
        if (eval.size() < before) {
            listener.log("dropped " + (before - eval.size()) + " held-out examples longer than data.max_prompt_tokens"
                    + " / data.max_response_tokens" + (tokenizers.size() > 1 ? " under some model's tokenizer" : ""));
        }
        return eval;
    }

    /**
     * Reads a JSONL file; with {@code data.on_bad_line: skip} the malformed lines it left out are logged (count,
     * first line numbers and reasons) and recorded in the report (summary.json {@code data.skipped_lines}).
     */
    private List<Example> read(String file, JsonlReader.Options opts, String key) {
        checkDataFile(file, key);
        List<Example> out = new ArrayList<>();
        try (JsonlReader r = JsonlReader.open(Path.of(file), opts)) {
            while (r.hasNext()) {
                out.add(r.next());
            }
            if (r.skipped() > 0) {
                List<Long> lines = r.skippedLines();
                String first = lines.stream().limit(10).map(String::valueOf).collect(Collectors.joining(", "));
                listener.log(String.format(Locale.ROOT, "%s: skipped %d malformed line%s of %s (data.on_bad_line ="
                                + " skip; %d examples read), at line%s %s%s", key, r.skipped(),
                        r.skipped() == 1 ? "" : "s", file, out.size(), lines.size() == 1 ? "" : "s", first,
                        r.skipped() > 10 ? ", ..." : ""));
                r.skipReasons().stream().limit(3).forEach(reason -> listener.log("  " + reason));
                report.skippedLines(file, r.skipped(), lines);
                report.note(key + ": " + r.skipped() + " malformed line" + (r.skipped() == 1 ? " was" : "s were")
                        + " skipped in " + file + " (data.on_bad_line = skip), first at line" + (lines.size() == 1
                        ? " " : "s ") + first + (r.skipped() > 10 ? ", ..." : "") + ".");
            }
        }
        return out;
    }

    private static void checkDataFile(String file, String key) {
        Path p = Path.of(file);
        if (!Files.isRegularFile(p)) {
            throw new RunFailure(RunFailure.DATA, key + ": the data file " + file + (Files.isDirectory(p)
                    ? " is a directory; give a JSONL file." : " does not exist."));
        }
        if (!Files.isReadable(p)) {
            throw new RunFailure(RunFailure.DATA, key + ": the data file " + file + " cannot be read: permission"
                    + " denied.");
        }
    }

    /**
     * Checks, before the run directory exists, that the data files the config names are there ({@code demo} needs
     * none). The training commands need {@code data.train}; eval needs {@code data.eval} or {@code data.train}.
     */
    public static void checkDataFiles(RunConfig config) {
        for (String key : List.of("data.train", "data.eval")) {
            String f = config.getString(key);
            if (!f.isBlank() && !f.equals("demo")) {
                checkDataFile(f, key);
            }
        }
    }

    /**
     * The checks of a model directory that need no weights, run before the run directory is created: the
     * directory is complete, config.json matches the tensor headers (an absurd num_hidden_layers fails here, not
     * after minutes of allocation), and every id of {@code tokenizer} has a row in the model's embedding.
     *
     * @param tokenizer the model's tokenizer, or null to skip that check
     * @return the model's config
     */
    public static ModelConfig preflightModel(Path dir, String what, Tokenizer tokenizer) {
        checkModelDir(dir, what);
        ModelConfig mc;
        try {
            mc = ModelConfig.load(dir);
            try (SafeTensors st = SafeTensors.open(dir)) {
                CheckpointChecks.configMatchesHeaders(mc, st, dir, false);
            }
        } catch (CheckpointException | IllegalArgumentException e) {
            throw new RunFailure(RunFailure.MODEL, "cannot load the " + what + " " + dir + ": " + e.getMessage(), e);
        }
        if (tokenizer != null) {
            checkTokenizerFits(dir, tokenizer, mc);
        }
        return mc;
    }

    /** Every token id of the tokenizer must index a row of the embedding (vocab_size rows). */
    static void checkTokenizerFits(Path dir, Tokenizer tokenizer, ModelConfig mc) {
        if (tokenizer.vocabSize() > mc.vocabSize()) {
            Path tok = tokenizer.directory().resolve("tokenizer.json");
            throw new RunFailure(RunFailure.MODEL, "the tokenizer and the model of " + dir + " do not belong"
                    + " together: " + tok + " has token ids up to " + (tokenizer.vocabSize() - 1) + " (with its"
                    + " added tokens), but " + dir.resolve("config.json") + " sets vocab_size = " + mc.vocabSize()
                    + ", so ids from " + mc.vocabSize() + " on have no embedding row. Use the tokenizer files that"
                    + " came with the model.");
        }
    }

    // ------------------------------------------------------------------ rewards

    /** The shared sentence encoder of the cosine rewards (created on first use). */
    public synchronized Encoder encoder() {
        if (encoder == null) {
            encoder = newEncoder();
        }
        return encoder;
    }

    /** A reward for a spec; a pure cosine reward shares the runner's encoder (closed by the runner). */
    public Reward reward(RewardSpec spec) {
        CosineReward.Options co = TrainerConfigs.cosineOptions(config);
        if (spec.weights().size() == 1 && spec.uses(CosineReward.NAME) && spec.weights().get(CosineReward.NAME) == 1.0) {
            return new CosineReward(encoder(), co);
        }
        return Reward.fromSpec(spec, () -> spec.uses(CosineReward.NAME) ? newEncoder() : null, co);
    }

    /**
     * Where the reward encoder runs, from {@code reward.device}: "cuda" or "cpu"; {@code auto} follows the policy's
     * backend (CUDA when it is a {@link CudaBackend}).
     */
    static String rewardDevice(String setting, Backend policy) {
        return switch (setting.toLowerCase(Locale.ROOT)) {
            case "auto" -> policy instanceof CudaBackend ? "cuda" : "cpu";
            case "cpu", "cuda" -> setting.toLowerCase(Locale.ROOT);
            default -> throw new RunFailure(RunFailure.USAGE, "unknown reward.device '" + setting
                    + "'; use cpu, cuda or auto");
        };
    }

    /**
     * Checks before the run directory is created that {@code reward.device: cuda} has a device when a cosine reward
     * will need the encoder (exit code 6 otherwise). {@code auto} needs no check: it falls back to the CPU.
     */
    public static void preflightRewardDevice(RunConfig cfg) {
        boolean cosine = cfg.getReward("rl.reward").uses(CosineReward.NAME)
                || cfg.getReward("eval.reward").uses(CosineReward.NAME);
        if (cosine && cfg.getString("reward.device").equalsIgnoreCase("cuda")) {
            String why = CudaBackend.unavailableReason();
            if (!why.isEmpty()) {
                throw noRewardDevice(why);
            }
        }
    }

    private static RunFailure noRewardDevice(String why) {
        return new RunFailure(RunFailure.DEVICE, "reward.device is cuda, but there is no usable CUDA device for the"
                + " reward encoder (" + why + "). Use reward.device: cpu (ONNX Runtime) or auto (the GPU when the"
                + " policy runs on one).");
    }

    /** A new encoder for the cosine reward where {@code reward.device} puts it. */
    private Encoder newEncoder() {
        long t0 = System.nanoTime();
        if (rewardDevice(config.getString("reward.device"), backend).equals("cpu")) {
            Encoder e = MiniLmOnnxEncoder.create(TrainerConfigs.encoderConfig(config));
            listener.log(String.format(Locale.ROOT, "reward encoder: %s (ONNX Runtime, CPU), loaded in %.1f s",
                    e.name(), (System.nanoTime() - t0) / 1e9));
            return e;
        }
        Precision precision = Precision.parse(config.getString("reward.precision"));
        CudaBackend be = rewardBackend(precision);
        Encoder e = BertEncoder.bundledMiniLm(TrainerConfigs.bertEncoderConfig(config), be, precision);
        listener.log(String.format(Locale.ROOT, "reward encoder: %s (engine BERT on CUDA, %s, %s%s), loaded in %.1f s",
                e.name(), be.deviceName(), precision, be == backend ? ", the policy's backend" : "",
                (System.nanoTime() - t0) / 1e9));
        return e;
    }

    /** The policy's CUDA backend when it has one (one stream, one allocator), else one opened for the reward. */
    private synchronized CudaBackend rewardBackend(Precision precision) {
        if (backend instanceof CudaBackend policy) {
            return policy;
        }
        if (ownRewardBackend == null) {
            String why = CudaBackend.unavailableReason();
            if (!why.isEmpty()) {
                throw noRewardDevice(why);
            }
            ownRewardBackend = CudaBackend.open(0, precision);
        }
        return ownRewardBackend;
    }

    /** "rlsr" for the cosine reward (the paper's RLSR), "rl" for any other reward. */
    public static String rlStageName(RewardSpec spec) {
        return spec.weights().size() == 1 && spec.uses(CosineReward.NAME) ? "rlsr" : "rl";
    }

    // ------------------------------------------------------------------ stages

    /** Resume information of a stage: the loaded model and, from a checkpoint, the state and optimizer. */
    private record Start(DecoderModel model, TrainState state, AdamW.State optimizer) {}

    private Start start(String stage, Supplier<DecoderModel> init) {
        Optional<RunDir.Checkpoint> ck = run.latestCheckpoint(stage);
        MetricsLog metrics = listener.metrics();
        if (ck.isPresent()) {
            RunDir.Checkpoint c = ck.get();
            listener.log("resuming stage " + stage + " from " + run.root().relativize(c.dir()) + " (step "
                    + c.step() + ")");
            DecoderModel m = loadModel(c.dir(), backend, "checkpoint");
            AdamW.State opt = Files.exists(c.dir().resolve(RunDir.OPTIMIZER))
                    ? RunCheckpointer.readOptimizer(c.dir().resolve(RunDir.OPTIMIZER)) : null;
            if (metrics != null) {
                metrics.truncateAfter(stage, c.step());
            }
            return new Start(m, c.state(), opt);
        }
        if (metrics != null) {
            metrics.dropStage(stage);
        }
        return new Start(init.get(), null, null);
    }

    private Checkpointer checkpointer(String alias) {
        RunCheckpointer ck = new RunCheckpointer(run, tokenizerDir, config.getInt("run.keep_checkpoints"));
        return (stage, state, model, optimizer) -> ck.save(alias, new TrainState(alias, state.step(), state.epoch(),
                state.examplesSeen(), state.seed(), state.extra()), model, optimizer);
    }

    /** A listener that reports the trainer's fixed stage name under {@code alias}. */
    private TrainListener renamed(String from, String alias) {
        return new TrainListener() {
            @Override
            public void phaseStarted(String phase, long totalUnits, String unit) {
                listener.phaseStarted(phase.equals(from) ? alias : phase, totalUnits, unit);
            }

            @Override
            public void progress(long doneUnits, Map<String, Double> liveStats) {
                listener.progress(doneUnits, liveStats);
            }

            @Override
            public void phaseFinished(String phase) {
                listener.phaseFinished(phase.equals(from) ? alias : phase);
            }

            @Override
            public void stepStarting(String stage, long step) {
                listener.stepStarting(stage.equals(from) ? alias : stage, step);
            }

            @Override
            public void step(String stage, long step, Map<String, Object> metrics) {
                listener.step(stage.equals(from) ? alias : stage, step, metrics);
            }

            @Override
            public void log(String message) {
                listener.log(message);
            }
        };
    }

    /** A finished stage's model, or null when the stage has not finished. */
    private DecoderModel done(String stage) {
        if (run.stageDone(stage)) {
            listener.log("stage " + stage + " already finished; loading " + run.root().relativize(run.stageModel(stage)));
            return loadModel(run.stageModel(stage), backend, stage + " model");
        }
        return null;
    }

    /**
     * Plain language-model pre-training of a model from scratch on raw texts (no chat format, every token trained):
     * the supervised loop with {@code sft} settings given by the caller and stage name {@code stage}.
     */
    public DecoderModel pretrain(String stage, Supplier<DecoderModel> init, List<String> texts, SftConfig cfg) {
        DecoderModel d = done(stage);
        if (d != null) {
            return d;
        }
        return timed(stage, "demo.pretrain.batch_size (or demo.pretrain.seq_len)", true, () -> {
            Start s = start(stage, init);
            List<Batcher.Sequence> seqs = SftData.fromTexts(tokenizer, texts, cfg.maxSeqLen());
            try (SftTrainer t = new SftTrainer(cfg, s.model(), padId(), listener, checkpointer(stage), stage)) {
                t.train(seqs, List.of(), s.state(), s.optimizer());
            }
            RunCheckpointer.saveStageModel(run, stage, s.model(), tokenizerDir);
            return s.model();
        });
    }

    /** SFT on chat examples (prompt-masked), with the eval loss on the held-out examples. */
    public DecoderModel sft(String stage, Supplier<DecoderModel> init, List<Example> train, List<Example> eval) {
        DecoderModel d = done(stage);
        if (d != null) {
            return d;
        }
        SftConfig cfg = TrainerConfigs.sft(config);
        return timed(stage, "sft.batch_size (or sft.max_seq_len; keep the effective batch with sft.grad_accum)", true,
                () -> {
            Start s = start(stage, init);
            List<Batcher.Sequence> tr = SftData.fromExamples(tokenizer, train, cfg.promptMasking(), cfg.maxSeqLen());
            List<Batcher.Sequence> ev = SftData.fromExamples(tokenizer, eval, true, cfg.maxSeqLen());
            try (SftTrainer t = new SftTrainer(cfg, s.model(), padId(), listener, checkpointer(stage), stage)) {
                t.train(tr, ev, s.state(), s.optimizer());
            }
            RunCheckpointer.saveStageModel(run, stage, s.model(), tokenizerDir);
            return s.model();
        });
    }

    /**
     * GRPO with the configured reward ({@code rl.reward}); RLSR when it is cosine.
     *
     * @param initDir the stage's initial model on disk: the KL reference (beta > 0) after a resume
     */
    public DecoderModel rl(String stage, Supplier<DecoderModel> init, Path initDir, List<Example> train) {
        return rl(stage, init, initDir, train, TrainerConfigs.rl(config));
    }

    /**
     * As {@link #rl(String, Supplier, Path, List)} with an explicit RL config (a stage whose settings differ from the
     * {@code rl} section's, e.g. the demo's sft+rlsr learning rate).
     *
     * @param stage   the stage name
     * @param init    the initial model, when the stage starts fresh
     * @param initDir the stage's initial model on disk: the KL reference (beta > 0) after a resume
     * @param train   the training examples
     * @param cfg     the stage's RL settings
     * @return the trained (or already finished) model
     */
    public DecoderModel rl(String stage, Supplier<DecoderModel> init, Path initDir, List<Example> train,
                           RlConfig cfg) {
        DecoderModel d = done(stage);
        if (d != null) {
            return d;
        }
        return timed(stage, "rl.micro_batch (or rl.prompts_per_step x rl.group_size, rl.sampling.max_new_tokens)",
                true, () -> {
                    Start s = start(stage, init);
                    DecoderModel reference = null;
                    if (cfg.beta() > 0 && s.state() != null && initDir != null) {
                        reference = loadModel(initDir, backend, "reference model");
                    }
                    TrainState resume = s.state() == null ? null : new TrainState(GrpoTrainer.STAGE, s.state().step(),
                            s.state().epoch(), s.state().examplesSeen(), s.state().seed(), s.state().extra());
                    try (Reward reward = reward(config.getReward("rl.reward"));
                         GrpoTrainer t = new GrpoTrainer(cfg, s.model(), tokenizer, reward::score,
                                 renamed(GrpoTrainer.STAGE, stage), checkpointer(stage))) {
                        t.train(train, resume, s.optimizer(), reference);
                    } finally {
                        if (reference != null) {
                            reference.close();
                        }
                    }
                    RunCheckpointer.saveStageModel(run, stage, s.model(), tokenizerDir);
                    return s.model();
                });
    }

    /** Evaluates a model that uses the run's tokenizer on the held-out examples; see the overload. */
    public Evaluator.Result evaluate(String stage, DecoderModel model, List<Example> eval) {
        return evaluate(stage, model, tokenizer, eval);
    }

    /**
     * Evaluates a model on the held-out examples with its own tokenizer (vocabulary and chat template) and records
     * the result in the report.
     */
    public Evaluator.Result evaluate(String stage, DecoderModel model, Tokenizer modelTokenizer, List<Example> eval) {
        if (evalReward == null) {
            evalReward = reward(config.getReward("eval.reward"));
        }
        Evaluator.Options opt = new Evaluator.Options(TrainerConfigs.sampling(config, "eval.sampling"),
                config.getInt("eval.batch_size"), config.getInt("eval.bootstrap_samples"),
                config.getDouble("eval.confidence"), config.getLong("eval.bootstrap_seed"),
                config.getInt("sft.max_seq_len"));
        Evaluator.Result r = timed("eval " + stage, "eval.batch_size", false,
                () -> Evaluator.evaluate(stage, model, modelTokenizer, eval, evalReward, opt, listener));
        report.eval(r);
        listener.log(String.format(Locale.ROOT, "eval %s: reward %.4f [%.4f, %.4f], rougeL %.4f, eval loss %.4f",
                stage, r.reward().mean(), r.reward().lo(), r.reward().hi(), r.rougeL(), r.evalLoss()));
        return r;
    }

    private int padId() {
        var sp = tokenizer.specialTokens();
        return sp.hasPad() ? sp.padId() : Math.max(0, sp.eosId());
    }

    /**
     * Runs a phase, records its wall time, and turns running out of memory into advice and a diverged step into a
     * {@link RunFailure} naming the stage, the step and the checkpoint that stays the latest.
     *
     * @param training the phase trains (and checkpoints): the advice then mentions resuming
     */
    private <T> T timed(String phase, String batchKeys, boolean training, Supplier<T> body) {
        long t0 = System.nanoTime();
        try {
            return body.get();
        } catch (OutOfMemoryError e) {
            throw outOfMemory(phase, batchKeys, training, e);
        } catch (NonFiniteException e) {
            String latest = run.latestCheckpoint().map(c -> "the latest checkpoint is still "
                    + run.root().relativize(c.dir()) + " (step " + c.step() + " of stage " + c.stage() + ")")
                    .orElse("no checkpoint was written");
            throw new RunFailure(RunFailure.DIVERGED, "training diverged in stage " + phase + ": " + e.getMessage()
                    + " Nothing non-finite was saved; " + latest + ". Rerunning the same command resumes from it"
                    + " with the same settings, so change them first.", e);
        } catch (RuntimeException e) {
            if (!(e instanceof RunFailure) && looksLikeDeviceOom(e)) {
                throw outOfMemory(phase, batchKeys, training, e);
            }
            throw e;
        } finally {
            report.phase(phase, (System.nanoTime() - t0) / 1e9);
        }
    }

    static boolean looksLikeDeviceOom(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            if (m.contains("CUDA_ERROR_OUT_OF_MEMORY") || m.contains("CUBLAS_STATUS_ALLOC_FAILED")
                    || m.toLowerCase(Locale.ROOT).contains("out of memory")) {
                return true;
            }
        }
        return false;
    }

    static RunFailure outOfMemory(String phase, String batchKeys, boolean training, Throwable e) {
        return new RunFailure(RunFailure.RESOURCES, "out of memory during " + phase + " (" + e.getMessage()
                + "). Lower " + batchKeys + ", e.g. --set " + batchKeys.split(" ")[0] + "=<half the current value>;"
                + " on the CPU you can also give the JVM more heap (RLSR_JAVA_OPTS=-Xmx...)."
                + (training ? " The last complete checkpoint is kept; rerun the same command to resume from it." : ""),
                e);
    }

    // ------------------------------------------------------------------ models from scratch

    /** A fresh decoder for the demo: the byte-level vocabulary, tied embeddings, {@code demo.model.*} sizes. */
    public static ModelConfig demoModelConfig(RunConfig c, int vocab) {
        int hidden = c.getInt("demo.model.hidden_size"), heads = c.getInt("demo.model.heads");
        if (hidden % heads != 0) {
            throw new ConfigException("demo.model.heads", "hidden_size " + hidden + " is not divisible by heads "
                    + heads);
        }
        int kv = c.getInt("demo.model.kv_heads");
        if (heads % kv != 0) {
            throw new ConfigException("demo.model.kv_heads", "heads " + heads + " is not divisible by kv_heads " + kv);
        }
        try {
            return ModelConfig.of(c.getString("demo.model.type"), vocab, hidden, c.getInt("demo.model.intermediate_size"),
                    c.getInt("demo.model.layers"), heads, kv, hidden / heads, true);
        } catch (IllegalArgumentException | CheckpointException e) {
            throw new ConfigException("demo.model", e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            if (evalReward != null) {
                evalReward.close();
            }
            if (encoder != null) {
                encoder.close();
            }
        } finally {
            if (ownRewardBackend != null) {
                ownRewardBackend.close();
            }
        }
    }
}
