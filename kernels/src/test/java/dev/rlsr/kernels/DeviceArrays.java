package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.fail;

import dev.rlsr.bindings.CudaDriver;

import java.lang.foreign.MemorySegment;

/**
 * Device views for the *GpuTest classes of the transformer ops: an allocation filled with 0xff bytes (NaN in fp32
 * and bf16, -1 in int32) holding a view that starts {@code shift} bytes in (so views sit off 16-byte boundaries) and
 * has at least 16 guard bytes after it; {@link Buf#assertGuards} then proves the kernel wrote nothing outside its
 * view.
 */
final class DeviceArrays {
    private static final int GUARD = 32;

    private DeviceArrays() {
    }

    /** A view of {@code bytes} at {@code base + shift} inside an allocation of {@code allocBytes}. */
    record Buf(long base, long allocBytes, long addr, long bytes) {
        /** Fails if any byte before or after the view changed from 0xff. */
        void assertGuards(String what) {
            CudaDriver.contextSynchronize();
            byte[] all = new byte[(int) allocBytes];
            CudaDriver.memcpyDtoH(MemorySegment.ofArray(all), base, allocBytes);
            long head = addr - base;
            for (long i = 0; i < allocBytes; i++) {
                if ((i < head || i >= head + bytes) && all[(int) i] != (byte) 0xff) {
                    fail(what + ": byte " + (i - head) + " relative to the view (of " + bytes + ") was written");
                }
            }
        }

        float[] f32() {
            return GpuSupport.getF32(addr, (int) (bytes / 4));
        }

        short[] bf16() {
            return GpuSupport.getBf16(addr, (int) (bytes / 2));
        }

        int[] i32() {
            CudaDriver.contextSynchronize();
            int[] out = new int[(int) (bytes / 4)];
            CudaDriver.memcpyDtoH(MemorySegment.ofArray(out), addr, bytes);
            return out;
        }

        /** The view as floats: fp32 directly, bf16 widened. */
        float[] floats(DType dtype) {
            return dtype == DType.F32 ? f32() : BF16.toFloat(bf16());
        }
    }

    /** A NaN-poisoned (0xff) view of {@code bytes} starting {@code shift} bytes into its allocation. */
    static Buf poisoned(GpuSupport.Mem m, long bytes, int shift) {
        long alloc = shift + bytes + GUARD;
        long base = m.alloc(alloc);
        CudaDriver.memsetD8(base, (byte) 0xff, alloc);
        return new Buf(base, alloc, base + shift, bytes);
    }

    static Buf upload(GpuSupport.Mem m, float[] x, int shift) {
        Buf b = poisoned(m, 4L * x.length, shift);
        CudaDriver.memcpyHtoD(b.addr(), MemorySegment.ofArray(x), 4L * x.length);
        return b;
    }

    static Buf upload(GpuSupport.Mem m, short[] x, int shift) {
        Buf b = poisoned(m, 2L * x.length, shift);
        CudaDriver.memcpyHtoD(b.addr(), MemorySegment.ofArray(x), 2L * x.length);
        return b;
    }

    static Buf upload(GpuSupport.Mem m, int[] x, int shift) {
        Buf b = poisoned(m, 4L * x.length, shift);
        CudaDriver.memcpyHtoD(b.addr(), MemorySegment.ofArray(x), 4L * x.length);
        return b;
    }

    /** Activations as fp32 or as bf16 bits (rounded to nearest even). */
    static Buf upload(GpuSupport.Mem m, float[] x, DType dtype, int shift) {
        return dtype == DType.F32 ? upload(m, x, shift) : upload(m, BF16.fromFloat(x), shift);
    }

    /** Overwrites the view with new contents (same size). */
    static void put(Buf b, float[] x, DType dtype) {
        if (dtype == DType.F32) {
            CudaDriver.memcpyHtoD(b.addr(), MemorySegment.ofArray(x), 4L * x.length);
        } else {
            short[] s = BF16.fromFloat(x);
            CudaDriver.memcpyHtoD(b.addr(), MemorySegment.ofArray(s), 2L * s.length);
        }
    }

    /** What a tensor of dtype holds for these values: fp32 as is, bf16 rounded. */
    static float[] held(float[] x, DType dtype) {
        return dtype == DType.F32 ? x.clone() : BF16.round(x);
    }

    /** Fails unless the values are equal (NaN equals NaN, -0 equals +0), naming the first differences. */
    static void assertSameValues(String what, long seed, float[] expected, float[] actual) {
        GpuSupport.assertClose(what, seed, expected, actual, 0, 0);
    }

    /** Fails unless |actual - expected| &lt;= tol[i] everywhere (NaN only matches NaN), naming the first misses. */
    static void assertWithin(String what, long seed, float[] expected, float[] actual, double[] tol) {
        if (expected.length != actual.length) {
            fail(what + ": length " + actual.length + " != " + expected.length);
        }
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[i], err = Math.abs(a - e);
            boolean ok = (!Double.isNaN(a) && err <= tol[i]) || a == e || (Double.isNaN(e) && Double.isNaN(a));
            if (!ok) {
                if (bad++ < 10) {
                    first.append(String.format("%n  [%d] expected %.9g got %.9g (|diff| %.3g, tolerance %.3g)", i, e, a,
                            err, tol[i]));
                }
            }
        }
        if (bad > 0) {
            fail(what + " (seed " + seed + "): " + bad + " of " + expected.length + " outside the tolerance; first:"
                    + first);
        }
    }

    /** Bits of bf16 values as ints, for exact comparisons. */
    static int[] ints(short[] bits) {
        int[] out = new int[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = bits[i] & 0xffff;
        }
        return out;
    }

    /** Bits of floats as ints, for exact comparisons (NaN payloads and the sign of zero included). */
    static int[] ints(float[] values) {
        int[] out = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = Float.floatToRawIntBits(values[i]);
        }
        return out;
    }

    static void assertSameInts(String what, long seed, int[] expected, int[] actual) {
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != actual[i]) {
                if (bad++ < 10) {
                    first.append(String.format("%n  [%d] expected %d got %d", i, expected[i], actual[i]));
                }
            }
        }
        if (bad > 0) {
            fail(what + " (seed " + seed + "): " + bad + " of " + expected.length + " differ; first:" + first);
        }
    }
}
