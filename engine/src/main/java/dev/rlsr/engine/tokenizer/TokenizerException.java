package dev.rlsr.engine.tokenizer;

/**
 * Tokenizer files that cannot be loaded or written, or a chat that cannot be rendered. The message is meant for
 * the user: it names the file or the template and says what is wrong.
 */
public class TokenizerException extends RuntimeException {
    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
