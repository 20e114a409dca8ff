package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.generate.RolloutEngine;
import dev.rlsr.engine.generate.Rollouts;
import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.io.SafeTensorsWriter;
import dev.rlsr.engine.model.BertConfig;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.model.GrpoLoss;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tokenizer.Message;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.encoder.BertEncoder;
import dev.rlsr.trainer.reward.CosineReward;
import dev.rlsr.trainer.rl.AdvantageNorm;
import dev.rlsr.trainer.rl.GrpoTrainer;
import dev.rlsr.trainer.rl.RlConfig;
import dev.rlsr.trainer.rl.RlResult;
import dev.rlsr.trainer.rl.RlStepMetrics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Rollouts and one RLSR step on the GPU (issue [G]), through today's public generation and training API, so it
 * measures whatever {@link RolloutEngine} and {@link GrpoTrainer} become. A Qwen2.5-0.5B-shaped policy (random
 * init, bf16 compute) on {@link CudaBackend}:
 * <ul>
 *   <li>(a) 64 sequences (8 prompts x G 8) and (b) 256 sequences (32 x 8): prompts of 128 random tokens, 256 new
 *       tokens at temperature 1 (no top-k/top-p, no stop token, so every row runs the full 256): new tokens/s over
 *       the whole {@link RolloutEngine#generate} call (prefill included, as HF generate's wall clock), the decode
 *       step time (the decode loop's time over the new tokens per row), and the memory roofline of a step: the bytes
 *       a step must read (every compute weight once, the tied LM head included, plus the keys and values cached so
 *       far, on average over the steps) over the device copy bandwidth measured in the same process;</li>
 *   <li>(c) one RLSR step with 64 rollouts: {@link GrpoTrainer#train} for one or two steps (the second is the warm
 *       one reported; the first compiles and allocates), with the cosine reward on a MiniLM-shaped BERT encoder
 *       ({@link BertEncoder} on the same backend, random weights, all-MiniLM-L6-v2's real WordPiece tokenizer, 256
 *       word pieces, mean pooling) and the Qwen3 tokenizer (chat template, decoding): seconds per step split into
 *       rollout / reward / update as the trainer measures them;</li>
 *   <li>(d) peak device memory of each part (the allocator's peak since the part began, and cuMemGetInfo).</li>
 * </ul>
 * After (a) and (b), unless {@code --profile=false}: one more, untimed call of the same geometry, eager (no graph)
 * with 16 new tokens, under a {@link dev.rlsr.bindings.CudaProfiler}: the GPU time of every op, printed and kept in
 * the part's result line.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -cp CLASSPATH \
 *      dev.rlsr.bench.gpu.GenerationGpuBench --tokenizer=DIR --minilm-tokenizer=FILE [--parts=a,c,b] [--budget=S]
 *      [--model=qwen2.5-0.5b|tiny] [--encoder=minilm|tiny] [--prompt-len=128] [--new=256] [--group=8]
 *      [--prompts-a=8] [--prompts-b=32] [--prompts-c=8] [--micro-batch=32] [--profile=true]
 * </pre>
 * Parts run in the order given while the budget (seconds) lasts; a part that would not fit, judged from (a)'s
 * measured time, is recorded as skipped with the reason. Runs on the CUDA emulator with {@code --model=tiny
 * --encoder=tiny} and small sizes (validation of the plumbing; timings mean nothing there).
 */
public final class GenerationGpuBench {
    private static final Set<String> OPTIONS = Set.of("model", "encoder", "parts", "budget", "prompt-len", "new",
            "group", "prompts-a", "prompts-b", "prompts-c", "micro-batch", "tokenizer", "minilm-tokenizer", "seed",
            "copy-mib", "profile");

    /** New tokens of the profiled (eager, untimed) call after each timed rollout part. */
    private static final int PROFILED_NEW_TOKENS = 16;

    private GenerationGpuBench() {
    }

    /**
     * Runs the parts; exits 0 when they ran or were skipped for the budget (or there is no device: SKIP), 1 when one
     * failed, 2 on bad options.
     *
     * @param args the options above
     */
    public static void main(String[] args) {
        int rc;
        try {
            rc = run(args);
        } catch (IllegalArgumentException e) {
            System.err.println("GenerationGpuBench: " + e.getMessage());
            rc = 2;
        }
        System.exit(rc);
    }

    /** The settings of one run. */
    private record Setup(ModelConfig cfg, String modelName, int promptLen, int newTokens, int group, long seed,
                         boolean emulator, String device, double copyGBps, boolean profile) {
    }

    static int run(String[] args) {
        BenchArgs a = new BenchArgs(args, OPTIONS);
        String modelName = a.str("model", "qwen2.5-0.5b");
        ModelConfig cfg = TrainStepGpuBench.model(modelName);
        List<String> parts = List.of(a.str("parts", "a,c,b").split(","));
        for (String p : parts) {
            if (!List.of("a", "b", "c").contains(p)) {
                throw new IllegalArgumentException("--parts lists a, b and c (comma-separated), got '" + p + "'");
            }
        }
        double budget = a.number("budget", 300);
        int promptLen = a.integer("prompt-len", 128);
        int newTokens = a.integer("new", 256);
        int group = a.integer("group", 8);
        long seed = a.integer("seed", 4321);
        if (!CudaDriver.isAvailable()) {
            String why = "no usable CUDA device (" + CudaDriver.unavailableReason() + ")";
            System.out.println("SKIP generation benchmarks: " + why);
            for (String part : parts) {
                int rows = a.integer("prompts-" + part, part.equals("b") ? 32 : 8) * group;
                skip(part.equals("c") ? "rlsr_step_R" + rows : "gen_R" + rows, part, why);
            }
            return 0;
        }
        long t0 = System.nanoTime();
        int failures = 0;
        try (CudaBackend be = CudaBackend.open(0, Precision.BF16)) {
            boolean emulator = CudaDriver.isEmulator();
            long copyBytes = (long) a.integer("copy-mib", emulator ? 16 : 1024) << 20;
            double copy = DeviceFacts.copyBandwidthGBps(copyBytes, emulator ? 3 : 11, be.stream());
            Setup s = new Setup(cfg, modelName, promptLen, newTokens, group, seed, emulator, be.deviceName(), copy,
                    Boolean.parseBoolean(a.str("profile", "true")));
            System.out.printf(Locale.ROOT, "[gen] %s on %s%s; device copy %.0f GB/s (read + written)%n", modelName,
                    s.device(), emulator ? " (CUDA emulator: timings mean nothing)" : "", copy);
            long tInit = System.nanoTime();
            try (DecoderModel policy = DecoderModel.init(cfg, seed, be, Precision.BF16)) {
                be.synchronize();
                System.out.printf(Locale.ROOT, "[gen] policy initialised in %.1f s%n", (System.nanoTime() - tInit)
                        / 1e9);
                double aWallS = Double.NaN;
                int aRows = 0;
                for (String part : parts) {
                    double left = budget - (System.nanoTime() - t0) / 1e9;
                    int prompts = a.integer("prompts-" + part, part.equals("b") ? 32 : 8);
                    int rows = prompts * group;
                    String key = switch (part) {
                        case "a", "b" -> "gen_R" + rows + "_P" + prompts + "_G" + group + "_Tp" + promptLen + "_N"
                                + newTokens;
                        default -> "rlsr_step_R" + rows + "_Tp" + promptLen + "_N" + newTokens;
                    };
                    // a part's time, judged from (a): decoding costs at least its per-row host work, so it grows
                    // with the rows; the RLSR step adds its update and reward
                    double estimate = Double.isNaN(aWallS) ? 0 : aWallS * Math.max(1.0, (double) rows / aRows);
                    if (part.equals("c") && !Double.isNaN(aWallS)) {
                        estimate = estimate + 5;
                    }
                    if (left < 10 || estimate > 0.9 * left) {
                        skip(key, part, String.format(Locale.ROOT, "budget: about %.0f s needed, %.0f s left",
                                estimate, left));
                        continue;
                    }
                    try {
                        // (d) per part: the previous part's activation buffers go back to the driver first, so a
                        // part's peak and cuMemGetInfo count what it holds itself (the weights, and its own buffers)
                        policy.releaseActivations();
                        be.emptyCache();
                        be.resetPeakMemory();
                        if (part.equals("c")) {
                            // two steps (cold, then warm) when both fit, else the cold one alone
                            int steps = Double.isNaN(aWallS) || 2 * estimate < 0.9 * left ? 2 : 1;
                            rlsrStep(be, policy, s, a, prompts, steps, key);
                        } else {
                            double wall = rollouts(be, policy, s, prompts, key, part);
                            if (part.equals("a")) {
                                aWallS = wall;
                                aRows = rows;
                            }
                        }
                    } catch (RuntimeException e) {
                        e.printStackTrace();
                        GpuResults.failure(key, e.toString());
                        failures++;
                    }
                }
            }
        }
        return failures == 0 ? 0 : 1;
    }

    private static void skip(String key, String part, String why) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", key);
        m.put("part", part);
        m.put("skipped", why);
        GpuResults.record(m);
        System.out.println("[gen] " + key + " skipped: " + why);
    }

    /** (a)/(b): P prompts of random ids, G samples each; returns the timed call's wall seconds. */
    static double rollouts(CudaBackend be, DecoderModel policy, Setup s, int prompts, String key, String part) {
        ModelConfig cfg = s.cfg();
        int R = prompts * s.group();
        SplittableRandom rng = new SplittableRandom(s.seed() + R);
        List<int[]> promptIds = new ArrayList<>(prompts);
        for (int p = 0; p < prompts; p++) {
            int[] ids = new int[s.promptLen()];
            for (int t = 0; t < ids.length; t++) {
                ids[t] = rng.nextInt(cfg.vocabSize());
            }
            promptIds.add(ids);
        }
        // no stop ids: every row generates all newTokens, the same work as HF generate with min_new_tokens
        RolloutEngine engine = new RolloutEngine(policy, new int[0], 0, null);
        SamplingConfig sampling = SamplingConfig.of(s.newTokens(), s.seed());
        long tw = System.nanoTime();
        engine.generate(promptIds, s.group(), sampling.withMaxNewTokens(Math.min(8, s.newTokens())));
        be.synchronize();
        double warmS = (System.nanoTime() - tw) / 1e9;
        be.resetPeakMemory();
        long allocs0 = be.driverAllocations();
        long t0 = System.nanoTime();
        Rollouts ro = engine.generate(promptIds, s.group(), sampling);
        be.synchronize();
        double wallS = (System.nanoTime() - t0) / 1e9;
        long newTok = ro.sampledTokens();
        if (newTok != (long) R * s.newTokens()) {
            throw new IllegalStateException(key + ": " + newTok + " tokens sampled, expected " + R + " x "
                    + s.newTokens() + " (no stop ids, so every row should run to the limit)");
        }
        checkIds(ro, cfg.vocabSize(), key);
        double prefillMs = ro.prefillNanos() / 1e6;
        double decodeMs = ro.decodeNanos() / 1e6;
        double stepMs = decodeMs / s.newTokens();
        int actBytes = 2;
        long weightBytes = cfg.numParameters() * actBytes;
        // keys and values read per step, averaged over the decode steps: at step j (1..N-1) a row attends to
        // Tp + j cached positions of L layers x (K, V) x Hkv x D
        double meanKeys = s.promptLen() + s.newTokens() / 2.0;
        double kvBytes = (double) R * cfg.numLayers() * 2 * cfg.numKvHeads() * cfg.headDim() * actBytes * meanKeys;
        double bytesPerStep = weightBytes + kvBytes;
        double rooflineStepMs = bytesPerStep / (s.copyGBps() * 1e9) * 1e3;
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", key);
        m.put("part", part);
        m.put("device", s.device());
        m.put("emulator", s.emulator());
        m.put("model", s.modelName());
        m.put("prompts", prompts);
        m.put("group", s.group());
        m.put("rows", R);
        m.put("prompt_len", ro.promptLen());
        m.put("new_tokens_per_row", s.newTokens());
        m.put("sampling", "temperature 1, top-p 1, top-k off, no stop ids");
        m.put("warmup_s", warmS);
        m.put("wall_s", wallS);
        m.put("new_tokens", newTok);
        m.put("new_tokens_per_s", newTok / wallS);
        m.put("prefill_ms", prefillMs);
        m.put("decode_ms", decodeMs);
        m.put("decode_step_ms", stepMs);
        m.put("weight_bytes", weightBytes);
        m.put("kv_bytes_per_step", kvBytes);
        m.put("copy_GBps", s.copyGBps());
        m.put("roofline_step_ms", rooflineStepMs);
        m.put("roofline_new_tokens_per_s", R / (rooflineStepMs / 1e3));
        m.put("fraction_of_roofline", rooflineStepMs / stepMs);
        m.put("peak_alloc_gib", DeviceFacts.gib(be.peakMemory()));
        m.put("device_used_gib", DeviceFacts.gib(DeviceFacts.deviceUsedBytes()));
        m.put("driver_allocs_in_timed_call", be.driverAllocations() - allocs0);
        m.put("validated", true);
        if (s.profile()) {
            // the decode step eagerly (a graph's replay cannot be split into ops): the same kernels one by one
            int n = Math.min(PROFILED_NEW_TOKENS, s.newTokens());
            engine.recordDecodeSteps(false);
            GpuResults.profile(key + ", one eager call, prefill + " + n + " new tokens",
                    () -> engine.generate(promptIds, s.group(), sampling.withMaxNewTokens(n)), m);
        }
        GpuResults.record(m);
        System.out.printf(Locale.ROOT, "[gen] %s: %.0f new tokens/s (%.2f s: prefill %.1f ms, decode %.1f ms = %.3f ms"
                + " per step); roofline %.3f ms per step (%.0f MB weights + %.0f MB KV at %.0f GB/s) = %.0f tokens/s, "
                + "%.1f%% of it; peak %.2f GiB%n", key, newTok / wallS, wallS, prefillMs, decodeMs, stepMs,
                rooflineStepMs, weightBytes / 1e6, kvBytes / 1e6, s.copyGBps(), R / (rooflineStepMs / 1e3),
                100 * rooflineStepMs / stepMs, DeviceFacts.gib(be.peakMemory()));
        return wallS;
    }

    private static void checkIds(Rollouts ro, int vocab, String key) {
        for (int id : ro.completionIds()) {
            if (id < 0 || id >= vocab) {
                throw new IllegalStateException(key + ": sampled id " + id + " outside [0, " + vocab + ")");
            }
        }
    }

    /** (c): {@link GrpoTrainer#train} on P prompts of about promptLen tokens, G rollouts each, the cosine reward. */
    static void rlsrStep(CudaBackend be, DecoderModel policy, Setup s, BenchArgs a, int prompts, int steps,
                         String key) {
        String tokDir = a.str("tokenizer", "");
        String minilmTok = a.str("minilm-tokenizer", "");
        if (tokDir.isEmpty() || minilmTok.isEmpty()) {
            throw new IllegalArgumentException("part c needs --tokenizer=DIR (a Qwen tokenizer directory, e.g. "
                    + "engine/src/test/resources/tokenizer/qwen3) and --minilm-tokenizer=FILE (all-MiniLM-L6-v2's "
                    + "tokenizer.json; bench/gpu/prepare.sh puts it in .gpu/minilm/)");
        }
        String encoderName = a.str("encoder", "minilm");
        BertConfig bert = switch (encoderName) {
            case "minilm" -> new BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12, "gelu");
            case "tiny" -> new BertConfig(30522, 32, 2, 2, 64, 512, 2, 1e-12, "gelu");
            default -> throw new IllegalArgumentException("--encoder must be minilm or tiny, got '" + encoderName
                    + "'");
        };
        int microBatch = a.integer("micro-batch", 32);
        Path encDir = writeRandomBert(bert, Path.of(minilmTok), s.seed());
        long tSetup = System.nanoTime();
        try (Tokenizer tok = new VocabClampTokenizer(Tokenizer.load(Path.of(tokDir)));
             BertEncoder encoder = BertEncoder.load(encDir, new BertEncoder.Config(64, 256), be)) {
            CosineReward reward = new CosineReward(encoder, CosineReward.Options.defaults());
            List<Example> examples = examples(tok, prompts, s.promptLen(), s.seed());
            int[] promptLens = examples.stream().mapToInt(e -> tok.encodeChat(e.prompt(), true).length).toArray();
            SamplingConfig sampling = new SamplingConfig(1.0, 1.0, 0, s.newTokens(), List.of(), s.seed());
            RlConfig cfg = new RlConfig(prompts, s.group(), steps, 1, 1e-6, 0, 1.0, 0.0, 1.0, 0.2, 0.28, 0.0,
                    GrpoLoss.Level.TOKEN, AdvantageNorm.GROUP, 1e-4, microBatch, sampling, 0, s.seed());
            be.synchronize();
            double setupS = (System.nanoTime() - tSetup) / 1e9;
            be.resetPeakMemory();
            RlResult result;
            try (GrpoTrainer trainer = new GrpoTrainer(cfg, policy, tok, reward::score, null, null)) {
                result = trainer.train(examples, null, null, null);
            }
            be.synchronize();
            List<RlStepMetrics> h = result.history();
            if (h.size() != steps) {
                throw new IllegalStateException(key + ": the trainer reported " + h.size() + " steps, expected "
                        + steps);
            }
            for (RlStepMetrics st : h) {
                if (!Double.isFinite(st.loss()) || !Double.isFinite(st.gradNorm()) || !Double.isFinite(st.rewardMean())) {
                    throw new IllegalStateException(key + ": step " + st.step() + " loss " + st.loss() + ", grad norm "
                            + st.gradNorm() + ", mean reward " + st.rewardMean() + " (not finite)");
                }
            }
            RlStepMetrics rep = h.get(h.size() - 1);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("key", key);
            m.put("part", "c");
            m.put("device", s.device());
            m.put("emulator", s.emulator());
            m.put("model", s.modelName());
            m.put("encoder", encoderName + "-shaped BERT (random weights) on the CUDA backend, real WordPiece "
                    + "tokenizer, 256 word pieces, mean pooling");
            m.put("rows", prompts * s.group());
            m.put("prompt_lens", Arrays.stream(promptLens).boxed().toList());
            m.put("new_tokens_per_row", s.newTokens());
            m.put("micro_batch", microBatch);
            m.put("setup_s", setupS);
            m.put("steps_run", steps);
            m.put("reported_step", steps == 2 ? "second (warm)" : "first (cold: kernel compilation and first "
                    + "allocations included)");
            m.put("step_s", rep.stepSeconds());
            m.put("rollout_s", rep.rolloutSeconds());
            m.put("reward_s", rep.rewardSeconds());
            m.put("update_s", rep.updateSeconds());
            m.put("other_s", rep.stepSeconds() - rep.rolloutSeconds() - rep.rewardSeconds() - rep.updateSeconds());
            m.put("completion_length", rep.completionLength());
            m.put("rollout_tokens_per_s", rep.tokensPerSecond());
            m.put("reward_mean", rep.rewardMean());
            m.put("loss", rep.loss());
            m.put("grad_norm", rep.gradNorm());
            m.put("cold_step_s", h.get(0).stepSeconds());
            m.put("cold_split_s", List.of(h.get(0).rolloutSeconds(), h.get(0).rewardSeconds(),
                    h.get(0).updateSeconds()));
            m.put("peak_alloc_gib", DeviceFacts.gib(be.peakMemory()));
            m.put("device_used_gib", DeviceFacts.gib(DeviceFacts.deviceUsedBytes()));
            m.put("validated", true);
            GpuResults.record(m);
            System.out.printf(Locale.ROOT, "[gen] %s: %.3f s per RLSR step (%s): rollout %.3f, reward %.3f, update "
                    + "%.3f s; mean completion %.0f tokens; mean reward %.4f; peak %.2f GiB (first step %.3f s)%n", key,
                    rep.stepSeconds(), m.get("reported_step"), rep.rolloutSeconds(), rep.rewardSeconds(),
                    rep.updateSeconds(), rep.completionLength(), rep.rewardMean(), DeviceFacts.gib(be.peakMemory()),
                    h.get(0).stepSeconds());
        } finally {
            deleteTree(encDir);
        }
    }

    /**
     * P examples whose chat-rendered prompt is about {@code promptLen} tokens (words are added until the rendered
     * prompt reaches it), each with a reference answer of about 100 words.
     */
    static List<Example> examples(Tokenizer tok, int prompts, int promptLen, long seed) {
        String[] words = ("the of and to in is that for it as was with be by on not he this are or his from at which "
                + "but have an they you were her she there been one all we their has would when if so no what up "
                + "out who them some could time into only then new more these two may first any like now my such "
                + "make over our even most me state after also made many did must before back see through way where "
                + "get much go well your know should down work year because come people just say each those take day "
                + "good how long little use water place find part great").split(" ");
        SplittableRandom rng = new SplittableRandom(seed);
        List<Example> out = new ArrayList<>(prompts);
        for (int p = 0; p < prompts; p++) {
            StringBuilder text = new StringBuilder("Question " + p + ":");
            String prompt = text.toString();
            while (tok.encodeChat(List.of(Message.user(prompt)), true).length < promptLen) {
                text.append(' ').append(words[rng.nextInt(words.length)]);
                prompt = text.toString();
            }
            StringBuilder ref = new StringBuilder();
            for (int w = 0; w < 100; w++) {
                ref.append(w == 0 ? "" : " ").append(words[rng.nextInt(words.length)]);
            }
            out.add(Example.of("bench-" + p, prompt, ref.toString()));
        }
        return out;
    }

    /**
     * A sentence-transformers directory with {@code config} and random weights (linear and embedding weights
     * N(0, 0.02), LayerNorm weights 1, biases 0, as HF's init) and the given WordPiece tokenizer.json.
     */
    static Path writeRandomBert(BertConfig config, Path tokenizerJson, long seed) {
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new IllegalArgumentException("--minilm-tokenizer: no file " + tokenizerJson);
        }
        try {
            Path dir = Files.createTempDirectory("rlsr-bench-encoder");
            Files.writeString(dir.resolve("config.json"), String.format(Locale.ROOT, """
                    {"model_type": "bert", "vocab_size": %d, "hidden_size": %d, "num_hidden_layers": %d,
                     "num_attention_heads": %d, "intermediate_size": %d, "max_position_embeddings": %d,
                     "type_vocab_size": %d, "layer_norm_eps": %s, "hidden_act": "gelu"}
                    """, config.vocabSize(), config.hiddenSize(), config.numLayers(), config.numHeads(),
                    config.intermediateSize(), config.maxPositionEmbeddings(), config.typeVocabSize(),
                    Double.toString(config.layerNormEps())));
            Files.writeString(dir.resolve("sentence_bert_config.json"), "{\"max_seq_length\": 256}\n");
            Files.copy(tokenizerJson, dir.resolve("tokenizer.json"));
            SplittableRandom rng = new SplittableRandom(seed ^ 0xB1E7L);
            SafeTensorsWriter w = new SafeTensorsWriter();
            for (Map.Entry<String, long[]> e : config.parameterShapes().entrySet()) {
                long[] shape = e.getValue();
                float[] data = new float[Math.toIntExact(Arrays.stream(shape).reduce(1, (x, y) -> x * y))];
                String name = e.getKey();
                if (name.endsWith("LayerNorm.weight")) {
                    Arrays.fill(data, 1f);
                } else if (!name.endsWith(".bias")) {
                    for (int i = 0; i < data.length; i++) {
                        data[i] = (float) (0.02 * rng.nextGaussian());
                    }
                }
                w.putF32(name, shape, data);
            }
            w.write(dir.resolve("model.safetensors"));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the benchmark's encoder directory", e);
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            System.err.println("[gen] could not delete " + dir + ": " + e.getMessage());
        }
    }
}
