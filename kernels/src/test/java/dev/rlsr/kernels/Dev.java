package dev.rlsr.kernels;

import dev.rlsr.bindings.CudaDriver;

import java.lang.foreign.MemorySegment;

/**
 * Device views for the *GpuTest classes of the row-wise ops: activations of either dtype uploaded at an element
 * offset (offset 1 puts every row of an odd width off its 16-byte boundary, so the kernels' scalar paths run),
 * outputs poisoned with NaN bytes, and the comparison of an activation output with its reference.
 */
final class Dev {
    /** One bf16 ulp relative to the value (the most two roundings of nearby fp32 results to bf16 can differ). */
    static final double BF16_ULP = 0x1p-7;

    private Dev() {
    }

    /** {@code x} rounded to what a tensor of dtype {@code t} holds, as floats. */
    static float[] held(float[] x, DType t) {
        return t == DType.F32 ? x.clone() : BF16.round(x);
    }

    /** Uploads {@code x} (rounded to bf16 for BF16) at element offset {@code off} of a fresh allocation. */
    static long act(GpuSupport.Mem m, float[] x, DType t, int off) {
        long base = m.alloc((long) (x.length + off) * t.bytes());
        long p = base + (long) off * t.bytes();
        if (t == DType.F32) {
            CudaDriver.memcpyHtoD(p, MemorySegment.ofArray(x), 4L * x.length);
        } else {
            short[] b = BF16.fromFloat(x);
            CudaDriver.memcpyHtoD(p, MemorySegment.ofArray(b), 2L * b.length);
        }
        return p;
    }

    /** {@code n} elements of dtype {@code t} at element offset {@code off}, every byte 0xff (NaN in fp32 and bf16). */
    static long poisoned(GpuSupport.Mem m, long n, DType t, int off) {
        long bytes = n * t.bytes();
        long base = m.alloc(bytes + (long) off * t.bytes());
        long p = base + (long) off * t.bytes();
        CudaDriver.memsetD8(p, (byte) 0xff, bytes);
        return p;
    }

    static float[] read(long p, int n, DType t) {
        return t == DType.F32 ? GpuSupport.getF32(p, n) : BF16.toFloat(GpuSupport.getBf16(p, n));
    }

    static void write(long p, float[] x, DType t) {
        if (t == DType.F32) {
            GpuSupport.put(p, x);
        } else {
            GpuSupport.put(p, BF16.fromFloat(x));
        }
    }

    /**
     * An activation output against its reference (computed on the same held inputs): {@code |got - ref| <=
     * rtol32 * terms + (bf16 ? 2^-7 |ref| : 0)}, with {@code terms} the size of the terms the value is computed from
     * (null: |ref|). The fp32 results of device and CPU differ by rtol32 * terms (summation order, fast exponentials);
     * rounding both to bf16 can put them one bf16 ulp apart.
     */
    static void assertAct(String what, long seed, float[] ref, float[] got, double[] terms, double rtol32, DType t) {
        double[] e = new double[ref.length], s = new double[ref.length];
        for (int i = 0; i < ref.length; i++) {
            e[i] = ref[i];
            s[i] = (terms == null ? Math.abs(ref[i]) : terms[i])
                    + (t == DType.BF16 ? BF16_ULP * Math.abs(ref[i]) / rtol32 : 0);
        }
        Near.assertNear(what, seed, e, s, got, rtol32);
    }
}
