package dev.rlsr.bindings;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** A loaded cubin/PTX module in the current context; functions are looked up once and cached. */
public final class CudaModule implements AutoCloseable {
    private final long handle;
    private final Map<String, Long> functions = new ConcurrentHashMap<>();
    private volatile boolean closed;

    private CudaModule(long handle) {
        this.handle = handle;
    }

    /**
     * Loads a cubin (e.g. from {@link KernelCache#cubin}) or PTX into the current context.
     *
     * @param image the cubin or PTX bytes
     * @return the module; close it to unload
     */
    public static CudaModule load(byte[] image) {
        return new CudaModule(CudaDriver.moduleLoadData(image));
    }

    /** {@return the CUmodule} */
    public long handle() {
        return handle;
    }

    /**
     * The CUfunction of an {@code extern "C"} kernel.
     *
     * @param name the kernel's name
     * @return the function handle, valid while the module is loaded
     */
    public long function(String name) {
        if (closed) {
            throw new IllegalStateException("module already unloaded");
        }
        return functions.computeIfAbsent(name, n -> CudaDriver.moduleGetFunction(handle, n));
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            functions.clear();
            CudaDriver.moduleUnload(handle);
        }
    }
}
