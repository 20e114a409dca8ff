/**
 * Tokenizers and chat formats.
 *
 * <p>{@link dev.rlsr.engine.tokenizer.Tokenizer} is the API; {@link dev.rlsr.engine.tokenizer.HfTokenizer} runs a
 * Hugging Face {@code tokenizer.json} with the HF tokenizers library (Rust, via DJL's JNI binding whose jar carries
 * the native library: no download, no network; see its class comment for the settings it makes). Models trained from
 * scratch use {@link dev.rlsr.engine.tokenizer.ByteLevelTokenizer#writeByteLevel(java.nio.file.Path)}, an ordinary
 * tokenizer.json with one token per byte, so they take the same path. Checkpoints carry the tokenizer files along
 * ({@link dev.rlsr.engine.tokenizer.Tokenizer#saveTo(java.nio.file.Path)}).
 *
 * <p>Chat templates are rendered by built-in formats recognised from the Jinja source
 * ({@link dev.rlsr.engine.tokenizer.ChatTemplate}), because no Java Jinja engine reproduces transformers on the
 * Qwen3 template; an unknown template is an error, not a guess.
 *
 * <p>Legend: ids are {@code int}; {@code ids (T)} is one encoded text, {@code List<int[]>} a ragged batch.
 */
package dev.rlsr.engine.tokenizer;
