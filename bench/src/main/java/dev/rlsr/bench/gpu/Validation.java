package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;

import java.lang.foreign.MemorySegment;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Validate first, then time: the checks every GPU benchmark runs in its setup before any timing. */
final class Validation {
    private Validation() {
    }

    /**
     * Throws, naming the first mismatches, unless {@code |got - ref| <= atol + rtol * |ref|} everywhere (NaN never
     * passes). Returns the largest absolute error.
     */
    static double assertClose(String what, float[] got, float[] ref, double atol, double rtol) {
        if (got.length != ref.length) {
            throw new IllegalStateException(what + ": " + got.length + " values, reference has " + ref.length);
        }
        double maxErr = 0;
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < got.length; i++) {
            double err = Math.abs((double) got[i] - ref[i]);
            boolean ok = err <= atol + rtol * Math.abs(ref[i]); // false for NaN
            if (!ok) {
                if (bad < 5) {
                    first.append(String.format(Locale.ROOT, " [%d] got %s ref %s;", i, got[i], ref[i]));
                }
                bad++;
            }
            if (!Double.isNaN(err)) {
                maxErr = Math.max(maxErr, err);
            }
        }
        if (bad > 0) {
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "%s: %d of %d values outside |out-ref| <= %.1e + %.1e*|ref|:%s", what, bad, got.length, atol, rtol,
                    first));
        }
        return maxErr;
    }

    /** Throws unless every value is finite (an unwritten, NaN-poisoned output fails here). */
    static void assertFinite(String what, float[] v) {
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new IllegalStateException(what + "[" + i + "] = " + v[i] + ": output not written or not finite");
            }
        }
    }

    static float[] floats(long dptr, int count) {
        float[] out = new float[count];
        CudaDriver.memcpyDtoH(MemorySegment.ofArray(out), dptr, 4L * count);
        return out;
    }

    static short[] shorts(long dptr, int count) {
        short[] out = new short[count];
        CudaDriver.memcpyDtoH(MemorySegment.ofArray(out), dptr, 2L * count);
        return out;
    }

    /** Row indices that cover both ends and the middle of {@code n} rows, plus a few seeded random ones. */
    static int[] sampleRows(int n, long seed) {
        java.util.Random r = new java.util.Random(seed);
        return java.util.stream.IntStream.of(0, 1, n / 2, n - 1, r.nextInt(n), r.nextInt(n))
                .filter(i -> i >= 0 && i < n).distinct().toArray();
    }

    /** Parses a workload name such as "N8192_V151936_bf16" into its integer fields, in order. */
    static int[] dims(String workload, String... names) {
        int[] out = new int[names.length];
        for (int i = 0; i < names.length; i++) {
            Matcher m = Pattern.compile("(?:^|_)" + names[i] + "(\\d+)(?:_|$)").matcher(workload);
            if (!m.find()) {
                throw new IllegalArgumentException("workload '" + workload + "' has no " + names[i] + "<number>");
            }
            out[i] = Integer.parseInt(m.group(1));
        }
        return out;
    }
}
