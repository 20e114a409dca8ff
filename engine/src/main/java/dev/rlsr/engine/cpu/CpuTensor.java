package dev.rlsr.engine.cpu;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

/**
 * A tensor on the Java heap: a range of a {@code float[]} (F32), {@code short[]} (BF16 bits) or {@code int[]} (I32).
 * An owner covers its whole array; a view covers {@code [offset, offset + numel)} of its owner's array.
 */
public final class CpuTensor implements Tensor {

    /** The array of an owner and its closed flag, shared with every view. */
    static final class Storage {
        private Object array;

        Storage(Object array) {
            this.array = array;
        }
    }

    private final CpuBackend backend;
    private final Storage storage;
    private final long[] shape;
    private final DType dtype;
    private final int offset;
    private final int numel;
    private final boolean view;
    private boolean closedView;

    CpuTensor(CpuBackend backend, DType dtype, long[] shape, Object array) {
        this(backend, new Storage(array), dtype, shape, 0, false);
    }

    private CpuTensor(CpuBackend backend, Storage storage, DType dtype, long[] shape, int offset, boolean view) {
        this.backend = backend;
        this.storage = storage;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.offset = offset;
        this.numel = Math.toIntExact(Tensor.count(shape));
        this.view = view;
    }

    private Object live() {
        Object a = storage.array;
        if (a == null || closedView) {
            throw new IllegalStateException("tensor " + this + " is closed");
        }
        return a;
    }

    /**
     * The F32 storage itself (not a copy); this tensor's elements start at {@link #offset()}. For CPU-only code that
     * wants zero-copy access (tests, interop); model code goes through {@link Backend} ops.
     *
     * @return the backing array
     */
    public float[] array() {
        if (live() instanceof float[] f) {
            return f;
        }
        throw new IllegalStateException("tensor " + this + " is " + dtype + ", not F32");
    }

    /** @return the I32 storage itself (elements start at {@link #offset()}) */
    public int[] intArray() {
        if (live() instanceof int[] i) {
            return i;
        }
        throw new IllegalStateException("tensor " + this + " is " + dtype + ", not I32");
    }

    /** @return the BF16 storage itself as raw bits (elements start at {@link #offset()}) */
    public short[] bf16Array() {
        if (live() instanceof short[] s) {
            return s;
        }
        throw new IllegalStateException("tensor " + this + " is " + dtype + ", not BF16");
    }

    /** @return the offset as an int (CPU arrays are int-indexed) */
    public int off() {
        return offset;
    }

    /** @return the element count as an int */
    public int size() {
        return numel;
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
        return storage.array == null || closedView;
    }

    @Override
    public void close() {
        if (view) {
            closedView = true;
        } else {
            storage.array = null;
        }
    }

    @Override
    public Tensor view(long offset, long... shape) {
        live();
        long n = Tensor.count(shape);
        if (offset < 0 || offset + n > numel) {
            throw new IllegalArgumentException("view of " + n + " elements at " + offset + " does not fit in " + this);
        }
        return new CpuTensor(backend, storage, dtype, shape, Math.toIntExact(this.offset + offset), true);
    }

    @Override
    public String toString() {
        return "CpuTensor" + Tensor.describe(shape) + " " + dtype + (view ? " view@" + offset : "")
                + (isClosed() ? " (closed)" : "");
    }
}
