package dev.rlsr.engine.io;

/**
 * A checkpoint (safetensors file, shard index, config.json) that cannot be read or written. The message is meant
 * for the user: it names the file and, where relevant, the tensor, the expected and the found shapes.
 */
public class CheckpointException extends RuntimeException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
