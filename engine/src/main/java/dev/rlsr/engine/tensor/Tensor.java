package dev.rlsr.engine.tensor;

import dev.rlsr.kernels.DType;

import java.util.Arrays;

/**
 * A handle to a dense, row-major array of one {@link DType} owned by a {@link Backend} (a Java array on the CPU,
 * device memory on a GPU). Model code never sees the storage: it passes handles to backend ops, so the same model
 * runs on every backend.
 *
 * <p>A tensor either owns its storage or is a <em>view</em>: a contiguous range of another tensor's storage
 * ({@link #view}), e.g. one parameter inside the flat parameter buffer, or one layer's slice of a stacked buffer.
 * Closing an owner releases the storage (views of it become closed too); closing a view does nothing to the storage.
 * {@code close()} is idempotent.
 */
public interface Tensor extends AutoCloseable {

    /**
     * The shape, e.g. {@code (B,T,V)}.
     *
     * @return a copy of the shape
     */
    long[] shape();

    /** @return the element type */
    DType dtype();

    /** @return the backend that owns the storage; every op must receive tensors of its own backend */
    Backend backend();

    /** @return the position of this tensor's first element in its storage, in elements (0 for an owner) */
    long offset();

    /** @return true when this tensor is a view into another tensor's storage */
    boolean isView();

    /** @return true once this tensor, or the owner of its storage, was closed */
    boolean isClosed();

    @Override
    void close();

    /**
     * A view of {@code numel(shape)} consecutive elements of this tensor starting at element {@code offset}
     * (relative to this tensor's first element), with the given shape.
     *
     * @param offset first element of the view, relative to this tensor
     * @param shape  shape of the view
     * @return the view (same dtype and storage)
     * @throws IllegalArgumentException when the range does not fit inside this tensor
     */
    Tensor view(long offset, long... shape);

    /**
     * This tensor with another shape of the same element count (a view).
     *
     * @param shape the new shape
     * @return the view
     */
    default Tensor reshape(long... shape) {
        if (count(shape) != numel()) {
            throw new IllegalArgumentException("cannot reshape " + this + " (" + numel() + " elements) to "
                    + describe(shape));
        }
        return view(0, shape);
    }

    /** @return the number of elements */
    default long numel() {
        return count(shape());
    }

    /** @return the number of dimensions */
    default int rank() {
        return shape().length;
    }

    /**
     * Size of a dimension.
     *
     * @param i the dimension; negative counts from the end
     * @return its size
     */
    default long dim(int i) {
        long[] s = shape();
        return s[i < 0 ? s.length + i : i];
    }

    /** @return the size in bytes of the elements */
    default long byteSize() {
        return numel() * dtype().bytes();
    }

    /**
     * A shape as {@code (2, 3, 4)}.
     *
     * @param shape the shape
     * @return its text
     */
    static String describe(long[] shape) {
        return Arrays.toString(shape).replace('[', '(').replace(']', ')');
    }

    /**
     * Number of elements of a shape.
     *
     * @param shape the shape (every dimension &gt;= 0)
     * @return the product of its dimensions
     * @throws IllegalArgumentException for a negative dimension or an element count beyond 2^63-1
     */
    static long count(long... shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + describe(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
