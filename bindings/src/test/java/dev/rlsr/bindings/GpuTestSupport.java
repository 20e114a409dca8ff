package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.util.SplittableRandom;
import java.util.function.Supplier;

import org.junit.jupiter.api.Assumptions;

/**
 * Shared helpers of the *GpuTest classes: skipping, seeded inputs, bf16 rounding, CPU references, tolerances.
 *
 * <p>A device is a real GPU or the CUDA emulator ({@code -Drlsr.cuda.emulator}, which every build's tests use). With
 * {@code -Drlsr.gpu.required=true} (the GPU check; CI with the emulator) a missing device or library fails the test
 * instead of skipping it. A test that means nothing on the emulator skips there in any case ({@link #skipOnEmulator}).
 */
final class GpuTestSupport {
    /** {@code -Drlsr.gpu.required=true}: a skip for a missing device or library is a failure. */
    static final boolean REQUIRED = Boolean.getBoolean("rlsr.gpu.required");

    private GpuTestSupport() {}

    /** Skips the calling test class when no CUDA device is usable (fails instead under rlsr.gpu.required). */
    static void requireGpu() {
        requireThat(CudaDriver.isAvailable(), () -> "no usable CUDA device: " + CudaDriver.unavailableReason());
    }

    /** Skips (or under rlsr.gpu.required fails) unless {@code ok}; {@code why} says what is missing. */
    static void requireThat(boolean ok, Supplier<String> why) {
        if (ok) {
            return;
        }
        if (REQUIRED) {
            fail(why.get() + " (-Drlsr.gpu.required=true turns this skip into a failure)");
        }
        Assumptions.abort(why.get() + ", skipping");
    }

    /** Skips on the CUDA emulator, whatever rlsr.gpu.required says: the test only means something on a GPU. */
    static void skipOnEmulator(String why) {
        assumeFalse(CudaDriver.isEmulator(), () -> "runs on a real GPU only, not on the CUDA emulator: " + why);
    }

    static float[] random(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return out;
    }

    /** fp32 -> bf16 bits, round to nearest even (what __float2bfloat16 does for finite values). */
    static short toBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        u += 0x7fff + ((u >>> 16) & 1);
        return (short) (u >>> 16);
    }

    static float fromBf16(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    static short[] toBf16(float[] x) {
        short[] out = new short[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = toBf16(x[i]);
        }
        return out;
    }

    static float[] fromBf16(short[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = fromBf16(x[i]);
        }
        return out;
    }

    /** Column-major {@code C (m,n) = alpha op(A) op(B) + beta C} in double, the reference for every GEMM test. */
    static float[] gemmReference(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int lda,
            float[] b, int ldb, float beta, float[] c, int ldc) {
        float[] out = c.clone();
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    double av = transA ? a[p + i * lda] : a[i + p * lda];
                    double bv = transB ? b[j + p * ldb] : b[p + j * ldb];
                    acc += av * bv;
                }
                out[i + j * ldc] = (float) (alpha * acc + beta * c[i + j * ldc]);
            }
        }
        return out;
    }

    /** {@code |out-ref| <= atol + rtol*|ref|} everywhere; NaN fails; prints the first mismatches and the seed. */
    static void assertClose(String what, float[] ref, float[] out, double atol, double rtol, long seed) {
        if (ref.length != out.length) {
            fail(what + ": length " + out.length + " != " + ref.length);
        }
        StringBuilder bad = new StringBuilder();
        int count = 0;
        for (int i = 0; i < ref.length; i++) {
            double diff = Math.abs((double) out[i] - ref[i]);
            if (!(diff <= atol + rtol * Math.abs(ref[i]))) {
                if (count++ < 8) {
                    bad.append(String.format("%n  [%d] out=%s ref=%s diff=%.3g", i, out[i], ref[i], diff));
                }
            }
        }
        if (count > 0) {
            fail(String.format("%s: %d of %d elements outside atol=%.1g rtol=%.1g (seed %d):%s", what, count,
                    ref.length, atol, rtol, seed, bad));
        }
    }
}
