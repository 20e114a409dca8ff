package dev.rlsr.kernels;

/** Host-side preconditions of the kernel launchers, with messages that name the argument and the fix. */
final class Checks {
    private Checks() {
    }

    static void pointer(String op, String name, long address, int alignment) {
        if (address == 0) {
            throw new IllegalArgumentException(op + ": " + name + " is a null device pointer");
        }
        if (address % alignment != 0) {
            throw new IllegalArgumentException(op + ": " + name + " (0x" + Long.toHexString(address)
                    + ") must be aligned to " + alignment + " bytes, the size of its element");
        }
    }

    static void positive(String op, String name, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(op + ": " + name + " must be positive, got " + value);
        }
    }

    static void positive(String op, String name, long value) {
        if (value <= 0) {
            throw new IllegalArgumentException(op + ": " + name + " must be positive, got " + value);
        }
    }

    static void nonNegative(String op, String name, int value) {
        if (value < 0) {
            throw new IllegalArgumentException(op + ": " + name + " must be >= 0, got " + value);
        }
    }

    /** An activation dtype: F32 or BF16. */
    static void activation(String op, DType dtype) {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": dtype must be F32 or BF16, got " + dtype);
        }
    }

    /**
     * Blocks of a grid-stride launch: enough for {@code items} work items of {@code perBlock} each, at most
     * {@link #MAX_GRID} (the kernels loop over whatever is left), at least 1.
     */
    static int gridStride(long items, int perBlock) {
        return (int) Math.max(1, Math.min(MAX_GRID, (items + perBlock - 1) / perBlock));
    }

    /** A grid-stride launch never needs more blocks than this (an H200 holds about 2k resident 256-thread blocks). */
    static final int MAX_GRID = 1 << 16;

    /** Blocks for one work item per thread (or per warp, ...): fails rather than truncate past 2^31-1 blocks. */
    static int grid(String op, long items, int perBlock) {
        long blocks = (items + perBlock - 1) / perBlock;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(op + ": " + items + " work items need more than 2^31-1 blocks; split the call");
        }
        return (int) Math.max(1, blocks);
    }

    /** The activation dtype of a kernel: F32 or BF16 (each kernel has exactly these two variants). */
    static void dtype(String op, DType dtype) {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException(op + ": dtype must be F32 or BF16, got " + dtype);
        }
    }

    /** Two device ranges [a, a+aBytes) and [b, b+bBytes) must not share a byte. */
    static void disjoint(String op, String aName, long a, long aBytes, String bName, long b, long bBytes) {
        if (a < b + bBytes && b < a + aBytes) {
            throw new IllegalArgumentException(op + ": " + aName + " and " + bName + " overlap; give them separate buffers");
        }
    }

    static int multiply(String op, String what, int x, int y) {
        long r = (long) x * y;
        if (r > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(op + ": " + what + " = " + x + " * " + y + " exceeds 2^31-1 rows; split the batch");
        }
        return (int) r;
    }

    /** A device pointer that may be 0 ("absent"); when present, aligned like {@link #pointer}. */
    static void optionalPointer(String op, String name, long address, int alignment) {
        if (address != 0) {
            pointer(op, name, address, alignment);
        }
    }

    static void finite(String op, String name, float value) {
        if (!Float.isFinite(value)) {
            throw new IllegalArgumentException(op + ": " + name + " must be finite, got " + value);
        }
    }

    /** {@code out} is either {@code in} itself (in place) or a range that does not overlap it. */
    static void sameOrDisjoint(String op, String outName, long out, String inName, long in, long bytes) {
        if (out != in) {
            disjoint(op, outName, out, bytes, inName, in, bytes);
        }
    }
}
