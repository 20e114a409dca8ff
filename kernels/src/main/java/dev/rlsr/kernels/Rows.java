package dev.rlsr.kernels;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/** Runs independent rows of a CPU reference, on the common fork-join pool when there is enough work. */
final class Rows {
    /** Below this many element operations the fork-join hand-off costs more than it saves. */
    private static final long PARALLEL_WORK = 1L << 16;

    private Rows() {
    }

    static void forEach(int rows, long workPerRow, IntConsumer row) {
        if (rows > 1 && workPerRow * rows >= PARALLEL_WORK) {
            IntStream.range(0, rows).parallel().forEach(row);
        } else {
            for (int r = 0; r < rows; r++) {
                row.accept(r);
            }
        }
    }

    static void checkLength(String name, int actual, long expected, String shape) {
        if (actual != expected) {
            throw new IllegalArgumentException(name + " " + shape + " needs " + expected + " elements, got " + actual);
        }
    }

    static void checkPositive(String name, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + " must be positive, got " + value);
        }
    }

    /** {@code array[offset, offset + count)} must exist: the view of a CPU tensor inside a larger array. */
    static void checkRange(String name, int length, int offset, long count, String shape) {
        if (offset < 0 || count < 0 || offset + count > length) {
            throw new IllegalArgumentException(name + " " + shape + " needs " + count + " elements from offset " + offset
                    + ", but the array has " + length);
        }
    }
}
