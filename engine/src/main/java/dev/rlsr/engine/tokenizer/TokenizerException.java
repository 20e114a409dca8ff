package dev.rlsr.engine.tokenizer;

/**
 * Tokenizer files that cannot be loaded or written, or a chat that cannot be rendered. The message is meant for
 * the user: it names the file or the template and says what is wrong.
 */
public class TokenizerException extends RuntimeException {
    /**
     * An exception with a message for the user.
     *
     * @param message names the file or template and what is wrong
     */
    public TokenizerException(String message) {
        super(message);
    }

    /**
     * An exception with a message for the user and the underlying failure.
     *
     * @param message names the file or template and what is wrong
     * @param cause   the underlying failure
     */
    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
