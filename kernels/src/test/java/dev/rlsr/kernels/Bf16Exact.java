package dev.rlsr.kernels;

/**
 * Independent bf16 arithmetic for the tests: round to nearest even by comparing the distances to the two neighbouring
 * bf16 values in double (not the bit trick of {@link BF16#fromFloat}), and the value of bf16 bits from sign, exponent
 * and mantissa.
 */
final class Bf16Exact {
    private Bf16Exact() {
    }

    /** The bf16 nearest to f, ties to the even mantissa; overflow past the largest bf16 gives inf; NaN gives 0x7fc0. */
    static short nearest(float f) {
        if (Float.isNaN(f)) {
            return (short) 0x7fc0;
        }
        int sign = (Float.floatToRawIntBits(f) >>> 16) & 0x8000;
        float a = Math.abs(f);
        if (Float.isInfinite(a)) {
            return (short) (sign | 0x7f80);
        }
        int t = Float.floatToRawIntBits(a) & 0xffff0000; // the bf16 at or below |f|
        double lo = Float.intBitsToFloat(t);
        int up = t + 0x10000;
        double hi = up == 0x7f800000 ? Math.scalb(1.0, 128) : Float.intBitsToFloat(up); // past the largest: 2^128
        double dLo = a - lo, dHi = hi - a; // exact: all three are floats within a factor 2 of each other
        int pick;
        if (dLo < dHi) {
            pick = t;
        } else if (dHi < dLo) {
            pick = up;
        } else {
            pick = ((t >>> 16) & 1) == 0 ? t : up;
        }
        return (short) (sign | (pick >>> 16));
    }

    /** The value of bf16 bits, from sign, exponent and mantissa. */
    static double value(short bits) {
        int b = bits & 0xffff;
        int sign = b >>> 15, exp = (b >>> 7) & 0xff, man = b & 0x7f;
        double v;
        if (exp == 0xff) {
            v = man == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
        } else if (exp == 0) {
            v = Math.scalb((double) man, -126 - 7);
        } else {
            v = Math.scalb(128.0 + man, exp - 127 - 7);
        }
        return sign == 1 ? -v : v;
    }

    static float[] values(short[] bits) {
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = (float) value(bits[i]);
        }
        return out;
    }

    static short[] nearest(float[] f) {
        short[] out = new short[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = nearest(f[i]);
        }
        return out;
    }
}
