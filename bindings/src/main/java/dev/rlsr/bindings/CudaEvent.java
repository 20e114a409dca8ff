package dev.rlsr.bindings;

/** A CUDA event with timing enabled, for stream ordering and GPU-side timing. */
public final class CudaEvent implements AutoCloseable {
    private final long handle;
    private boolean closed;

    private CudaEvent(long handle) {
        this.handle = handle;
    }

    /** {@return a new event with timing enabled, in the current context}; close it when done. */
    public static CudaEvent create() {
        return new CudaEvent(CudaDriver.eventCreate());
    }

    /**
     * A new event in the current context.
     *
     * @param flags a combination of the {@code CudaDriver.CU_EVENT_*} flags
     * @return the event; close it when done
     */
    public static CudaEvent create(int flags) {
        return new CudaEvent(CudaDriver.eventCreate(flags));
    }

    /** {@return the CUevent} */
    public long handle() {
        return handle;
    }

    /**
     * Records the event at the current end of {@code stream}'s queue.
     *
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public void record(long stream) {
        CudaDriver.eventRecord(handle, stream);
    }

    /**
     * Records the event at the current end of {@code stream}'s queue.
     *
     * @param stream the stream
     */
    public void record(CudaStream stream) {
        record(stream.handle());
    }

    /** Waits until the work before the last record finished. */
    public void synchronize() {
        CudaDriver.eventSynchronize(handle);
    }

    /**
     * Milliseconds from {@code start} to this event; both recorded and completed.
     *
     * @param start the earlier event
     * @return elapsed milliseconds
     */
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
