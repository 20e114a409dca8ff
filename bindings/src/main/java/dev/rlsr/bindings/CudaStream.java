package dev.rlsr.bindings;

/** A CUDA stream; {@link #handle()} is the CUstream address to pass to kernels, cuBLAS and NCCL. */
public final class CudaStream implements AutoCloseable {
    private final long handle;
    private boolean closed;

    private CudaStream(long handle) {
        this.handle = handle;
    }

    /** {@return a stream that synchronizes with the legacy default stream ({@code CU_STREAM_DEFAULT})}; close it when done. */
    public static CudaStream create() {
        return new CudaStream(CudaDriver.streamCreate());
    }

    /**
     * A stream in the current context.
     *
     * @param flags e.g. {@link CudaDriver#CU_STREAM_NON_BLOCKING}
     * @return the stream; close it when done
     */
    public static CudaStream create(int flags) {
        return new CudaStream(CudaDriver.streamCreate(flags));
    }

    /** {@return the CUstream}, for the {@code stream} argument of kernel launchers. */
    public long handle() {
        return handle;
    }

    /** Waits until all work queued on this stream finished. */
    public void synchronize() {
        CudaDriver.streamSynchronize(handle);
    }

    /**
     * Makes future work on this stream wait for {@code event}.
     *
     * @param event a recorded event
     */
    public void waitFor(CudaEvent event) {
        CudaDriver.streamWaitEvent(handle, event.handle());
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            CudaDriver.streamDestroy(handle);
        }
    }
}
