package dev.rlsr.trainer.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.trainer.reward.RewardSpec;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Every key a run configuration may hold, with its type, default, range and one line of documentation. The keys
 * are dotted paths of snake_case names ({@code rl.sampling.temperature}); a section is every path prefix. Values are
 * checked here (type, range, choices) so that an error names the key; the trainer config records check the
 * combinations again in their compact constructors.
 */
public final class ConfigSchema {
    private ConfigSchema() {
    }

    /** The value types a key may have. */
    public enum Kind {
        INT, LONG, DOUBLE, BOOL, STRING,
        /** A list of strings (a single string is taken as a list of one). */
        STRING_LIST,
        /** A reward: a spec string ({@code "0.7*cosine+0.3*rougeL"}) or a map {@code {cosine: 0.7, rougeL: 0.3}}. */
        REWARD
    }

    /**
     * One key.
     *
     * @param min          lower bound of a number (inclusive unless {@code minExclusive}), or null
     * @param max          inclusive upper bound of a number, or null
     * @param choices      allowed values of a string (lower case, matched case-insensitively), empty for any
     * @param minExclusive the lower bound itself is not allowed (top_p &gt; 0)
     * @param excluded     numbers not allowed although in range, with the reason ("" for none): GRPO's
     *                     {@code top_k = 1} is greedy
     */
    public record Key(String path, Kind kind, JsonNode defaultValue, String doc, Double min, Double max,
                      List<String> choices, boolean minExclusive, Double excluded, String excludedWhy) {
        public String section() {
            int i = path.lastIndexOf('.');
            return i < 0 ? "" : path.substring(0, i);
        }

        public String name() {
            return path.substring(path.lastIndexOf('.') + 1);
        }

        /** Human description of what the key accepts, for error messages. */
        public String expected() {
            String range = "";
            if (min != null && max != null) {
                range = " in " + (minExclusive ? "(" : "[") + fmt(min) + ", " + fmt(max) + "]";
            } else if (min != null) {
                range = (minExclusive ? " > " : " >= ") + fmt(min);
            } else if (max != null) {
                range = " <= " + fmt(max);
            }
            if (excluded != null) {
                range += ", not " + fmt(excluded) + " (" + excludedWhy + ")";
            }
            return switch (kind) {
                case INT, LONG -> "an integer" + range;
                case DOUBLE -> "a number" + range;
                case BOOL -> "true or false";
                case STRING -> choices.isEmpty() ? "a string" : "one of " + String.join(", ", choices);
                case STRING_LIST -> "a list of strings";
                case REWARD -> "a reward spec such as cosine, \"0.7*cosine+0.3*rougeL\" or {cosine: 0.7, rougeL: 0.3}"
                        + " (rewards: " + String.join(", ", RewardSpec.KNOWN) + ")";
            };
        }

        private static String fmt(double d) {
            return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
        }
    }

    private static final JsonNodeFactory F = JsonNodeFactory.instance;
    private static final Map<String, Key> KEYS = new LinkedHashMap<>();

    private static void key(String path, Kind kind, Object def, String doc, Double min, Double max, String... choices) {
        JsonNode d = switch (def) {
            case null -> F.nullNode();
            case Integer i -> F.numberNode(i);
            case Long l -> F.numberNode(l);
            case Double x -> F.numberNode(x);
            case Boolean b -> F.booleanNode(b);
            case String s -> F.textNode(s);
            case List<?> list -> {
                ArrayNode a = F.arrayNode();
                list.forEach(o -> a.add(o.toString()));
                yield a;
            }
            default -> throw new IllegalArgumentException(def.toString());
        };
        KEYS.put(path, new Key(path, kind, d, doc, min, max, List.of(choices), false, null, ""));
    }

    /** Makes a key's lower bound exclusive ({@code top_p > 0}). */
    private static void exclusiveMin(String path) {
        Key k = KEYS.get(path);
        KEYS.put(path, new Key(k.path(), k.kind(), k.defaultValue(), k.doc(), k.min(), k.max(), k.choices(), true,
                k.excluded(), k.excludedWhy()));
    }

    /** Forbids one value of a numeric key, with the reason shown in the error. */
    private static void exclude(String path, double value, String why) {
        Key k = KEYS.get(path);
        KEYS.put(path, new Key(k.path(), k.kind(), k.defaultValue(), k.doc(), k.min(), k.max(), k.choices(),
                k.minExclusive(), value, why));
    }

    private static void i(String path, int def, double min, String doc) {
        key(path, Kind.INT, def, doc, min, null);
    }

    private static void l(String path, long def, String doc) {
        key(path, Kind.LONG, def, doc, null, null);
    }

    private static void d(String path, double def, Double min, Double max, String doc) {
        key(path, Kind.DOUBLE, def, doc, min, max);
    }

    private static void b(String path, boolean def, String doc) {
        key(path, Kind.BOOL, def, doc, null, null);
    }

    private static void s(String path, String def, String doc, String... choices) {
        key(path, Kind.STRING, def, doc, null, null, choices);
    }

    private static void sampling(String p, double temperature, int maxNewTokens, String what) {
        d(p + ".temperature", temperature, 0.0, null, "sampling temperature of " + what + (temperature > 0
                ? " (> 0: GRPO needs samples of a prompt that differ)" : " (0 = greedy)"));
        d(p + ".top_p", 1.0, 0.0, 1.0, "nucleus sampling mass (1 = off)");
        exclusiveMin(p + ".top_p");
        i(p + ".top_k", 0, 0, "keep the k most likely tokens (0 = off)");
        i(p + ".max_new_tokens", maxNewTokens, 1, "longest response in tokens");
        key(p + ".stop_strings", Kind.STRING_LIST, List.of(), "extra strings that end a response (the model's"
                + " end-of-turn token always does)", null, null);
        l(p + ".seed", 0, "sampling seed (the stream of each prompt is derived from it, the step and the prompt)");
    }

    static {
        s("run.dir", "runs/run", "run directory: checkpoints, metrics.jsonl, plots, report.md, summary.json; a run"
                + " directory with a checkpoint is resumed");
        l("run.seed", 42, "seed of the run (model init, data order, sampling) unless a section sets its own");
        s("run.device", "auto", "compute device (auto: the GPU when one and the CUDA libraries are there, else the CPU)",
                "auto", "cpu", "cuda");
        s("run.precision", "auto", "compute precision: bf16 (bf16 activations and weights, fp32 master weights and"
                + " accumulation) or fp32; auto = bf16 on cuda, fp32 on cpu (the CPU computes in fp32 only)", "auto",
                "bf16", "fp32");
        i("run.keep_checkpoints", 2, 1, "checkpoints kept per stage (the newest ones)");
        i("run.profile_step", 0, 0, "on a GPU: profile this optimizer step of each training stage (the GPU time of every"
                + " kernel, GEMM and copy, one table per stage in profile/ of the run directory and a summary in the"
                + " log); 0 = off");

        s("model.path", "", "Hugging Face model directory (config.json, *.safetensors, tokenizer files)");

        s("data.train", "", "training data: a JSONL file (prompt/response, alpaca or chat lines) or 'demo'");
        s("data.eval", "", "held-out data: a JSONL file; empty = hold out data.eval_fraction of data.train");
        d("data.eval_fraction", 0.05, 0.0, 0.99, "share of data.train held out when data.eval is empty");
        l("data.split_seed", 0, "seed of the train/eval split (a hash of each example id and this seed)");
        s("data.format", "auto", "layout of the JSONL lines", "auto", "prompt_response", "alpaca", "chat");
        s("data.on_bad_line", "fail", "what a malformed line does: stop the run or be skipped and counted",
                "fail", "skip");
        i("data.max_prompt_tokens", 512, 1, "examples with a longer prompt (chat-rendered) are dropped");
        i("data.max_response_tokens", 512, 1, "examples with a longer reference response are dropped");
        i("data.max_train_examples", 0, 0, "use at most this many training examples (0 = all)");

        i("sft.epochs", 1, 1, "passes over the training data");
        i("sft.batch_size", 8, 1, "examples per optimizer step (before gradient accumulation)");
        i("sft.grad_accum", 1, 1, "micro-batches accumulated per optimizer step");
        d("sft.lr", 2e-5, 0.0, null, "peak learning rate (AdamW)");
        i("sft.warmup_steps", 0, 0, "linear warm-up steps");
        d("sft.min_lr_ratio", 0.1, 0.0, 1.0, "cosine decay floor as a fraction of the peak learning rate");
        d("sft.weight_decay", 0.0, 0.0, null, "AdamW decoupled weight decay");
        d("sft.max_grad_norm", 1.0, 0.0, null, "gradient clipping by global norm (0 = off)");
        b("sft.packing", false, "pack several examples into one sequence");
        i("sft.max_seq_len", 1024, 2, "longest training sequence in tokens");
        i("sft.eval_every", 0, 0, "eval loss every n steps (0 = only at the end)");
        i("sft.checkpoint_every", 100, 0, "checkpoint every n steps (0 = only at the end)");
        l("sft.seed", 42, "seed of the SFT data order");
        b("sft.prompt_masking", true, "train only on response tokens (prompt tokens get no loss)");
        b("sft.group_by_length", false, "batch examples of similar length together (less padding; the batches'"
                + " order stays shuffled)");

        key("rl.reward", Kind.REWARD, "cosine", "the reward: cosine (RLSR), bleu, rougeL, exact, length or a"
                + " weighted sum", null, null);
        i("rl.prompts_per_step", 8, 1, "prompts per RL step (P)");
        i("rl.group_size", 8, 2, "responses sampled per prompt (G)");
        i("rl.steps", 100, 1, "RL steps");
        i("rl.mu", 1, 1, "optimizer passes over each batch of rollouts (GRPO mu)");
        d("rl.lr", 1e-6, 0.0, null, "peak learning rate (AdamW)");
        i("rl.warmup_steps", 0, 0, "linear warm-up steps");
        d("rl.min_lr_ratio", 1.0, 0.0, 1.0, "cosine decay floor as a fraction of the peak (1 = constant)");
        d("rl.weight_decay", 0.0, 0.0, null, "AdamW decoupled weight decay");
        d("rl.max_grad_norm", 1.0, 0.0, null, "gradient clipping by global norm (0 = off)");
        d("rl.clip_low", 0.2, 0.0, 1.0, "PPO ratio clip below 1 (epsilon low)");
        d("rl.clip_high", 0.2, 0.0, null, "PPO ratio clip above 1 (epsilon high; DAPO uses 0.28)");
        d("rl.beta", 0.0, 0.0, null, "KL penalty to the reference (initial) model; 0 = no reference model");
        s("rl.loss_level", "token", "how the loss averages: over all tokens, per sequence, or Dr. GRPO's constant",
                "token", "sequence", "dr_grpo");
        s("rl.advantage_norm", "group", "advantage scaling: by the group's std, the batch's std, or none (Dr. GRPO)",
                "group", "batch", "none_std");
        d("rl.eps", 1e-4, 0.0, null, "added to the std when normalising advantages");
        i("rl.micro_batch", 8, 1, "sequences per forward/backward in the update");
        i("rl.checkpoint_every", 50, 0, "checkpoint every n steps (0 = only at the end)");
        l("rl.seed", 42, "seed of the RL prompt order and sampling");
        sampling("rl.sampling", 1.0, 256, "rollouts");
        // GRPO learns from the differences between the G samples of a prompt: greedy samples are identical, every
        // advantage is 0 and nothing is learned
        exclusiveMin("rl.sampling.temperature");
        exclude("rl.sampling.top_k", 1, "top_k = 1 is greedy: the G samples of a prompt would be identical and GRPO"
                + " would learn nothing");

        s("reward.encoder", "minilm", "sentence encoder of the cosine reward: the bundled SentenceBERT"
                + " all-MiniLM-L6-v2", "minilm");
        s("reward.device", "auto", "where the encoder runs: cpu = ONNX Runtime; cuda = the engine's BERT on the GPU"
                + " (embeddings and cached references stay in device memory, one cosine kernel per batch, only the"
                + " rewards come back); auto = the policy's device when it is CUDA, else cpu", "auto", "cpu", "cuda");
        s("reward.precision", "fp32", "precision of the encoder on CUDA: fp32 (rewards equal the CPU's to 1e-5) or"
                + " bf16 (half the memory; rewards within a few 1e-3 of fp32)", "fp32", "bf16");
        s("reward.separator", "\n", "text between prompt and response in E(x + y)");
        b("reward.responses_only", false, "embed responses without the prompt: cos(E(y), E(y*))");
        i("reward.encoder_batch_size", 32, 1, "texts per encoder call");
        i("reward.encoder_threads", 0, 0, "encoder threads on the CPU (0 = ONNX Runtime default)");

        key("eval.reward", Kind.REWARD, "cosine", "the reward reported by eval", null, null);
        i("eval.max_examples", 0, 0, "evaluate at most this many held-out examples (0 = all)");
        i("eval.batch_size", 16, 1, "prompts generated together");
        i("eval.bootstrap_samples", 2000, 100, "bootstrap resamples of the confidence intervals");
        l("eval.bootstrap_seed", 12345, "seed of the bootstrap resampling");
        d("eval.confidence", 0.95, 0.5, 0.999, "confidence level of the intervals");
        i("eval.samples_in_report", 6, 0, "sample generations shown in report.md");
        sampling("eval.sampling", 0.0, 256, "evaluation (0 = greedy, deterministic)");

        s("demo.preset", "auto", "the demo's size: cpu (demo.yaml: a small model, minutes on 2 cores), gpu"
                + " (demo-gpu.yaml laid over it: a model of about 25M parameters for one GPU), auto = gpu when the run"
                + " is on a real GPU (not the CUDA emulator), else cpu; --config/--set go on top of either",
                "auto", "cpu", "gpu");
        s("demo.model.type", "qwen3", "architecture of the demo model trained from scratch", "qwen3", "qwen2",
                "llama");
        i("demo.model.hidden_size", 128, 8, "hidden size");
        i("demo.model.layers", 4, 1, "decoder layers");
        i("demo.model.heads", 4, 1, "attention heads");
        i("demo.model.kv_heads", 2, 1, "key/value heads");
        i("demo.model.intermediate_size", 384, 8, "MLP width");
        i("demo.pretrain.epochs", 4, 1, "language-model pre-training passes over the dataset's plain text");
        i("demo.pretrain.batch_size", 16, 1, "sequences per pre-training step");
        i("demo.pretrain.seq_len", 128, 8, "pre-training sequence length in tokens (bytes), texts packed");
        d("demo.pretrain.lr", 3e-3, 0.0, null, "peak pre-training learning rate");
        i("demo.pretrain.warmup_steps", 30, 0, "pre-training warm-up steps");
        i("demo.pretrain.checkpoint_every", 200, 0, "pre-training checkpoint interval (0 = only at the end)");
        i("demo.train_examples", 0, 0, "training examples used by the demo (0 = all)");
        i("demo.eval_examples", 0, 0, "held-out examples evaluated by the demo (0 = all)");
        d("demo.sft_rlsr_lr", 0.0, 0.0, null, "learning rate of the demo's sft+rlsr stage (0 = rl.lr, which the rlsr"
                + " stage from the base uses)");
    }

    /** All keys in documentation order. */
    public static Map<String, Key> keys() {
        return Collections.unmodifiableMap(KEYS);
    }

    public static Key key(String path) {
        return KEYS.get(path);
    }

    public static boolean isSection(String path) {
        String prefix = path + ".";
        return KEYS.keySet().stream().anyMatch(k -> k.startsWith(prefix));
    }

    /** The direct children (keys and sub-sections) of a section ("" for the top level), in order. */
    public static List<String> children(String section) {
        String prefix = section.isEmpty() ? "" : section + ".";
        Set<String> out = new LinkedHashSet<>();
        for (String k : KEYS.keySet()) {
            if (k.startsWith(prefix)) {
                String rest = k.substring(prefix.length());
                int dot = rest.indexOf('.');
                out.add(dot < 0 ? rest : rest.substring(0, dot));
            }
        }
        return new ArrayList<>(out);
    }

    /** The full default tree. */
    public static ObjectNode defaults() {
        ObjectNode root = F.objectNode();
        for (Key k : KEYS.values()) {
            ObjectNode n = root;
            String[] parts = k.path().split("\\.");
            for (int i = 0; i < parts.length - 1; i++) {
                n = n.has(parts[i]) ? (ObjectNode) n.get(parts[i]) : n.putObject(parts[i]);
            }
            n.set(parts[parts.length - 1], k.defaultValue().deepCopy());
        }
        return root;
    }

    /**
     * Checks a value for a key and returns it in canonical form (numbers as numbers, choices in lower case).
     *
     * @param source where the value came from, e.g. "config.yaml" or "--set", for the message
     */
    public static JsonNode coerce(Key k, JsonNode v, String source) {
        String where = source == null ? "" : " (from " + source + ")";
        if (v == null || v.isNull() || v.isMissingNode()) {
            throw new ConfigException(k.path(), "no value given; expected " + k.expected() + where);
        }
        switch (k.kind()) {
            case INT, LONG, DOUBLE -> {
                double x;
                if (v.isNumber()) {
                    x = v.doubleValue();
                } else if (v.isTextual()) {
                    try {
                        x = Double.parseDouble(v.asText().trim().replace("_", ""));
                    } catch (NumberFormatException e) {
                        throw bad(k, v, where);
                    }
                } else {
                    throw bad(k, v, where);
                }
                if (!Double.isFinite(x)) {
                    throw bad(k, v, where);
                }
                if (k.kind() != Kind.DOUBLE && x != Math.rint(x)) {
                    throw bad(k, v, where);
                }
                if ((k.min() != null && (x < k.min() || (k.minExclusive() && x == k.min())))
                        || (k.max() != null && x > k.max()) || (k.excluded() != null && x == k.excluded())) {
                    throw bad(k, v, where);
                }
                if (k.kind() == Kind.INT) {
                    if (Math.abs(x) > Integer.MAX_VALUE) {
                        throw bad(k, v, where);
                    }
                    return F.numberNode((int) x);
                }
                if (k.kind() == Kind.LONG) {
                    return v.isIntegralNumber() ? F.numberNode(v.longValue()) : F.numberNode((long) x);
                }
                return F.numberNode(x);
            }
            case BOOL -> {
                if (v.isBoolean()) {
                    return v;
                }
                String t = v.isTextual() ? v.asText().trim().toLowerCase(Locale.ROOT) : "";
                return switch (t) {
                    case "true", "yes", "on" -> F.booleanNode(true);
                    case "false", "no", "off" -> F.booleanNode(false);
                    default -> throw bad(k, v, where);
                };
            }
            case STRING -> {
                if (!v.isValueNode()) {
                    throw bad(k, v, where);
                }
                String t = v.asText();
                if (!k.choices().isEmpty()) {
                    String lower = t.trim().toLowerCase(Locale.ROOT).replace('-', '_');
                    if (!k.choices().contains(lower)) {
                        throw bad(k, v, where);
                    }
                    return F.textNode(lower);
                }
                return F.textNode(t);
            }
            case STRING_LIST -> {
                ArrayNode a = F.arrayNode();
                if (v.isArray()) {
                    for (JsonNode e : v) {
                        if (!e.isValueNode() || e.isNull()) {
                            throw bad(k, v, where);
                        }
                        a.add(e.asText());
                    }
                } else if (v.isValueNode()) {
                    a.add(v.asText());
                } else {
                    throw bad(k, v, where);
                }
                return a;
            }
            case REWARD -> {
                try {
                    parseReward(v);
                } catch (IllegalArgumentException e) {
                    throw new ConfigException(k.path(), e.getMessage() + where + "; expected " + k.expected(), e);
                }
                return v;
            }
        }
        throw new IllegalStateException();
    }

    /** The reward spec of a REWARD value (string or map). */
    public static RewardSpec parseReward(JsonNode v) {
        if (v.isTextual()) {
            return RewardSpec.parse(v.asText());
        }
        if (v.isObject()) {
            Map<String, Double> m = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : v.properties()) {
                JsonNode w = e.getValue();
                double x;
                if (w.isNumber()) {
                    x = w.doubleValue();
                } else {
                    try {
                        x = Double.parseDouble(w.asText());
                    } catch (NumberFormatException ex) {
                        throw new IllegalArgumentException("the weight of '" + e.getKey() + "' is not a number: '"
                                + w.asText() + "'");
                    }
                }
                m.put(e.getKey(), x);
            }
            return RewardSpec.of(m);
        }
        throw new IllegalArgumentException("a reward is a spec string or a map of weights, got " + v);
    }

    private static ConfigException bad(Key k, JsonNode v, String where) {
        String shown = v.isTextual() ? "'" + v.asText() + "'" : v.toString();
        return new ConfigException(k.path(), "bad value " + shown + where + "; expected " + k.expected());
    }

    /** The known key or section closest to {@code path} by edit distance, or null if none is close. */
    public static String suggest(String path) {
        Set<String> candidates = new LinkedHashSet<>(KEYS.keySet());
        for (String k : KEYS.keySet()) {
            String s = k;
            while (s.contains(".")) {
                s = s.substring(0, s.lastIndexOf('.'));
                candidates.add(s);
            }
        }
        String best = null;
        int bestD = Integer.MAX_VALUE;
        String norm = path.toLowerCase(Locale.ROOT).replace('-', '_');
        for (String c : candidates) {
            int dist = editDistance(norm, c);
            // camelCase spelling of a snake_case key
            dist = Math.min(dist, editDistance(norm, c.replace("_", "")));
            if (dist < bestD) {
                bestD = dist;
                best = c;
            }
        }
        return bestD <= Math.max(2, path.length() / 4) ? best : null;
    }

    static int editDistance(String a, String b) {
        int[] prev = new int[b.length() + 1], cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
