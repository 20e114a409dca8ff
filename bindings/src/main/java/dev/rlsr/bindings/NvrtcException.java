package dev.rlsr.bindings;

/** NVRTC failed; for a compile error {@link #log()} holds the compiler's program log. */
public final class NvrtcException extends CudaException {
    private final String log;

    public NvrtcException(String function, int code, String errorString, String log) {
        super(function, code, errorString, log == null || log.isBlank() ? null : "compile log:\n" + log.strip());
        this.log = log == null ? "" : log;
    }

    /** The NVRTC program log (compiler diagnostics), empty when there was none. */
    public String log() {
        return log;
    }
}
