package dev.rlsr.engine.cpu;

import dev.rlsr.kernels.DType;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

/** A tensor on the Java heap: a dense row-major {@code float[]}. */
public final class CpuTensor implements Tensor {
    private final CpuBackend backend;
    private final long[] shape;
    private float[] data;

    CpuTensor(CpuBackend backend, long[] shape, float[] data) {
        this.backend = backend;
        this.shape = shape.clone();
        this.data = data;
    }

    /**
     * The storage itself (not a copy), for CPU-only code that wants zero-copy access (e.g. tests, interop).
     * Model code goes through {@link Backend} ops instead.
     *
     * @return the row-major values
     */
    public float[] array() {
        if (data == null) {
            throw new IllegalStateException("tensor " + Tensor.describe(shape) + " is closed");
        }
        return data;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public long numel() {
        return data == null ? count(shape) : data.length;
    }

    static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    @Override
    public DType dtype() {
        return DType.F32;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public boolean isClosed() {
        return data == null;
    }

    @Override
    public void close() {
        data = null;
    }

    @Override
    public String toString() {
        return "CpuTensor" + Tensor.describe(shape) + (data == null ? " (closed)" : "");
    }
}
