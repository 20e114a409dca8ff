package dev.rlsr.engine.cuda;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

/**
 * A tensor in device memory: a block from the backend's {@link CudaAllocator} (an owner), or a range of another
 * tensor's block (a view). {@link #address()} is the device address of the first element, as the kernels take it.
 */
public final class CudaTensor implements Tensor {

    /** One allocation, shared by its owner and every view. */
    static final class Storage {
        final long base;
        final long sizeClass;
        boolean freed;

        Storage(long base, long sizeClass) {
            this.base = base;
            this.sizeClass = sizeClass;
        }
    }

    private final CudaBackend backend;
    final Storage storage;
    private final long[] shape;
    private final DType dtype;
    private final long offset;
    private final long numel;
    private final boolean view;
    private boolean closedView;

    CudaTensor(CudaBackend backend, Storage storage, DType dtype, long[] shape, long offset, boolean view) {
        this.backend = backend;
        this.storage = storage;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.offset = offset;
        this.numel = Tensor.count(shape);
        this.view = view;
    }

    /** {@return the device address of the first element} */
    public long address() {
        if (storage.freed || closedView) {
            throw new IllegalStateException("tensor " + this + " is closed");
        }
        return storage.base + offset * dtype.bytes();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public long numel() {
        return numel;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public long offset() {
        return offset;
    }

    @Override
    public boolean isView() {
        return view;
    }

    @Override
    public boolean isClosed() {
        return storage.freed || closedView;
    }

    @Override
    public void close() {
        if (view) {
            closedView = true;
        } else if (!storage.freed) {
            storage.freed = true;
            backend.free(storage);
        }
    }

    @Override
    public Tensor view(long offset, long... shape) {
        if (isClosed()) {
            throw new IllegalStateException("tensor " + this + " is closed");
        }
        long n = Tensor.count(shape);
        if (offset < 0 || offset + n > numel) {
            throw new IllegalArgumentException("view of " + n + " elements at " + offset + " does not fit in " + this);
        }
        return new CudaTensor(backend, storage, dtype, shape, this.offset + offset, true);
    }

    @Override
    public String toString() {
        return "CudaTensor" + Tensor.describe(shape) + " " + dtype + (view ? " view@" + offset : "")
                + (isClosed() ? " (closed)" : "");
    }
}
