package dev.rlsr.kernels.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import jdk.incubator.vector.FloatVector;

import org.junit.jupiter.api.Test;

/**
 * {@link CpuVec#exp} against {@link StrictMath#exp} in double, and {@link CpuVec#sum} against the pairwise order it
 * documents. Tolerance of exp: 1.02 ulp of the result (the error of the range reduction plus the Cephes polynomial,
 * each step rounded; measured 1.010 ulp at most over every float in [-110, 90]).
 */
class CpuVecTest {
    private static final double EXP_ULPS = 1.02;

    /** Error of {@code got} in units of the last place of the float nearest the exact value. */
    private static double ulps(float got, double exact) {
        // Math.ulp of 0 and of subnormals is the smallest subnormal
        return Math.abs(got - exact) / Math.ulp((float) exact);
    }

    @Test
    void expIsWithinOneUlpOverItsRange() {
        double worst = 0;
        float worstX = 0;
        int checked = 0;
        // every 61st float of both signs up to |x| = 110: normal, subnormal and overflowing results
        for (int sign = 0; sign < 2; sign++) {
            for (int bits = 0; ; bits += 61) {
                float x = Float.intBitsToFloat(bits);
                if (x > 110f) {
                    break;
                }
                x = sign == 0 ? x : -x;
                float got = CpuVec.exp(x);
                double exact = StrictMath.exp(x);
                if (exact > Float.MAX_VALUE) {
                    // beyond the largest float the correctly rounded result is +inf, or MAX_VALUE right at the edge
                    assertTrue(got == Float.POSITIVE_INFINITY || (float) exact == got, "exp(" + x + ") = " + got);
                    continue;
                }
                double e = ulps(got, exact);
                if (e > worst) {
                    worst = e;
                    worstX = x;
                }
                checked++;
            }
        }
        assertTrue(worst <= EXP_ULPS, "exp error " + worst + " ulp at x = " + worstX + " (" + checked + " checked)");
    }

    @Test
    void expSpecialValues() {
        assertEquals(1f, CpuVec.exp(0f));
        assertEquals(1f, CpuVec.exp(-0f));
        assertTrue(Float.isNaN(CpuVec.exp(Float.NaN)));
        assertEquals(Float.POSITIVE_INFINITY, CpuVec.exp(Float.POSITIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, CpuVec.exp(89f));
        assertEquals(0f, CpuVec.exp(Float.NEGATIVE_INFINITY));
        assertEquals(0f, CpuVec.exp(-104f));
        assertEquals(0f, CpuVec.exp(-1e30f));
        // the largest finite result and the smallest subnormal one
        assertTrue(Float.isFinite(CpuVec.exp(88.72f)) && CpuVec.exp(88.72f) > 3.3e38f);
        assertTrue(CpuVec.exp(-103.2f) > 0f);
    }

    /** The vector exp is the scalar exp lane by lane, bit for bit, so a loop's tail agrees with its lanes. */
    @Test
    void vectorExpEqualsScalarExpBitForBit() {
        Random r = new Random(5);
        float[] x = new float[CpuVec.L * 4096];
        for (int i = 0; i < x.length; i++) {
            x[i] = switch (i % 4) {
                case 0 -> (float) r.nextGaussian() * 5;
                case 1 -> r.nextFloat() * 200 - 110;
                case 2 -> (float) r.nextGaussian() * 1e-3f;
                default -> Float.intBitsToFloat(r.nextInt());
            };
        }
        float[] out = new float[CpuVec.L];
        for (int i = 0; i < x.length; i += CpuVec.L) {
            CpuVec.exp(FloatVector.fromArray(CpuVec.S, x, i)).intoArray(out, 0);
            for (int j = 0; j < CpuVec.L; j++) {
                float s = CpuVec.exp(x[i + j]);
                assertTrue(Float.floatToRawIntBits(s) == Float.floatToRawIntBits(out[j]) || Float.isNaN(s)
                        && Float.isNaN(out[j]), "lane " + j + " of exp(" + x[i + j] + "): vector " + out[j]
                        + ", scalar " + s);
            }
        }
    }

    /** sum adds lane i to lane i + L/2, then halves again: the order computed here by hand, then checked in double. */
    @Test
    void sumAddsTheLanesPairwise() {
        Random r = new Random(9);
        float[] v = new float[CpuVec.L];
        for (int t = 0; t < 1000; t++) {
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) r.nextGaussian() * (t % 2 == 0 ? 1f : 1e4f);
            }
            float[] w = v.clone();
            for (int h = CpuVec.L / 2; h >= 1; h /= 2) {
                for (int i = 0; i < h; i++) {
                    w[i] = w[i] + w[i + h];
                }
            }
            float got = CpuVec.sum(FloatVector.fromArray(CpuVec.S, v, 0));
            assertEquals(Float.floatToRawIntBits(w[0]), Float.floatToRawIntBits(got), "trial " + t);
            double exact = 0, abs = 0;
            for (float x : v) {
                exact += x;
                abs += Math.abs(x);
            }
            // log2(L) roundings, each at most 2^-24 of a partial sum bounded by sum |v|
            int levels = Integer.numberOfTrailingZeros(CpuVec.L);
            assertTrue(Math.abs(got - exact) <= levels * 0x1p-24 * abs, "trial " + t + ": " + got + " vs " + exact);
        }
    }

    @Test
    void sumExpAndExpScaledUseTheSameExp() {
        Random r = new Random(11);
        for (int n : new int[] {1, 15, 16, 17, 255, 1000}) {
            float[] a = new float[n + 2];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) r.nextGaussian() * 4;
            }
            float shift = 1.5f;
            double s = CpuVec.sumExp(a, 1, n, shift);
            double exact = 0;
            for (int i = 0; i < n; i++) {
                exact += StrictMath.exp(a[1 + i] - (double) shift);
            }
            // each term within ~1 ulp (plus the rounding of a - shift), summed in float lanes: n * 2^-23 relative
            assertEquals(exact, s, exact * (n + 4) * 0x1p-23, "sumExp n=" + n);
            float[] out = new float[n + 2];
            CpuVec.expScaled(a, 1, out, 1, n, shift, 0.5f);
            for (int i = 0; i < n; i++) {
                assertEquals(0.5f * CpuVec.exp(a[1 + i] - shift), out[1 + i], "expScaled n=" + n + " i=" + i);
            }
            assertEquals(0f, out[0]);
            assertEquals(0f, out[n + 1]);
        }
    }
}
