package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * fp32 &lt;-&gt; bf16 conversion of {@code n} elements on the device ({@code native/cuda/cast.cu}): the bf16 compute
 * copy of the weights, uploads and downloads. fp32 -&gt; bf16 rounds to nearest even (as torch and
 * {@link BF16#fromFloat}), NaN stays a quiet NaN; bf16 -&gt; fp32 is exact. Any element-aligned addresses (views at
 * any offset); 16-byte vectors where both sides allow. Source and destination must not overlap. Launches are
 * asynchronous on {@code stream}. {@link CastReference} is the CPU twin.
 */
public final class Cast {
    static final String FILE = "cast";
    private static final Kernel TO_BF16 = Kernel.of(FILE, "cast_f32_to_bf16_kernel");
    private static final Kernel TO_F32 = Kernel.of(FILE, "cast_bf16_to_f32_kernel");
    private static final int THREADS = 256;
    /** Elements per thread and grid-stride step (one 16-byte bf16 vector). */
    private static final int PER_THREAD = 8;

    private Cast() {
    }

    /**
     * {@code dst[i] = bf16(src[i])} for i &lt; n.
     *
     * @param src    fp32 source (n), 4-byte aligned
     * @param dst    bf16 destination (n), 2-byte aligned, disjoint from src
     * @param n      elements, &gt; 0
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void f32ToBf16(long src, long dst, long n, long stream) {
        String op = "Cast.f32ToBf16";
        check(op, src, 4, dst, 2, n);
        launch(TO_BF16, src, dst, n, stream);
    }

    /**
     * {@code dst[i] = float(src[i])} for i &lt; n (exact).
     *
     * @param src    bf16 source (n), 2-byte aligned
     * @param dst    fp32 destination (n), 4-byte aligned, disjoint from src
     * @param n      elements, &gt; 0
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     */
    public static void bf16ToF32(long src, long dst, long n, long stream) {
        String op = "Cast.bf16ToF32";
        check(op, src, 2, dst, 4, n);
        launch(TO_F32, src, dst, n, stream);
    }

    private static void check(String op, long src, int srcBytes, long dst, int dstBytes, long n) {
        Checks.positive(op, "n (elements)", n);
        Checks.pointer(op, "src", src, srcBytes);
        Checks.pointer(op, "dst", dst, dstBytes);
        Checks.disjoint(op, "src", src, n * srcBytes, "dst", dst, n * dstBytes);
    }

    private static void launch(Kernel kernel, long src, long dst, long n, long stream) {
        kernel.launch(Checks.gridStride(n, THREADS * PER_THREAD), THREADS, stream,
                KernelArgs.local().ptr(src).ptr(dst).i64(n));
    }
}
