package dev.rlsr.engine.conformance;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The number-format and special-function helpers of {@link DoubleOps} against tabulated values (erf/erfc with 16
 * digits from standard tables, met to 1e-15 absolute or 1e-12 relative; bf16 and f16 bit patterns from their
 * definitions), so the references built on them are trustworthy.
 */
class DoubleOpsTest {

    @Test
    void erfMatchesTables() {
        assertEquals(0.5204998778130465, DoubleOps.erf(0.5), 1e-15);
        assertEquals(0.8427007929497149, DoubleOps.erf(1.0), 1e-15);
        assertEquals(0.9953222650189527, DoubleOps.erf(2.0), 1e-15);
        assertEquals(-0.9953222650189527, DoubleOps.erf(-2.0), 1e-15);
        assertEquals(4.069520174449590e-4, DoubleOps.erfc(2.5), 1e-13 * 4.07e-4);
        assertEquals(2.209049699858544e-5, DoubleOps.erfc(3.0), 1e-13 * 2.21e-5);
        assertEquals(1.5374597944280349e-12, DoubleOps.erfc(5.0), 1e-12 * 1.54e-12);
        assertEquals(1.9999779095030015, DoubleOps.erfc(-3.0), 1e-15);
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals(1.0f, DoubleOps.bf16(1f + 0x1p-8f)); // tie: 1.0 has the even significand
        assertEquals(1f + 0x1p-6f, DoubleOps.bf16(1f + 3 * 0x1p-8f)); // tie: 1 + 2^-6 is even
        assertEquals(1f + 0x1p-7f, DoubleOps.bf16(1f + 0x1p-8f + 0x1p-20f)); // above the tie
        assertEquals(-1.0f, DoubleOps.bf16(-(1f + 0x1p-8f)));
        assertEquals(Float.POSITIVE_INFINITY, DoubleOps.bf16(Float.MAX_VALUE)); // rounds past the largest bf16
        assertEquals(0x1.fep127f, DoubleOps.bf16(0x1.fep127f)); // the largest bf16 is kept
        assertEquals(0x1p-133f, DoubleOps.bf16(0x1.2p-133f)); // the smallest bf16 subnormal
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(DoubleOps.bf16(-0f)));
        assertEquals(3.140625f, DoubleOps.bf16((float) Math.PI)); // 0x4049 0fdb -> 0x4049
    }

    @Test
    void f16DecodesEveryClass() {
        assertEquals(1.0f, DoubleOps.f16((short) 0x3c00));
        assertEquals(0x1p-24f, DoubleOps.f16((short) 0x0001)); // smallest subnormal
        assertEquals(0x1.ff8p-15f, DoubleOps.f16((short) 0x03ff)); // largest subnormal
        assertEquals(65504f, DoubleOps.f16((short) 0x7bff)); // largest finite
        assertEquals(-2.0f, DoubleOps.f16((short) 0xc000));
        assertEquals(Float.NEGATIVE_INFINITY, DoubleOps.f16((short) 0xfc00));
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(DoubleOps.f16((short) 0x8000)));
        assertEquals(Float.NaN, DoubleOps.f16((short) 0x7e00));
    }
}
