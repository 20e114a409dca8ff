package dev.rlsr.engine.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.OptionalInt;

/**
 * Text to token ids and back, plus the model's special tokens and chat format. Token ids are {@code int}: every
 * vocabulary in use is far below 2^31, and the engine's id tensors are int32.
 *
 * <p>The one implementation, {@link HfTokenizer}, loads a Hugging Face tokenizer directory ({@code tokenizer.json},
 * {@code tokenizer_config.json}, optionally {@code generation_config.json} and {@code chat_template.jinja}); models
 * trained from scratch get such a directory from {@link ByteLevelTokenizer#writeByteLevel(Path)}, so both go through
 * the same code path. Implementations are thread-safe; {@link #close()} frees the native tokenizer and is idempotent.
 */
public interface Tokenizer extends AutoCloseable {

    /** The files of a Hugging Face tokenizer directory that a checkpoint carries along ({@link #copyFiles}). */
    List<String> FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "chat_template.jinja", "vocab.json", "merges.txt", "generation_config.json");

    /**
     * Loads the Hugging Face tokenizer in {@code dir} (or the directory of a {@code tokenizer.json} path).
     *
     * @param dir a tokenizer or model directory, or its tokenizer.json
     * @return the tokenizer; close it to free the native tokenizer
     * @throws TokenizerException naming the file and what is wrong with it
     */
    static Tokenizer load(Path dir) {
        return HfTokenizer.load(dir);
    }

    /** {@return the highest token id + 1 over the vocabulary and the added tokens} (an embedding may be larger, padded up). */
    int vocabSize();

    /**
     * Ids of {@code text} as HF {@code tokenizer(text)} gives them: special tokens written in the text (such as
     * {@code <|im_end|>}) become their ids, and the tokenizer's post-processor adds its tokens (none for Qwen, BOS
     * for Llama 3).
     *
     * @param text the text
     * @return its token ids
     */
    default int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * As {@link #encode(String)}; {@code addSpecialTokens=false} is what rendered chat templates need.
     *
     * @param text             the text
     * @param addSpecialTokens run the post-processor (BOS for Llama 3)
     * @return its token ids
     */
    int[] encode(String text, boolean addSpecialTokens);

    /**
     * Encodes every text (in parallel in the native tokenizer); no truncation and no padding.
     *
     * @param texts            the texts
     * @param addSpecialTokens run the post-processor
     * @return the ids of each text, in order
     */
    List<int[]> encodeBatch(List<String> texts, boolean addSpecialTokens);

    /**
     * Text of {@code ids}, special tokens included; invalid UTF-8 becomes U+FFFD as in HF ({@code errors=replace}).
     *
     * @param ids token ids
     * @return the text
     */
    default String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * Text of {@code ids}.
     *
     * @param ids               token ids
     * @param skipSpecialTokens leave special tokens out of the text
     * @return the text
     */
    String decode(int[] ids, boolean skipSpecialTokens);

    /**
     * Texts of several id sequences.
     *
     * @param ids               token ids of each sequence
     * @param skipSpecialTokens leave special tokens out of the texts
     * @return the texts, in order
     */
    List<String> decodeBatch(List<int[]> ids, boolean skipSpecialTokens);

    /**
     * Id of a token given as its vocabulary string (an added token such as {@code <|im_end|>}, or a BPE piece).
     *
     * @param token the vocabulary string
     * @return its id, or empty if there is no such token
     */
    OptionalInt tokenId(String token);

    /**
     * Vocabulary string of {@code id} (byte-level pieces as stored, e.g. {@code "Ġworld"}).
     *
     * @param id a token id
     * @return its string, or null if unknown
     */
    String idToToken(int id);

    /** {@return the special tokens (bos, eos, pad, stop ids) from the tokenizer and generation configs} */
    SpecialTokens specialTokens();

    /** {@return the model's chat format}; a base model without a template gets {@link ChatTemplate.Format#PLAIN}. */
    ChatTemplate chatTemplate();

    /**
     * Ids of a rendered chat, as {@code apply_chat_template(messages, tokenize=True)} gives them.
     *
     * @param messages            the conversation
     * @param addGenerationPrompt end with the assistant header, ready for generation
     * @return the token ids
     */
    default int[] encodeChat(List<Message> messages, boolean addGenerationPrompt) {
        return encode(chatTemplate().render(messages, addGenerationPrompt), false);
    }

    /**
     * As {@link #encodeChat(List, boolean)} with Qwen3's {@code enable_thinking}.
     *
     * @param messages            the conversation
     * @param addGenerationPrompt end with the assistant header, ready for generation
     * @param enableThinking      Qwen3's switch; null leaves it undefined
     * @return the token ids
     */
    default int[] encodeChat(List<Message> messages, boolean addGenerationPrompt, Boolean enableThinking) {
        return encode(chatTemplate().render(messages, addGenerationPrompt, enableThinking), false);
    }

    /** {@return the directory the tokenizer was loaded from} */
    Path directory();

    /**
     * Copies this tokenizer's files into {@code dir} (created if missing), for example next to a checkpoint.
     *
     * @param dir the destination directory
     */
    default void saveTo(Path dir) {
        copyFiles(directory(), dir);
    }

    /**
     * Copies the tokenizer files ({@link #FILES}) present in {@code fromDir} into {@code toDir}, replacing files of
     * the same name, except a {@code generation_config.json} already in {@code toDir}: it belongs to the model (the
     * checkpoint writer may have written a newer one) and is copied only for the stop ids it carries when missing.
     * {@code tokenizer.json} must be there.
     *
     * @param fromDir the source directory
     * @param toDir   the destination directory (created if missing)
     * @throws TokenizerException when {@code fromDir} has no tokenizer.json
     */
    static void copyFiles(Path fromDir, Path toDir) {
        if (!Files.isRegularFile(fromDir.resolve("tokenizer.json"))) {
            throw new TokenizerException("no tokenizer.json in " + fromDir + ": nothing to copy");
        }
        try {
            if (Files.exists(fromDir) && Files.exists(toDir) && Files.isSameFile(fromDir, toDir)) {
                return;
            }
            Files.createDirectories(toDir);
            for (String name : FILES) {
                Path src = fromDir.resolve(name);
                Path dst = toDir.resolve(name);
                if (name.equals("generation_config.json") && Files.exists(dst)) {
                    continue;
                }
                if (Files.isRegularFile(src)) {
                    Files.copy(src, dst, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy the tokenizer files from " + fromDir + " to " + toDir, e);
        }
    }

    @Override
    void close();
}
