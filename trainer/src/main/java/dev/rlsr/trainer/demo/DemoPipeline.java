package dev.rlsr.trainer.demo;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.config.ConfigException;
import dev.rlsr.trainer.config.RunConfig;
import dev.rlsr.trainer.config.TrainerConfigs;
import dev.rlsr.trainer.data.DemoDataset;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.run.RunDir;
import dev.rlsr.trainer.run.RunListener;
import dev.rlsr.trainer.run.RunReport;
import dev.rlsr.trainer.run.StageRunner;
import dev.rlsr.trainer.rl.RlConfig;
import dev.rlsr.trainer.sft.SftConfig;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code rlsr demo}: a miniature of the paper's experiment on the CPU, with nothing downloaded.
 *
 * <ol>
 *   <li>pre-train a small decoder from scratch (byte-level tokenizer, {@code demo.model.*}) as a plain language model
 *       on the demo dataset's text without the chat format ("prompt\nresponse"): the <b>base</b> model;</li>
 *   <li>from the base: <b>sft</b> (prompt-masked cross-entropy on the chat-formatted pairs);</li>
 *   <li>from the base: <b>rlsr</b> (GRPO with the cosine reward of the bundled SentenceBERT all-MiniLM-L6-v2);</li>
 *   <li>from sft: <b>sft+rlsr</b>;</li>
 *   <li>evaluate the four on the held-out split (greedy decoding: deterministic), with percentile-bootstrap
 *       intervals of each mean reward and paired-bootstrap intervals of the differences sft+rlsr - sft,
 *       rlsr - base and rlsr - sft over the same prompts.</li>
 * </ol>
 * Every stage is resumable ({@link StageRunner}). The demo's settings are the bundled {@code demo.yaml} under the
 * user's overrides.
 */
public final class DemoPipeline {
    /** The demo's defaults, laid over the schema defaults before the user's config and overrides. */
    public static final String DEFAULTS_RESOURCE = "dev/rlsr/trainer/demo/demo.yaml";
    public static final List<String> STAGES = List.of("base", "sft", "rlsr", "sft+rlsr");
    public static final List<String[]> DELTAS = List.of(new String[]{"sft+rlsr", "sft"},
            new String[]{"rlsr", "base"}, new String[]{"rlsr", "sft"});

    private DemoPipeline() {
    }

    /** The GPU preset, laid over {@link #DEFAULTS_RESOURCE} when {@code demo.preset} selects it. */
    public static final String GPU_DEFAULTS_RESOURCE = "dev/rlsr/trainer/demo/demo-gpu.yaml";

    /** Schema defaults, then the demo's defaults. */
    public static RunConfig defaults() {
        return defaults(false);
    }

    /**
     * Schema defaults, then the demo's defaults, then (for {@code gpu}) the GPU preset.
     *
     * @param gpu whether to lay {@link #GPU_DEFAULTS_RESOURCE} on top
     * @return the base config the user's file and overrides go on
     */
    public static RunConfig defaults(boolean gpu) {
        RunConfig c = RunConfig.defaults().withResource(DEFAULTS_RESOURCE);
        return gpu ? c.withResource(GPU_DEFAULTS_RESOURCE) : c;
    }

    /**
     * Whether the GPU preset applies: {@code demo.preset} gpu, or auto on a real GPU (never on the CUDA emulator,
     * where the GPU preset would take hours).
     *
     * @param preset  auto, cpu or gpu
     * @param backend the backend the demo runs on
     * @return true for the GPU preset
     */
    public static boolean gpuPreset(String preset, Backend backend) {
        return switch (preset) {
            case "gpu" -> true;
            case "cpu" -> false;
            case "auto" -> backend instanceof CudaBackend && !CudaBackend.isEmulator();
            default -> throw new ConfigException("demo.preset", "unknown preset '" + preset + "'; use auto, cpu or gpu");
        };
    }

    /** Runs the demo into {@code run}; returns the report (also written to the run directory). */
    public static RunReport run(RunConfig cfg, RunDir run, RunListener listener, Backend backend) {
        long t0 = System.nanoTime();
        RunDir.writeAtomically(run.resolve(RunDir.CONFIG), cfg.toYaml());
        Path tokDir = run.resolve("tokenizer");
        if (!Files.isRegularFile(tokDir.resolve("tokenizer.json"))) {
            ByteLevelTokenizer.writeByteLevel(tokDir);
        }
        RunReport report = new RunReport("RLSR demo: base, SFT, RLSR and SFT+RLSR on the bundled demo set");
        try (Tokenizer tok = StageRunner.loadTokenizer(tokDir, "demo tokenizer");
             StageRunner runner = new StageRunner(cfg, run, listener, backend, tok, tokDir, report)) {
            List<Example> train = DemoDataset.load(DemoDataset.TRAIN_RESOURCE);
            List<Example> eval = DemoDataset.load(DemoDataset.EVAL_RESOURCE);
            train = first(train, cfg.getInt("demo.train_examples"));
            eval = first(eval, cfg.getInt("demo.eval_examples"));
            ModelConfig mc = StageRunner.demoModelConfig(cfg, ByteLevelTokenizer.VOCAB_SIZE);
            listener.log(String.format(Locale.ROOT, "demo: %d train / %d held-out examples; model %s, %d layers,"
                            + " hidden %d, %.2fM parameters, byte-level vocabulary", train.size(), eval.size(),
                    mc.modelType(), mc.numLayers(), mc.hiddenSize(), mc.numParameters() / 1e6));
            report.info("data", "bundled demo set: " + train.size() + " train, " + eval.size() + " held-out examples");
            report.info("model", String.format(Locale.ROOT, "%s from scratch: %d layers, hidden %d, heads %d/%d, MLP"
                            + " %d, byte-level vocabulary (%d), %.2fM parameters", mc.modelType(), mc.numLayers(),
                    mc.hiddenSize(), mc.numHeads(), mc.numKvHeads(), mc.intermediateSize(), mc.vocabSize(),
                    mc.numParameters() / 1e6));
            report.info("reward", "cosine similarity of SentenceBERT all-MiniLM-L6-v2 embeddings, "
                    + (cfg.getBool("reward.responses_only") ? "cos(E(y), E(y*)) (reward.responses_only: true; the"
                    + " paper's cos(E(x+y), E(x+y*)) is --set reward.responses_only=false, see the notes)"
                    : "cos(E(x+y), E(x+y*)), the paper's reward"));
            report.info("evaluation", describeEval(cfg) + "; 95% percentile-bootstrap intervals over held-out prompts ("
                    + cfg.getInt("eval.bootstrap_samples") + " resamples, seed " + cfg.getLong("eval.bootstrap_seed")
                    + "), differences paired by prompt");
            report.info("device", backend.name() + ", " + Runtime.getRuntime().availableProcessors() + " cores");

            // (a) base: plain language model on "prompt\nresponse", no chat format
            List<String> texts = train.stream().map(e -> e.lastUserContent() + "\n" + e.response()).toList();
            SftConfig pre = new SftConfig(cfg.getInt("demo.pretrain.epochs"), cfg.getInt("demo.pretrain.batch_size"),
                    1, cfg.getDouble("demo.pretrain.lr"), cfg.getInt("demo.pretrain.warmup_steps"), 0.1, 0.0, 1.0,
                    true, cfg.getInt("demo.pretrain.seq_len"), 0, cfg.getInt("demo.pretrain.checkpoint_every"),
                    cfg.getLong("run.seed"), false);
            long seed = cfg.getLong("run.seed");
            try (DecoderModel base = runner.pretrain("pretrain", () -> DecoderModel.init(mc, seed, backend), texts,
                    pre)) {
                runner.evaluate("base", base, eval);
            }
            Path baseDir = run.stageModel("pretrain");
            // (b) SFT from the base
            try (DecoderModel sft = runner.sft("sft", () -> load(baseDir, backend), train, eval)) {
                runner.evaluate("sft", sft, eval);
            }
            // (c) RLSR from the base
            try (DecoderModel rlsr = runner.rl("rlsr", () -> load(baseDir, backend), baseDir, train)) {
                runner.evaluate("rlsr", rlsr, eval);
            }
            // (d) SFT, then RLSR
            Path sftDir = run.stageModel("sft");
            double sftRlLr = cfg.getDouble("demo.sft_rlsr_lr");
            RlConfig sftRl = sftRlLr > 0 ? TrainerConfigs.rl(cfg).withLr(sftRlLr) : TrainerConfigs.rl(cfg);
            try (DecoderModel both = runner.rl("sft+rlsr", () -> load(sftDir, backend), sftDir, train, sftRl)) {
                runner.evaluate("sft+rlsr", both, eval);
            }
            int resamples = cfg.getInt("eval.bootstrap_samples");
            double conf = cfg.getDouble("eval.confidence");
            long bseed = cfg.getLong("eval.bootstrap_seed");
            for (String[] d : DELTAS) {
                report.delta(d[0], d[1], resamples, conf, bseed);
            }
            report.totalSeconds((System.nanoTime() - t0) / 1e9);
            report.note(verdicts(report));
            shortAnswerNotes(report, cfg);
            report.note(cfg.getBool("reward.responses_only")
                    ? "Reward: the demo embeds responses without the prompt, cos(E(y), E(y*)). With the paper's"
                    + " cos(E(x+y), E(x+y*)) the prompt dominates both embeddings, so a 0.6M-parameter model"
                    + " raises the reward most cheaply with a short generic answer (RLSR from the base answered"
                    + " nearly every prompt with one sentence and the judge found no correct answer); run"
                    + " `rlsr demo --set reward.responses_only=false` to see it (README: the gaming case)."
                    : "Reward: the paper's cos(E(x+y), E(x+y*)). For a model this small it can be gamed: the prompt"
                    + " dominates both embeddings and a short generic answer scores high; compare the judge's"
                    + " accuracy with the reward, and the demo's default reward.responses_only: true.");
            report.note("Resume: rerun the same command with the same run.dir; finished stages are loaded from"
                    + " models/, an interrupted stage continues from its latest checkpoint.");
            report.write(run, cfg.getInt("eval.samples_in_report"));
            return report;
        }
    }

    /**
     * The demo's bars in one line: for 'sft+rlsr - sft' and 'rlsr - base', whether the judge's and the reward's 95%
     * intervals lie above zero, below it, or hold it.
     */
    public static String verdicts(RunReport report) {
        StringBuilder b = new StringBuilder("Bars (95% intervals of the paired differences):");
        for (String d : List.of("sft+rlsr - sft", "rlsr - base")) {
            var j = report.judgeDeltas().get(d);
            var r = report.deltas().get(d);
            b.append(String.format(Locale.ROOT, " %s: judge %s, reward %s;", d, j == null ? "n/a" : j.verdict(),
                    r == null ? "n/a" : r.verdict()));
        }
        b.setLength(b.length() - 1);
        return b.append('.').toString();
    }

    /**
     * Says so in the report when an RL stage's answers became much shorter than its starting model's: with the
     * prompt inside both embeddings, a very short answer scores about as much as the prompt alone, which can beat a
     * wrong sentence; ROUGE-L and the response length in the table show whether that happened.
     */
    static void shortAnswerNotes(RunReport report, RunConfig cfg) {
        var ev = report.evals();
        for (String[] pair : new String[][]{{"rlsr", "base"}, {"sft+rlsr", "sft"}}) {
            var rl = ev.get(pair[0]);
            var start = ev.get(pair[1]);
            if (rl == null || start == null) {
                continue;
            }
            if (rl.distinctFraction() < 0.5 * start.distinctFraction()) {
                report.note(String.format(Locale.ROOT, "%s gives the same few answers to many prompts (%.0f%% distinct"
                                + " responses vs %.0f%% for %s): a generic sentence that embeds close to many"
                                + " references is a cheap way to a high cosine reward for a model this small; ROUGE-L"
                                + " (%.3f vs %.3f) shows how much of the content it kept.", pair[0],
                        100 * rl.distinctFraction(), 100 * start.distinctFraction(), pair[1], rl.rougeL(),
                        start.rougeL()));
            }
            if (rl.meanResponseTokens() < 0.5 * start.meanResponseTokens()) {
                report.note(String.format(Locale.ROOT, "%s answers are much shorter than %s's (%.1f vs %.1f tokens,"
                                + " ROUGE-L %.3f vs %.3f): %s", pair[0], pair[1], rl.meanResponseTokens(),
                        start.meanResponseTokens(), rl.rougeL(), start.rougeL(), cfg.getBool("reward.responses_only")
                                ? "the policy found short answers that embed close to the references."
                                : "with the prompt inside both embeddings, cos(E(x+y), E(x+y*)), a very short answer"
                                + " scores about as much as the prompt alone, which beats a wrong sentence for a model"
                                + " this small. A KL penalty (rl.beta) or reward.responses_only: true counter it."));
            }
        }
    }

    static String describeEval(RunConfig cfg) {
        double t = cfg.getDouble("eval.sampling.temperature");
        return t == 0 ? "greedy decoding (deterministic), at most " + cfg.getInt("eval.sampling.max_new_tokens")
                + " new tokens" : "sampling at temperature " + t + " with seed " + cfg.getLong("eval.sampling.seed");
    }

    private static DecoderModel load(Path dir, Backend backend) {
        return StageRunner.loadModel(dir, backend, "model");
    }

    private static <T> List<T> first(List<T> list, int n) {
        return n > 0 && n < list.size() ? list.subList(0, n) : list;
    }
}
