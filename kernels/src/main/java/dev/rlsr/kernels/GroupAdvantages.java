package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Group-normalised advantages of GRPO on the GPU ({@code native/cuda/group_advantages.cu}), one launch:
 * {@code rewards (P,G)} fp32 -> {@code advantages (P,G)} fp32, {@code (r - mean_g) / (std_g + eps)} with the
 * SAMPLE standard deviation (divides by G-1), or {@code r - mean_g} without std scaling (Dr. GRPO). Statistics are
 * per row (one group = the G responses of one prompt), row-major and contiguous. G = 1 gives advantage 0; a group
 * of equal rewards gives exactly 0.
 *
 * <p><b>Pointers, context, stream</b>: device addresses in the calling thread's current CUDA context, 4-byte
 * aligned, {@code rewards} and {@code advantages} separate buffers; the launch is asynchronous on {@code stream}
 * ({@code CUstream}, 0 = the legacy default stream): synchronise before reading the advantages. A warp per group
 * when G &lt;= 32, a block per group above. See the package documentation for the rules all kernels share.
 *
 * <p><b>Errors</b>: a violated precondition throws {@link IllegalArgumentException} naming the argument, before
 * anything is launched. {@link GroupAdvantagesReference} is the CPU twin.
 */
public final class GroupAdvantages {
    /** Default eps added to the std, as TRL's GRPO trainer does (1e-4). */
    public static final float DEFAULT_EPS = 1e-4f;

    static final String FILE = "group_advantages";
    private static final Kernel SMALL = Kernel.of(FILE, "group_advantages_kernel");
    private static final Kernel LARGE = Kernel.of(FILE, "group_advantages_large_kernel");
    private static final int THREADS = 256;
    private static final int GROUPS_PER_BLOCK = THREADS / 32; // one warp per group when G <= 32

    private GroupAdvantages() {
    }

    /**
     * {@code rewards (P,G)} -> {@code advantages (P,G)}, scaled by the sample std, eps {@link #DEFAULT_EPS}.
     *
     * @param rewards    device address of {@code rewards (P,G)} fp32
     * @param advantages device address of {@code advantages (P,G)} fp32, written; must not overlap {@code rewards}
     * @param p          P, groups (prompts), &gt; 0
     * @param g          G, group size (responses per prompt), &gt; 0; P*G below 2^31
     * @param stream     {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size or overlapping buffers
     */
    public static void compute(long rewards, long advantages, int p, int g, long stream) {
        compute(rewards, advantages, p, g, true, DEFAULT_EPS, stream);
    }

    /**
     * {@code rewards (P,G)} -> {@code advantages (P,G)}: {@code (r - mean_g) / (std_g + eps)}, or {@code r - mean_g}.
     *
     * @param rewards    device address of {@code rewards (P,G)} fp32
     * @param advantages device address of {@code advantages (P,G)} fp32, written; must not overlap {@code rewards}
     * @param p          P, groups (prompts), &gt; 0
     * @param g          G, group size (responses per prompt), &gt; 0; P*G below 2^31
     * @param scaleByStd true: divide by {@code std_g + eps} (GRPO); false: only subtract the mean (Dr. GRPO)
     * @param eps        added to the std, finite and &gt;= 0
     * @param stream     {@code CUstream} handle to launch on, 0 for the legacy default stream
     * @throws IllegalArgumentException for a null or misaligned pointer, a non-positive size, a bad eps or
     *                                  overlapping buffers
     */
    public static void compute(long rewards, long advantages, int p, int g, boolean scaleByStd, float eps, long stream) {
        String op = "GroupAdvantages.compute";
        Checks.positive(op, "p (groups)", p);
        Checks.positive(op, "g (group size)", g);
        int total = Checks.multiply(op, "p*g", p, g);
        Checks.pointer(op, "rewards", rewards, Float.BYTES);
        Checks.pointer(op, "advantages", advantages, Float.BYTES);
        Checks.disjoint(op, "rewards", rewards, (long) total * Float.BYTES, "advantages", advantages,
                (long) total * Float.BYTES);
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException(op + ": eps must be finite and >= 0, got " + eps);
        }
        boolean small = g <= 32;
        Kernel kernel = small ? SMALL : LARGE;
        int grid = small ? (int) (((long) p + GROUPS_PER_BLOCK - 1) / GROUPS_PER_BLOCK) : p;
        KernelArgs args = KernelArgs.local().ptr(rewards).ptr(advantages).i32(p).i32(g).i32(scaleByStd ? 1 : 0)
                .f32(eps);
        kernel.launch(grid, THREADS, stream, args);
    }
}
