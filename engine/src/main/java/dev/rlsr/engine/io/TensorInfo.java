package dev.rlsr.engine.io;

import dev.rlsr.kernels.DType;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * Where one tensor lives: its dtype and shape, the file holding it, and its byte range in that file
 * ({@code dataOffset} is absolute, counted from the start of the file, header included).
 *
 * @param name       the tensor's name
 * @param dtype      its element type
 * @param shape      its dimensions ([] for a scalar)
 * @param file       the file holding it
 * @param dataOffset first byte in that file
 * @param byteLength bytes of data
 */
public record TensorInfo(String name, DType dtype, long[] shape, Path file, long dataOffset, long byteLength) {

    /** Checks that no dimension, offset or length is negative, naming the tensor; copies the shape. */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(shape, "shape");
        shape = shape.clone();
        for (long d : shape) {
            if (d < 0) {
                throw new CheckpointException("tensor '" + name + "' in " + file + ": negative dimension in shape "
                        + Arrays.toString(shape));
            }
        }
        if (dataOffset < 0 || byteLength < 0) {
            throw new CheckpointException("tensor '" + name + "' in " + file + ": negative offset or length");
        }
    }

    /** {@return a copy of the shape} (records hand out their arrays otherwise). */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /**
     * Whether the shape is exactly {@code expected}.
     *
     * @param expected the dimensions
     * @return true on a match
     */
    public boolean hasShape(long... expected) {
        return Arrays.equals(shape, expected);
    }

    /**
     * Size of dimension {@code i}.
     *
     * @param i the dimension, 0-based
     * @return its size
     */
    public long dim(int i) {
        return shape[i];
    }

    /** {@return the number of dimensions} */
    public int rank() {
        return shape.length;
    }

    /** {@return the number of elements (1 for a scalar of shape [])} */
    public long numel() {
        return numel(shape);
    }

    /**
     * The product of the dimensions, overflow-checked.
     *
     * @param shape the dimensions
     * @return their product
     */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && Objects.equals(file, t.file) && dataOffset == t.dataOffset && byteLength == t.byteLength;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), file, dataOffset, byteLength);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @" + file + "[" + dataOffset + ", +" + byteLength + "]";
    }
}
