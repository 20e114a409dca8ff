package dev.rlsr.kernels;

/**
 * bfloat16 on the host: raw 16-bit patterns in {@code short}, the upper half of an IEEE binary32. Conversion to
 * float is exact; conversion from float rounds to nearest even (as torch and the CUDA kernels do), NaN stays NaN.
 */
public final class BF16 {
    private BF16() {
    }

    /**
     * Widens one bf16 value (exact).
     *
     * @param bits the bf16 bit pattern
     * @return its value as a float
     */
    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /**
     * Rounds a float to bf16, to nearest even; NaN gives a quiet NaN.
     *
     * @param f the value
     * @return the bf16 bit pattern
     */
    public static short fromFloat(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return (short) 0x7fc0; // quiet NaN
        }
        return (short) ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16);
    }

    /**
     * Widens bf16 values (exact).
     *
     * @param bits bf16 bit patterns
     * @return their values, same length
     */
    public static float[] toFloat(short[] bits) {
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = toFloat(bits[i]);
        }
        return out;
    }

    /**
     * Rounds floats to bf16, to nearest even.
     *
     * @param values the values
     * @return their bf16 bit patterns, same length
     */
    public static short[] fromFloat(float[] values) {
        short[] out = new short[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = fromFloat(values[i]);
        }
        return out;
    }

    /**
     * {@code values} rounded to bf16 and widened back: what a bf16 tensor of them holds.
     *
     * @param values the values
     * @return the rounded values, same length
     */
    public static float[] round(float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = toFloat(fromFloat(values[i]));
        }
        return out;
    }
}
