package dev.rlsr.engine.tensor;

import dev.rlsr.kernels.DType;

import java.util.Arrays;

/**
 * An opaque handle to a dense, contiguous, row-major array owned by a {@link Backend}. Model code never sees the
 * storage (a Java array on the CPU, device memory on a GPU): it only passes handles to backend ops, so the same
 * model runs on every backend. Closing releases the storage; {@code close()} is idempotent.
 */
public interface Tensor extends AutoCloseable {

    /** {@return the shape, e.g. {@code (B,T,V)}; a copy} */
    long[] shape();

    /** {@return the element type} */
    DType dtype();

    /** {@return the backend that owns the storage}; every op must receive tensors of its own backend. */
    Backend backend();

    /** {@return whether {@link #close()} was called} */
    boolean isClosed();

    /** Releases the storage; idempotent. */
    @Override
    void close();

    /** {@return the number of elements} */
    default long numel() {
        long n = 1;
        for (long d : shape()) {
            n *= d;
        }
        return n;
    }

    /** {@return the number of dimensions} */
    default int rank() {
        return shape().length;
    }

    /**
     * Size of one dimension.
     *
     * @param i the dimension; negative counts from the end
     * @return its size
     */
    default long dim(int i) {
        long[] s = shape();
        return s[i < 0 ? s.length + i : i];
    }

    /**
     * A shape as text for messages.
     *
     * @param shape the dimensions
     * @return e.g. {@code (2, 16, 64)}
     */
    static String describe(long[] shape) {
        return Arrays.toString(shape).replace('[', '(').replace(']', ')');
    }
}
