package dev.rlsr.trainer.run;

/**
 * A run that cannot go on for a reason the user can fix (a missing model directory, out of memory, an unsupported
 * device). The message is one paragraph saying what happened and what to change; {@link #exitCode()} is the CLI's
 * exit status.
 */
public final class RunFailure extends RuntimeException {
    /** Exit codes of the CLI. */
    public static final int USAGE = 2, DATA = 3, MODEL = 4, RESOURCES = 5, DEVICE = 6;

    private final int exitCode;

    public RunFailure(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    public RunFailure(int exitCode, String message, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }
}
