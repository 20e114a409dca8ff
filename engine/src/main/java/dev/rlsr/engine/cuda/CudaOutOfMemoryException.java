package dev.rlsr.engine.cuda;

/** The GPU has no room for a requested buffer (after the allocator's cache was returned to the driver). */
public final class CudaOutOfMemoryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CudaOutOfMemoryException(String message, Throwable cause) {
        super(message, cause);
    }
}
