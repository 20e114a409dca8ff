package dev.rlsr.bindings;

/** A CUDA stream; {@link #handle()} is the CUstream address to pass to kernels, cuBLAS and NCCL. */
public final class CudaStream implements AutoCloseable {
    private final long handle;
    private boolean closed;

    private CudaStream(long handle) {
        this.handle = handle;
    }

    /** A stream that synchronizes with the legacy default stream ({@code CU_STREAM_DEFAULT}). */
    public static CudaStream create() {
        return new CudaStream(CudaDriver.streamCreate());
    }

    /** e.g. {@link CudaDriver#CU_STREAM_NON_BLOCKING}. */
    public static CudaStream create(int flags) {
        return new CudaStream(CudaDriver.streamCreate(flags));
    }

    public long handle() {
        return handle;
    }

    public void synchronize() {
        CudaDriver.streamSynchronize(handle);
    }

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
