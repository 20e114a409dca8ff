package dev.rlsr.trainer.config;

/**
 * A run configuration that cannot be used: an unknown key, a value of the wrong type or out of range, a file that
 * cannot be read. The message names the key (dotted path, e.g. {@code rl.group_size}) and is complete on its own:
 * the CLI prints it instead of a stack trace.
 */
public final class ConfigException extends RuntimeException {
    private final String key;

    public ConfigException(String key, String message) {
        super(key == null ? message : key + ": " + message);
        this.key = key;
    }

    public ConfigException(String key, String message, Throwable cause) {
        super(key == null ? message : key + ": " + message, cause);
        this.key = key;
    }

    /** The dotted key the problem is about, or null for a problem of the whole file. */
    public String key() {
        return key;
    }
}
