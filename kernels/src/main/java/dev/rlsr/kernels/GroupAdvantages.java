package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * Group-normalised advantages on the GPU ({@code native/cuda/group_advantages.cu}), one launch:
 * rewards (P,G) fp32 -> advantages (P,G) fp32, {@code (r - mean_g) / (std_g + eps)} with the SAMPLE standard
 * deviation (divides by G-1), or {@code r - mean_g} without std scaling (Dr. GRPO). G = 1 gives advantage 0.
 * A group of equal rewards gives exactly 0. {@link GroupAdvantagesReference} is the CPU twin.
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

    /** rewards (P,G) -> advantages (P,G), scaled by the std, eps {@link #DEFAULT_EPS}. */
    public static void compute(long rewards, long advantages, int p, int g, long stream) {
        compute(rewards, advantages, p, g, true, DEFAULT_EPS, stream);
    }

    /** rewards and advantages must be separate buffers. */
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
