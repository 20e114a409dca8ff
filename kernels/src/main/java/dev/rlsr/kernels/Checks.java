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
