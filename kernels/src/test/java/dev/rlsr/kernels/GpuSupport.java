package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.fail;

import dev.rlsr.bindings.CudaContext;
import dev.rlsr.bindings.CudaDriver;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Assumptions;

/**
 * Shared plumbing of the *GpuTest classes: one context for the JVM, device memory, poisoning, comparisons.
 *
 * <p>The device is a real GPU or the CUDA emulator ({@code -Drlsr.cuda.emulator}, which every build's tests use). With
 * {@code -Drlsr.gpu.required=true} (the GPU check; CI with the emulator) a missing device fails the test instead of
 * skipping it; a test that means nothing on the emulator skips there in any case ({@link #skipOnEmulator}).
 */
final class GpuSupport {
    /** fp32 quiet NaN: outputs are filled with it before a launch, so an element the kernel skips fails. */
    static final int NAN_BITS = 0x7fc00000;
    /** {@code -Drlsr.gpu.required=true}: a skip for a missing device is a failure. */
    static final boolean REQUIRED = Boolean.getBoolean("rlsr.gpu.required");

    private static CudaContext context; // held until the JVM exits, like CudaKernels' module cache

    private GpuSupport() {
    }

    /** Skips (or under rlsr.gpu.required fails) unless {@code ok}; {@code why} says what is missing. */
    static void requireThat(boolean ok, java.util.function.Supplier<String> why) {
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
        Assumptions.assumeFalse(CudaDriver.isEmulator(),
                () -> "runs on a real GPU only, not on the CUDA emulator: " + why);
    }

    /** Skips the test without a device (fails instead under rlsr.gpu.required); makes the test context current. */
    static synchronized void assumeGpu() {
        requireThat(CudaDriver.isAvailable(), () -> "no CUDA device: " + CudaDriver.unavailableReason());
        if (context == null) {
            context = CudaContext.open(0);
            System.out.println("GPU tests on " + context.name() + " (" + context.arch() + ")");
        } else {
            context.makeCurrent();
        }
    }

    /** Device allocations of one test, freed together. */
    static final class Mem implements AutoCloseable {
        private final List<Long> blocks = new ArrayList<>();

        long alloc(long bytes) {
            long p = CudaDriver.memAlloc(Math.max(bytes, 16));
            blocks.add(p);
            return p;
        }

        long upload(float[] x) {
            long p = alloc(4L * x.length);
            CudaDriver.memcpyHtoD(p, MemorySegment.ofArray(x), 4L * x.length);
            return p;
        }

        long upload(short[] x) {
            long p = alloc(2L * x.length);
            CudaDriver.memcpyHtoD(p, MemorySegment.ofArray(x), 2L * x.length);
            return p;
        }

        long upload(int[] x) {
            long p = alloc(4L * x.length);
            CudaDriver.memcpyHtoD(p, MemorySegment.ofArray(x), 4L * x.length);
            return p;
        }

        /** An fp32 output of n elements filled with NaN. */
        long poisonedF32(int n) {
            long p = alloc(4L * n);
            CudaDriver.memsetD32(p, NAN_BITS, n);
            return p;
        }

        @Override
        public void close() {
            CudaDriver.contextSynchronize(); // surfaces an asynchronous launch failure before the memory goes
            for (long p : blocks) {
                CudaDriver.memFree(p);
            }
            blocks.clear();
        }
    }

    static void put(long dst, float[] x) {
        CudaDriver.memcpyHtoD(dst, MemorySegment.ofArray(x), 4L * x.length);
    }

    static void put(long dst, short[] x) {
        CudaDriver.memcpyHtoD(dst, MemorySegment.ofArray(x), 2L * x.length);
    }

    static float[] getF32(long src, int n) {
        CudaDriver.contextSynchronize();
        float[] out = new float[n];
        CudaDriver.memcpyDtoH(MemorySegment.ofArray(out), src, 4L * n);
        return out;
    }

    static short[] getBf16(long src, int n) {
        CudaDriver.contextSynchronize();
        short[] out = new short[n];
        CudaDriver.memcpyDtoH(MemorySegment.ofArray(out), src, 2L * n);
        return out;
    }

    static float[] randn(Random r, int n, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * scale);
        }
        return x;
    }

    /**
     * Fails unless every |actual - expected| <= atol + rtol * |expected| (NaN never passes, equal values, infinities
     * included, always do); prints the seed and the first mismatches.
     */
    static void assertClose(String what, long seed, float[] expected, float[] actual, double atol, double rtol) {
        assertClose(what, seed, expected, actual, null, 1, atol, rtol);
    }

    /** Like above with the absolute tolerance scaled per row: atol * |atolScale[i / rowLength]|. */
    static void assertClose(String what, long seed, float[] expected, float[] actual, float[] atolScale, int rowLength,
            double atol, double rtol) {
        if (expected.length != actual.length) {
            fail(what + ": length " + actual.length + " != " + expected.length);
        }
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[i];
            double err = Math.abs(a - e);
            double tol = (atolScale == null ? atol : atol * Math.abs(atolScale[i / rowLength])) + rtol * Math.abs(e);
            boolean ok = (!Double.isNaN(a) && err <= tol) || a == e || (Double.isNaN(e) && Double.isNaN(a));
            if (!ok) {
                if (bad < 10) {
                    first.append(String.format("%n  [%d] expected %.9g got %.9g (|diff| %.3g, tolerance %.3g)", i, e, a,
                            err, tol));
                }
                bad++;
            }
        }
        if (bad > 0) {
            fail(what + " (seed " + seed + "): " + bad + " of " + expected.length + " outside the tolerance; first "
                    + "mismatches:" + first);
        }
    }
}
