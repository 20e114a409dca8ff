package dev.rlsr.engine.model;

import static org.junit.jupiter.api.Assertions.fail;

/** Comparisons against golden values that say what failed: case, tensor, error, first mismatching index. */
final class Check {
    private Check() {}

    /** max |got - want| <= tol over the selected elements (select null = all); NaN anywhere fails. */
    static double maxAbs(String where, float[] got, float[] want, boolean[] select, double tol) {
        if (got.length != want.length) {
            fail(where + ": length " + got.length + " != expected " + want.length);
        }
        double max = 0;
        int first = -1, argmax = -1;
        for (int i = 0; i < got.length; i++) {
            if (select != null && !select[i]) {
                continue;
            }
            double e = Math.abs((double) got[i] - want[i]);
            if (Double.isNaN(e)) {
                e = Double.POSITIVE_INFINITY;
            }
            if (e > tol && first < 0) {
                first = i;
            }
            if (e > max) {
                max = e;
                argmax = i;
            }
        }
        if (first >= 0) {
            fail(where + ": max abs error " + max + " at index " + argmax + " > " + tol + "; first mismatch at index "
                    + first + ": got " + got[first] + ", expected " + want[first]);
        }
        System.out.printf("  %-70s max abs err %.3e%n", where, max);
        return max;
    }

    /** ||got - want|| / ||want|| <= tol. */
    static double relNorm(String where, float[] got, float[] want, double tol) {
        if (got.length != want.length) {
            fail(where + ": length " + got.length + " != expected " + want.length);
        }
        double num = 0, den = 0, maxAbs = 0;
        int first = -1, argmax = -1;
        for (int i = 0; i < got.length; i++) {
            double d = (double) got[i] - want[i];
            num += d * d;
            den += (double) want[i] * want[i];
            double ad = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.abs(d);
            if (ad > maxAbs) {
                maxAbs = ad;
                argmax = i;
            }
            if (first < 0 && ad > tol * Math.max(1e-6, Math.abs(want[i]))) {
                first = i;
            }
        }
        double rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
        if (!(rel <= tol)) {
            fail(where + ": relative error ||g-ref||/||ref|| = " + rel + " > " + tol + " (max abs error " + maxAbs
                    + " at index " + argmax + "; first element off by more than " + tol + " relative at index "
                    + first + (first >= 0 ? ": got " + got[first] + ", expected " + want[first] : "") + ")");
        }
        System.out.printf("  %-70s rel err %.3e%n", where, rel);
        return rel;
    }

    static double relScalar(String where, double got, double want, double tol) {
        double rel = Math.abs(got - want) / Math.max(Math.abs(want), 1e-30);
        if (!(rel <= tol)) {
            fail(where + ": got " + got + ", expected " + want + ", relative error " + rel + " > " + tol);
        }
        System.out.printf("  %-70s %.8g vs %.8g rel err %.3e%n", where, got, want, rel);
        return rel;
    }

    /** {@code |got - want| <= tolRel * |want| + tolAbs}, printing the error. */
    static double scalar(String where, double got, double want, double tolRel, double tolAbs) {
        double err = Math.abs(got - want), tol = tolRel * Math.abs(want) + tolAbs;
        if (!(err <= tol)) {
            fail(where + ": got " + got + ", expected " + want + ", error " + err + " > " + tol + " (" + tolRel
                    + " relative + " + tolAbs + " absolute)");
        }
        System.out.printf("  %-70s %.8g vs %.8g err %.3e (tol %.3e)%n", where, got, want, err, tol);
        return err;
    }
}
