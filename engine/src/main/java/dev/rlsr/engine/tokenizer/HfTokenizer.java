package dev.rlsr.engine.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Hugging Face {@code tokenizer.json} run by the HF tokenizers library itself (Rust), through DJL's JNI binding
 * ({@code ai.djl.huggingface:tokenizers}), so ids are those of transformers for every tokenizer type it supports
 * (byte-level BPE of Qwen2/2.5/3 and Llama 3, SentencePiece-style BPE, WordPiece, Unigram).
 *
 * <p><b>Offline.</b> The DJL jar bundles the CPU library for linux-x86_64, linux-aarch64, macOS arm64 and Windows
 * x86_64 and extracts it to {@code ~/.djl.ai/tokenizers/} ({@code DJL_CACHE_DIR} moves it). Left alone, DJL would
 * (a) send a usage ping to the cloud metadata address each time a tokenizer is created and (b) on a machine with
 * CUDA look for a CUDA build of the library on its CDN. This class therefore sets the system properties
 * {@code ai.djl.offline=true}, {@code OPT_OUT_TRACKING=true} and {@code RUST_FLAVOR=cpu} before the first DJL call,
 * unless the environment ({@code DJL_OFFLINE}, {@code OPT_OUT_TRACKING}, {@code RUST_FLAVOR}) or the caller set
 * them: no network traffic, and tokenization gains nothing from a GPU anyway.
 *
 * <p><b>No truncation, no padding.</b> DJL's defaults (truncate to 512, pad batches) are switched off: a trainer
 * decides lengths itself.
 *
 * <p>Special tokens: eos, bos and pad come from {@code tokenizer_config.json} (a string or an
 * {@code {"content": ...}} object), stop ids add {@code eos_token_id} of {@code generation_config.json}; the chat
 * template is {@code chat_template.jinja} if present, else {@code chat_template} of tokenizer_config.json.
 */
public final class HfTokenizer implements Tokenizer {

    private static final ObjectMapper JSON = new ObjectMapper();

    static {
        configureDjlOffline();
    }

    /**
     * Must run before the first DJL call anywhere in the process (tokenizers, and the encoders that load a
     * {@code tokenizer.json} through DJL directly). Offline mode stops DJL's usage ping (Ec2Utils.callHome: an HTTP
     * request to the cloud metadata address on every tokenizer creation) and any download; OPT_OUT_TRACKING stops the
     * ping too should a caller turn offline mode off; RUST_FLAVOR=cpu keeps DJL from fetching a CUDA build of the
     * library on a GPU machine. Explicit settings (environment or system property) win. Idempotent.
     */
    public static void configureDjlOffline() {
        setIfAbsent("ai.djl.offline", "DJL_OFFLINE", "true");
        setIfAbsent("OPT_OUT_TRACKING", "OPT_OUT_TRACKING", "true");
        setIfAbsent("RUST_FLAVOR", "RUST_FLAVOR", "cpu");
    }

    private static void setIfAbsent(String property, String env, String value) {
        if (System.getenv(env) == null && System.getProperty(property) == null) {
            System.setProperty(property, value);
        }
    }

    private final Path directory;
    private final HuggingFaceTokenizer native_;
    private final Map<String, Integer> tokenToId;
    private final String[] idToToken;
    private final Set<Integer> specialIds;
    private final SpecialTokens special;
    private final ChatTemplate chatTemplate;
    private final AtomicBoolean closed = new AtomicBoolean();

    private HfTokenizer(Path directory, HuggingFaceTokenizer native_, Map<String, Integer> tokenToId,
                        String[] idToToken, Set<Integer> specialIds, SpecialTokens special, ChatTemplate chatTemplate) {
        this.directory = directory;
        this.native_ = native_;
        this.tokenToId = tokenToId;
        this.idToToken = idToToken;
        this.specialIds = specialIds;
        this.special = special;
        this.chatTemplate = chatTemplate;
    }

    /**
     * Loads the tokenizer in {@code path}: a directory with {@code tokenizer.json}, or that file itself.
     *
     * @param path a directory or a tokenizer.json
     * @return the tokenizer; close it to free the native tokenizer
     * @throws TokenizerException naming the file and what is wrong with it
     */
    public static HfTokenizer load(Path path) {
        Objects.requireNonNull(path, "tokenizer path");
        Path dir = Files.isDirectory(path) ? path : path.toAbsolutePath().getParent();
        Path json = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
        if (!Files.isRegularFile(json)) {
            String hint = Files.isRegularFile(dir.resolve("vocab.json"))
                    ? " (only vocab.json/merges.txt found: save the tokenizer once with transformers'"
                    + " AutoTokenizer(...).save_pretrained to get a tokenizer.json)"
                    : "";
            throw new TokenizerException("no tokenizer.json in " + dir + hint);
        }
        Vocab vocab = readVocab(json);
        JsonNode config = readJsonIfPresent(dir.resolve("tokenizer_config.json"));
        JsonNode generation = readJsonIfPresent(dir.resolve("generation_config.json"));

        SpecialTokens special = specialTokens(dir, config, generation, vocab);
        String template = chatTemplateSource(dir, config);
        ChatTemplate chat;
        try {
            chat = ChatTemplate.detect(template, special.bosToken(), special.eosToken());
        } catch (TokenizerException e) {
            Path source = Files.isRegularFile(dir.resolve("chat_template.jinja")) ? dir.resolve("chat_template.jinja")
                    : dir.resolve("tokenizer_config.json");
            throw new TokenizerException(source + ": " + e.getMessage(), e);
        }

        HuggingFaceTokenizer tok;
        try {
            tok = HuggingFaceTokenizer.newInstance(json,
                    Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "true"));
        } catch (IOException | RuntimeException e) {
            throw new TokenizerException("cannot load " + json + " with HF tokenizers: " + e.getMessage(), e);
        }
        return new HfTokenizer(dir, tok, vocab.tokenToId, vocab.idToToken, vocab.specialIds, special, chat);
    }

    private record Vocab(Map<String, Integer> tokenToId, String[] idToToken, Set<Integer> specialIds) {
    }

    /**
     * Reads the vocabulary and the added tokens with a streaming parser: the merges of a 150k-token BPE are most of
     * the file's 11 MB and are not needed here (the native tokenizer applies them).
     */
    private static Vocab readVocab(Path json) {
        Map<String, Integer> ids = new HashMap<>(1 << 18);
        Set<Integer> specials = new LinkedHashSet<>();
        try (JsonParser p = new JsonFactory().createParser(json.toFile())) {
            expect(p.nextToken() == JsonToken.START_OBJECT, json, "the file is not a JSON object");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (field.equals("added_tokens") && value == JsonToken.START_ARRAY) {
                    while (p.nextToken() == JsonToken.START_OBJECT) {
                        JsonNode t = JSON.readTree(p);
                        expect(t.hasNonNull("id") && t.hasNonNull("content"), json,
                                "an added_tokens entry lacks id or content: " + t);
                        int id = t.get("id").asInt();
                        ids.put(t.get("content").asText(), id);
                        if (t.path("special").asBoolean(false)) {
                            specials.add(id);
                        }
                    }
                } else if (field.equals("model") && value == JsonToken.START_OBJECT) {
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String key = p.currentName();
                        JsonToken v = p.nextToken();
                        if (key.equals("vocab") && v == JsonToken.START_OBJECT) {
                            while (p.nextToken() == JsonToken.FIELD_NAME) {
                                String piece = p.currentName();
                                p.nextToken();
                                ids.putIfAbsent(piece, p.getIntValue());
                            }
                        } else if (key.equals("vocab") && v == JsonToken.START_ARRAY) {
                            // Unigram: [[piece, score], ...], the position is the id
                            int id = 0;
                            while (p.nextToken() == JsonToken.START_ARRAY) {
                                p.nextToken();
                                ids.putIfAbsent(p.getText(), id++);
                                p.skipChildren();
                                while (p.currentToken() != JsonToken.END_ARRAY) {
                                    p.nextToken();
                                }
                            }
                        } else {
                            p.skipChildren();
                        }
                    }
                } else {
                    p.skipChildren();
                }
            }
        } catch (IOException e) {
            throw new TokenizerException("cannot read " + json + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
        expect(!ids.isEmpty(), json, "no vocabulary found under model.vocab");
        int size = ids.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        String[] byId = new String[size];
        for (Map.Entry<String, Integer> e : ids.entrySet()) {
            int id = e.getValue();
            expect(id >= 0, json, "negative token id " + id + " for '" + e.getKey() + "'");
            // an added token that is also a vocab piece keeps the added token's text
            if (byId[id] == null || specials.contains(id)) {
                byId[id] = e.getKey();
            }
        }
        return new Vocab(Map.copyOf(ids), byId, Set.copyOf(specials));
    }

    private static void expect(boolean ok, Path file, String what) {
        if (!ok) {
            throw new TokenizerException(file + ": " + what);
        }
    }

    private static JsonNode readJsonIfPresent(Path file) {
        if (!Files.isRegularFile(file)) {
            return JSON.missingNode();
        }
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new TokenizerException("cannot read " + file + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
    }

    private static String chatTemplateSource(Path dir, JsonNode config) {
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                return Files.readString(jinja);
            } catch (IOException e) {
                throw new TokenizerException("cannot read " + jinja + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
            }
        }
        JsonNode t = config.path("chat_template");
        if (t.isTextual()) {
            return t.asText();
        }
        if (!t.isMissingNode() && !t.isNull() && !t.isArray()) {
            throw new TokenizerException(dir.resolve("tokenizer_config.json") + ": chat_template must be a Jinja"
                    + " template string (or a list of named templates), found " + t.getNodeType().toString()
                    .toLowerCase(java.util.Locale.ROOT) + " " + shortJson(t));
        }
        if (t.isArray()) {
            // several named templates: the "default" one is what apply_chat_template uses
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText())) {
                    if (!named.path("template").isTextual()) {
                        throw new TokenizerException(dir.resolve("tokenizer_config.json") + ": the \"default\""
                                + " chat_template must be a Jinja template string, found "
                                + shortJson(named.path("template")));
                    }
                    return named.path("template").asText();
                }
            }
            throw new TokenizerException(dir.resolve("tokenizer_config.json")
                    + ": chat_template lists named templates but none is called \"default\"");
        }
        return null;
    }

    private static String shortJson(JsonNode n) {
        String s = n.toString();
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    /** A special token field: a string, null, or an AddedToken object {@code {"content": ...}}. */
    private static String tokenText(JsonNode config, String field) {
        JsonNode n = config.path(field);
        if (n.isTextual()) {
            return n.asText();
        }
        if (n.isObject() && n.path("content").isTextual()) {
            return n.path("content").asText();
        }
        return null;
    }

    private static SpecialTokens specialTokens(Path dir, JsonNode config, JsonNode generation, Vocab vocab) {
        Path cfgFile = dir.resolve("tokenizer_config.json");
        String bos = tokenText(config, "bos_token");
        String eos = tokenText(config, "eos_token");
        String pad = tokenText(config, "pad_token");
        int bosId = idOf(vocab, bos, cfgFile, "bos_token");
        int eosId = idOf(vocab, eos, cfgFile, "eos_token");
        int padId = idOf(vocab, pad, cfgFile, "pad_token");
        if (bos == null && generation.path("bos_token_id").canConvertToInt()) {
            bosId = generation.path("bos_token_id").asInt();
            bos = bosId < vocab.idToToken.length ? vocab.idToToken[bosId] : null;
            bosId = bos == null ? SpecialTokens.NONE : bosId;
        }
        LinkedHashSet<Integer> stop = new LinkedHashSet<>();
        if (eosId != SpecialTokens.NONE) {
            stop.add(eosId);
        }
        JsonNode genEos = generation.path("eos_token_id");
        if (genEos.canConvertToInt()) {
            stop.add(genEos.asInt());
        } else if (genEos.isArray()) {
            genEos.forEach(x -> stop.add(x.asInt()));
        }
        if (eos == null && !stop.isEmpty()) {
            // a model that names its eos only in generation_config.json
            eosId = stop.getFirst();
            eos = eosId < vocab.idToToken.length ? vocab.idToToken[eosId] : null;
            eosId = eos == null ? SpecialTokens.NONE : eosId;
        }
        if (pad == null && eos != null) {
            pad = eos;
            padId = eosId;
        }
        return new SpecialTokens(bos, bosId, eos, eosId, pad, padId,
                stop.stream().mapToInt(Integer::intValue).toArray());
    }

    private static int idOf(Vocab vocab, String token, Path file, String field) {
        if (token == null) {
            return SpecialTokens.NONE;
        }
        Integer id = vocab.tokenToId.get(token);
        if (id == null) {
            throw new TokenizerException(file + ": " + field + " '" + token + "' is not a token of tokenizer.json");
        }
        return id;
    }

    private void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException("the tokenizer of " + directory + " is closed");
        }
    }

    @Override
    public int vocabSize() {
        return idToToken.length;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        Objects.requireNonNull(text, "text");
        checkOpen();
        return toInts(native_.encode(text, addSpecialTokens, false).getIds());
    }

    @Override
    public List<int[]> encodeBatch(List<String> texts, boolean addSpecialTokens) {
        Objects.requireNonNull(texts, "texts");
        checkOpen();
        if (texts.isEmpty()) {
            return List.of();
        }
        Encoding[] enc = native_.batchEncode(texts, addSpecialTokens, false);
        List<int[]> out = new ArrayList<>(enc.length);
        for (Encoding e : enc) {
            out.add(toInts(e.getIds()));
        }
        return out;
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        Objects.requireNonNull(ids, "ids");
        checkOpen();
        checkIds(ids);
        return native_.decode(toLongs(ids), skipSpecialTokens);
    }

    @Override
    public List<String> decodeBatch(List<int[]> ids, boolean skipSpecialTokens) {
        Objects.requireNonNull(ids, "ids");
        checkOpen();
        if (ids.isEmpty()) {
            return List.of();
        }
        long[][] all = new long[ids.size()][];
        for (int i = 0; i < all.length; i++) {
            checkIds(ids.get(i));
            all[i] = toLongs(ids.get(i));
        }
        return List.of(native_.batchDecode(all, skipSpecialTokens));
    }

    // the native decoder silently drops unknown ids; an id past the vocabulary is a bug upstream (a logits row
    // wider than the vocabulary), so say so
    private void checkIds(int[] ids) {
        for (int id : ids) {
            if (id < 0 || id >= idToToken.length) {
                throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, "
                        + idToToken.length + ") of " + directory);
            }
        }
    }

    @Override
    public OptionalInt tokenId(String token) {
        Integer id = tokenToId.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    @Override
    public String idToToken(int id) {
        return id >= 0 && id < idToToken.length ? idToToken[id] : null;
    }

    /**
     * Whether {@code id} is an added token marked special in tokenizer.json ({@code <|im_end|>}, not {@code <think>}).
     *
     * @param id a token id
     * @return true for a special added token
     */
    public boolean isSpecial(int id) {
        return specialIds.contains(id);
    }

    @Override
    public SpecialTokens specialTokens() {
        return special;
    }

    @Override
    public ChatTemplate chatTemplate() {
        return chatTemplate;
    }

    @Override
    public Path directory() {
        return directory;
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            native_.close();
        }
    }

    private static int[] toInts(long[] ids) {
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    private static long[] toLongs(int[] ids) {
        long[] out = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = ids[i];
        }
        return out;
    }

    @Override
    public String toString() {
        return "HfTokenizer[" + directory + ", vocab " + vocabSize() + ", " + special + ", " + chatTemplate + "]";
    }
}
