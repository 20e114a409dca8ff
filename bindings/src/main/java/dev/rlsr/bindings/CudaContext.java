package dev.rlsr.bindings;

/**
 * A device with its retained primary context, made current on the opening thread. Use
 * {@link #makeCurrent()} on any other thread before issuing CUDA calls there. Closing releases the
 * retain (the primary context is destroyed when the last retain is released).
 */
public final class CudaContext implements AutoCloseable {
    private final int ordinal;
    private final int device;
    private final long handle;
    private boolean closed;

    private CudaContext(int ordinal, int device, long handle) {
        this.ordinal = ordinal;
        this.device = device;
        this.handle = handle;
    }

    public static CudaContext open(int ordinal) {
        CudaDriver.init();
        int count = CudaDriver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new IllegalArgumentException("CUDA device ordinal " + ordinal + " out of range: " + count
                    + " device(s) present");
        }
        int dev = CudaDriver.device(ordinal);
        long ctx = CudaDriver.primaryContextRetain(dev);
        try {
            CudaDriver.contextSetCurrent(ctx);
        } catch (RuntimeException e) {
            CudaDriver.primaryContextRelease(dev);
            throw e;
        }
        return new CudaContext(ordinal, dev, ctx);
    }

    /** Binds this context to the calling thread. */
    public void makeCurrent() {
        CudaDriver.contextSetCurrent(handle);
    }

    public void synchronize() {
        CudaDriver.contextSynchronize();
    }

    public int ordinal() {
        return ordinal;
    }

    /** The CUdevice. */
    public int device() {
        return device;
    }

    /** The CUcontext. */
    public long handle() {
        return handle;
    }

    public String name() {
        return CudaDriver.deviceName(device);
    }

    public int[] computeCapability() {
        return CudaDriver.computeCapability(device);
    }

    /** e.g. "sm_90", the architecture to compile kernels for. */
    public String arch() {
        return CudaDriver.arch(device);
    }

    public long totalMem() {
        return CudaDriver.totalMem(device);
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            CudaDriver.primaryContextRelease(device);
        }
    }
}
