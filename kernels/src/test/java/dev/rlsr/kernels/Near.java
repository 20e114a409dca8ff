package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;

/**
 * Comparisons of fp32 results with double-precision expectations, for the *ReferenceTest and *GpuTest classes.
 * {@code -Drlsr.test.worst=true} prints each comparison's worst relative error (what the tolerances were set from).
 */
final class Near {
    private Near() {
    }

    /**
     * Fails unless {@code |actual[i] - expected[i]| <= rtol * scale[i]} for every i, with {@code scale[i]} the size of
     * the terms the value is computed from (null: {@code |expected[i]|}); NaN never passes. Prints the seed and the
     * first mismatches.
     */
    static void assertNear(String what, long seed, double[] expected, double[] scale, float[] actual, double rtol) {
        if (expected.length != actual.length) {
            fail(what + ": length " + actual.length + " != " + expected.length);
        }
        int bad = 0;
        double worst = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < expected.length; i++) {
            double s = scale == null ? Math.abs(expected[i]) : scale[i];
            double err = Math.abs(actual[i] - expected[i]);
            boolean ok = err <= rtol * s || actual[i] == expected[i];
            if (s > 0) {
                worst = Math.max(worst, err / s);
            }
            if (!ok) {
                if (bad < 10) {
                    first.append(String.format("%n  [%d] expected %.9g got %.9g (|diff| %.3g, tolerance %.3g)", i,
                            expected[i], actual[i], err, rtol * s));
                }
                bad++;
            }
        }
        if (Boolean.getBoolean("rlsr.test.worst")) {
            System.out.printf("[worst] %-50s %.3g (rtol %.3g)%n", what, worst, rtol);
        }
        if (bad > 0) {
            fail(what + " (seed " + seed + "): " + bad + " of " + expected.length + " outside rtol " + rtol
                    + " (worst relative error " + worst + "); first mismatches:" + first);
        }
    }

    static float[] randn(Random r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * scale);
        }
        return x;
    }

    /** {@code x} copied to offset {@code off} of a larger array whose other elements are NaN (a view must not read them). */
    static float[] embed(float[] x, int off) {
        float[] y = new float[x.length + off + 3];
        java.util.Arrays.fill(y, Float.NaN);
        System.arraycopy(x, 0, y, off, x.length);
        return y;
    }

    static float[] slice(float[] y, int off, int n) {
        return java.util.Arrays.copyOfRange(y, off, off + n);
    }

    static double[] abs(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = Math.abs(x[i]);
        }
        return y;
    }
}
