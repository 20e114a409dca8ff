package dev.rlsr.engine.tensor;

import dev.rlsr.kernels.DType;

import java.util.Arrays;

/**
 * An opaque handle to a dense, contiguous, row-major array owned by a {@link Backend}. Model code never sees the
 * storage (a Java array on the CPU, device memory on a GPU): it only passes handles to backend ops, so the same
 * model runs on every backend. Closing releases the storage; {@code close()} is idempotent.
 */
public interface Tensor extends AutoCloseable {

    /** The shape, e.g. {@code (B,T,V)}; a copy. */
    long[] shape();

    DType dtype();

    /** The backend that owns the storage; every op must receive tensors of its own backend. */
    Backend backend();

    boolean isClosed();

    @Override
    void close();

    /** Number of elements. */
    default long numel() {
        long n = 1;
        for (long d : shape()) {
            n *= d;
        }
        return n;
    }

    default int rank() {
        return shape().length;
    }

    /** Size of dimension {@code i}; negative counts from the end. */
    default long dim(int i) {
        long[] s = shape();
        return s[i < 0 ? s.length + i : i];
    }

    static String describe(long[] shape) {
        return Arrays.toString(shape).replace('[', '(').replace(']', ')');
    }
}
