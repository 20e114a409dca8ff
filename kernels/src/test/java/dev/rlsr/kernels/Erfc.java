package dev.rlsr.kernels;

/** erfc in double for the GELU tests, independent of the code under test: a Taylor series and a continued fraction. */
final class Erfc {
    private Erfc() {
    }

    static double erfc(double z) {
        if (z < 0) {
            return 2 - erfc(-z);
        }
        if (z < 2) {
            // erf(z) = 2/sqrt(pi) sum_n (-1)^n z^(2n+1) / (n! (2n+1)); terms peak near 3 at z = 2: ~1e-15 absolute
            double term = z, sum = z;
            for (int k = 1; k < 80; k++) {
                term *= -z * z / k;
                sum += term / (2 * k + 1);
            }
            return 1 - 2 / Math.sqrt(Math.PI) * sum;
        }
        // erfc(z) = exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + ...))))), evaluated from the tail
        double f = z;
        for (int k = 400; k >= 1; k--) {
            f = z + (k / 2.0) / f;
        }
        return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
    }

    /** x * Phi(x) in double. */
    static double gelu(double x) {
        return x * 0.5 * erfc(-x / Math.sqrt(2));
    }
}
