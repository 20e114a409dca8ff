package dev.rlsr.kernels;

/** Bounds of {@code (array, offset)} views in the CPU references, with messages naming the view. */
final class Views {
    private Views() {
    }

    /** The view [off, off + count) must lie inside an array of {@code length} elements. */
    static void check(String name, int length, int off, long count) {
        if (off < 0 || count < 0 || off + count > length) {
            throw new IllegalArgumentException(name + ": view of " + count + " elements at offset " + off
                    + " does not fit an array of " + length);
        }
    }

    /** bf16 bits of a view widened to a new float array (exact). */
    static float[] widen(short[] bits, int off, int count) {
        check("bf16 input", bits.length, off, count);
        float[] out = new float[count];
        for (int i = 0; i < count; i++) {
            out[i] = BF16.toFloat(bits[off + i]);
        }
        return out;
    }

    /** {@code values} rounded to bf16 into the view {@code bits[off, off + values.length)}. */
    static void narrow(float[] values, short[] bits, int off) {
        check("bf16 output", bits.length, off, values.length);
        for (int i = 0; i < values.length; i++) {
            bits[off + i] = BF16.fromFloat(values[i]);
        }
    }
}
