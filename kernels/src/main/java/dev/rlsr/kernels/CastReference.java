package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuParallel;

/**
 * CPU reference of {@link Cast} on Java arrays ({@code (array, offset)} views): fp32 -&gt; bf16 with round to
 * nearest even ({@link BF16#fromFloat}), bf16 -&gt; fp32 exactly.
 */
public final class CastReference {
    /** Elements per parallel range: below this the hand-off costs more than the conversion. */
    private static final int GRAIN = 1 << 14;

    private CastReference() {
    }

    /**
     * {@code dst[dstOff + i] = bf16(src[srcOff + i])} for i &lt; n.
     *
     * @param src    fp32 values
     * @param srcOff first element of the view in src
     * @param dst    bf16 bits
     * @param dstOff first element of the view in dst
     * @param n      elements
     */
    public static void f32ToBf16(float[] src, int srcOff, short[] dst, int dstOff, int n) {
        Views.check("src", src.length, srcOff, n);
        Views.check("dst", dst.length, dstOff, n);
        CpuParallel.forRange(n, GRAIN, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                dst[dstOff + i] = BF16.fromFloat(src[srcOff + i]);
            }
        });
    }

    /**
     * {@code dst[dstOff + i] = float(src[srcOff + i])} for i &lt; n.
     *
     * @param src    bf16 bits
     * @param srcOff first element of the view in src
     * @param dst    fp32 values
     * @param dstOff first element of the view in dst
     * @param n      elements
     */
    public static void bf16ToF32(short[] src, int srcOff, float[] dst, int dstOff, int n) {
        Views.check("src", src.length, srcOff, n);
        Views.check("dst", dst.length, dstOff, n);
        CpuParallel.forRange(n, GRAIN, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                dst[dstOff + i] = BF16.toFloat(src[srcOff + i]);
            }
        });
    }
}
