package dev.rlsr.engine.io;

/**
 * A checkpoint (safetensors file, shard index, config.json) that cannot be read or written. The message is meant
 * for the user: it names the file and, where relevant, the tensor, the expected and the found shapes.
 */
public class CheckpointException extends RuntimeException {
    /**
     * An exception with a message for the user.
     *
     * @param message names the file and what is wrong
     */
    public CheckpointException(String message) {
        super(message);
    }

    /**
     * An exception with a message for the user and the underlying failure.
     *
     * @param message names the file and what is wrong
     * @param cause   the underlying failure
     */
    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
