package dev.rlsr.bindings;

/** NVRTC failed; for a compile error {@link #log()} holds the compiler's program log. */
public final class NvrtcException extends CudaException {
    /** The program log, "" when there was none. */
    private final String log;

    /**
     * An NVRTC failure; the message includes the program log when there is one.
     *
     * @param function    the NVRTC function, e.g. {@code nvrtcCompileProgram}
     * @param code        the {@code nvrtcResult}
     * @param errorString NVRTC's description of the result
     * @param log         the program log, or null
     */
    public NvrtcException(String function, int code, String errorString, String log) {
        super(function, code, errorString, log == null || log.isBlank() ? null : "compile log:\n" + log.strip());
        this.log = log == null ? "" : log;
    }

    /** {@return the NVRTC program log (compiler diagnostics), empty when there was none} */
    public String log() {
        return log;
    }
}
