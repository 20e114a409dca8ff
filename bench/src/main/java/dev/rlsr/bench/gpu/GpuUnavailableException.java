package dev.rlsr.bench.gpu;

/** Thrown by a GPU benchmark's setup where there is no usable CUDA device, so JMH reports it and moves on. */
public final class GpuUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public GpuUnavailableException(String message) {
        super(message);
    }

    // the message says everything; a stack trace through JMH's reflection would only bury it
    @Override
    public synchronized Throwable fillInStackTrace() {
        return this;
    }
}
