package dev.rlsr.trainer.run;

/**
 * A run that cannot go on for a reason the user can fix (a missing model directory, out of memory, an unsupported
 * device). The message is one paragraph saying what happened and what to change; {@link #exitCode()} is the CLI's
 * exit status.
 */
public final class RunFailure extends RuntimeException {
    /**
     * Exit codes of the CLI: 2 usage or config, 3 data, 4 model or checkpoint, 5 out of memory, 6 device not
     * available, 7 training diverged (a non-finite loss, gradient norm or weight), 8 run directory in use by another
     * run.
     */
    public static final int USAGE = 2, DATA = 3, MODEL = 4, RESOURCES = 5, DEVICE = 6, DIVERGED = 7, BUSY = 8;

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
