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

    /**
     * Retains device {@code ordinal}'s primary context and makes it current on the calling thread.
     *
     * @param ordinal 0 .. {@link CudaDriver#deviceCount()} - 1
     * @return the open context; close it to release the retain
     * @throws IllegalArgumentException for an ordinal out of range
     * @throws CudaException when the driver fails (no driver, no device)
     */
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

    /** Waits until all work of this context finished (it must be current); an earlier asynchronous failure is thrown here. */
    public void synchronize() {
        CudaDriver.contextSynchronize();
    }

    /** {@return the device ordinal this context was opened for} */
    public int ordinal() {
        return ordinal;
    }

    /** {@return the CUdevice} */
    public int device() {
        return device;
    }

    /** {@return the CUcontext}, for code that sets it current itself or hands it to another CUDA binding. */
    public long handle() {
        return handle;
    }

    /** {@return the device's name, e.g. "NVIDIA H200"} */
    public String name() {
        return CudaDriver.deviceName(device);
    }

    /** {@return {major, minor} of the device, e.g. {9, 0}} */
    public int[] computeCapability() {
        return CudaDriver.computeCapability(device);
    }

    /** {@return the architecture to compile kernels for, e.g. "sm_90"} */
    public String arch() {
        return CudaDriver.arch(device);
    }

    /** {@return the device memory in bytes} */
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
