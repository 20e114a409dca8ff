package dev.rlsr.trainer.data;

/**
 * A dataset line that cannot be used. The message is {@code <file>:<line>: <what is wrong>}, complete on its own:
 * the CLI prints it instead of a stack trace, so none is recorded.
 */
public final class DatasetException extends RuntimeException {
    private final String file;
    private final long line;

    public DatasetException(String file, long line, String what) {
        super(file + ":" + line + ": " + what, null, false, false);
        this.file = file;
        this.line = line;
    }

    /** A problem of the whole file rather than of a line (it cannot be opened or read). */
    public DatasetException(String file, String what, Throwable cause) {
        super(file + ": " + what, cause, false, false);
        this.file = file;
        this.line = 0;
    }

    public String file() {
        return file;
    }

    /** 1-based line number, 0 for a problem of the whole file. */
    public long line() {
        return line;
    }
}
