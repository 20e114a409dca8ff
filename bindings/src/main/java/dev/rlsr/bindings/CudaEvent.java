package dev.rlsr.bindings;

/** A CUDA event with timing enabled, for stream ordering and GPU-side timing. */
public final class CudaEvent implements AutoCloseable {
    private final long handle;
    private boolean closed;

    private CudaEvent(long handle) {
        this.handle = handle;
    }

    public static CudaEvent create() {
        return new CudaEvent(CudaDriver.eventCreate());
    }

    public static CudaEvent create(int flags) {
        return new CudaEvent(CudaDriver.eventCreate(flags));
    }

    public long handle() {
        return handle;
    }

    /** Records on {@code stream} (0 = legacy default stream). */
    public void record(long stream) {
        CudaDriver.eventRecord(handle, stream);
    }

    public void record(CudaStream stream) {
        record(stream.handle());
    }

    public void synchronize() {
        CudaDriver.eventSynchronize(handle);
    }

    /** Milliseconds from {@code start} to this event; both recorded and completed. */
    public float elapsedMsSince(CudaEvent start) {
        return CudaDriver.eventElapsedMs(start.handle, handle);
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            CudaDriver.eventDestroy(handle);
        }
    }
}
