package dev.rlsr.engine.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The tokenizer of models trained from scratch: one token per byte (ids 0..255 are the byte values), plus the
 * special tokens of the ChatML format, written as an ordinary Hugging Face tokenizer directory so that it loads
 * through {@link HfTokenizer} (and in transformers) like any other.
 *
 * <p>{@code tokenizer.json} is a BPE model with the 256 byte-level symbols as vocabulary and no merges, with the
 * ByteLevel pre-tokenizer and decoder of GPT-2/Qwen: every UTF-8 string round-trips, emoji included. The symbols are
 * GPT-2's {@code bytes_to_unicode} map (printable bytes stand for themselves, the others are shifted to U+0100...).
 */
public final class ByteLevelTokenizer {

    /** Ids of the special tokens, right after the 256 bytes. */
    public static final int ENDOFTEXT_ID = 256;
    /** Id of {@code <|im_start|>}. */
    public static final int IM_START_ID = 257;
    /** Id of {@code <|im_end|>}, the eos token. */
    public static final int IM_END_ID = 258;
    /** 256 bytes and the three special tokens. */
    public static final int VOCAB_SIZE = 259;

    /** The special tokens, in id order from {@link #ENDOFTEXT_ID}. */
    public static final List<String> SPECIAL_TOKENS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");

    private ByteLevelTokenizer() {
    }

    /**
     * GPT-2's {@code bytes_to_unicode}: the character standing for each byte in a byte-level vocabulary. Printable
     * Latin-1 bytes map to themselves so that vocabularies stay readable; the 68 others to U+0100 upwards.
     *
     * @return the character of each byte value, 256 entries
     */
    public static char[] byteToUnicode() {
        char[] map = new char[256];
        boolean[] printable = new boolean[256];
        for (int b = '!'; b <= '~'; b++) {
            printable[b] = true;
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            printable[b] = true;
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            printable[b] = true;
        }
        int next = 0;
        for (int b = 0; b < 256; b++) {
            map[b] = printable[b] ? (char) b : (char) (256 + next++);
        }
        return map;
    }

    /**
     * Writes {@code tokenizer.json} and {@code tokenizer_config.json} (ChatML template, eos {@code <|im_end|>}, pad
     * {@code <|endoftext|>}, no bos) into {@code dir}, creating it if needed and replacing those two files.
     *
     * @param dir the tokenizer directory
     */
    public static void writeByteLevel(Path dir) {
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = json.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i < SPECIAL_TOKENS.size(); i++) {
            ObjectNode t = added.addObject();
            t.put("id", ENDOFTEXT_ID + i);
            t.put("content", SPECIAL_TOKENS.get(i));
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
        }
        root.putNull("normalizer");
        root.set("pre_tokenizer", byteLevel(json, true));
        root.set("post_processor", byteLevel(json, false));
        root.set("decoder", byteLevel(json, false));
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.put("continuing_subword_prefix", "");
        model.put("end_of_word_suffix", "");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        char[] symbols = byteToUnicode();
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(symbols[b]), b);
        }
        model.putArray("merges");

        ObjectNode config = json.createObjectNode();
        config.put("add_bos_token", false);
        config.put("add_prefix_space", false);
        ObjectNode decoder = config.putObject("added_tokens_decoder");
        for (int i = 0; i < SPECIAL_TOKENS.size(); i++) {
            ObjectNode t = decoder.putObject(Integer.toString(ENDOFTEXT_ID + i));
            t.put("content", SPECIAL_TOKENS.get(i));
            t.put("lstrip", false);
            t.put("normalized", false);
            t.put("rstrip", false);
            t.put("single_word", false);
            t.put("special", true);
        }
        config.putNull("bos_token");
        config.put("eos_token", "<|im_end|>");
        config.put("pad_token", "<|endoftext|>");
        config.putNull("unk_token");
        config.put("chat_template", ChatTemplate.CHATML_JINJA);
        config.put("clean_up_tokenization_spaces", false);
        config.put("model_max_length", 1 << 20);
        config.put("tokenizer_class", "PreTrainedTokenizerFast");
        try {
            Files.createDirectories(dir);
            json.writeValue(dir.resolve("tokenizer.json").toFile(), root);
            json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        } catch (IOException e) {
            throw new TokenizerException("cannot write the byte-level tokenizer into " + dir + ": " + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
    }

    private static ObjectNode byteLevel(ObjectMapper json, boolean useRegex) {
        ObjectNode n = json.createObjectNode();
        n.put("type", "ByteLevel");
        n.put("add_prefix_space", false);
        n.put("trim_offsets", false);
        // splitting on GPT-2's regex changes nothing without merges; it only bounds the word length BPE sees
        n.put("use_regex", useRegex);
        return n;
    }
}
