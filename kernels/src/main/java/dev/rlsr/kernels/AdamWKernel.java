package dev.rlsr.kernels;

import dev.rlsr.bindings.KernelArgs;

/**
 * One AdamW step (torch.optim.AdamW, decoupled weight decay) over a flat F32 parameter store in one launch
 * ({@code native/cuda/adamw.cu}), with the hyper-parameters of the engine's {@code AdamWParams}:
 * <pre>
 *   g = grad * clipScale;  p = param * (1 - lr*wd)  (elements [0, decayEnd) only)
 *   m = m + (g - m)*(1 - b1);  v = v*b2 + (1 - b2)*g*g
 *   param = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps);  computeCopy = bf16(param)
 * </pre>
 * The same fp32 operations in the same order as the CPU ({@link AdamWReference}, no fused multiply-adds), so the
 * device and the CPU agree bit for bit. Shapes: param (the fp32 master weights), grad, m, v (n) F32; computeCopy (n)
 * BF16 or 0 (none); clipScale (1) F32 on the device (e.g. from {@link GlobalNorm#clipScale}) or 0 (= 1). Parameters
 * without weight decay (norms, biases) are laid out after the decayed ones, so one {@code decayEnd} splits them.
 * Aligned buffers (16 bytes, the copy 8) take 16-byte vectors. Asynchronous on {@code stream}.
 */
public final class AdamWKernel {
    static final String FILE = "adamw";
    private static final Kernel STEP = Kernel.of(FILE, "adamw_kernel");
    private static final int THREADS = 256;
    private static final int MAX_GRID = 1 << 16; // grid-stride beyond 16M threads

    private AdamWKernel() {
    }

    /**
     * Updates param, m, v (and the compute copy) in place.
     *
     * @param param           (n) F32 master weights
     * @param grad            (n) F32 gradients (not modified)
     * @param m               (n) F32 first moments
     * @param v               (n) F32 second moments
     * @param computeCopy     (n) BF16 receives the updated weights, or 0
     * @param clipScale       (1) F32 factor applied to every gradient, or 0 for none
     * @param n               elements
     * @param decayEnd        weight decay applies to elements [0, decayEnd) (clamped to [0, n])
     * @param lr              learning rate
     * @param beta1           first-moment decay
     * @param beta2           second-moment decay
     * @param eps             added to the root of the second moment
     * @param weightDecay     decoupled weight decay
     * @param biasCorrection1 {@code 1 - beta1^step}, &gt; 0
     * @param biasCorrection2 {@code 1 - beta2^step}, &gt; 0
     * @param stream          a {@code CUstream}, 0 for the legacy default stream
     */
    public static void step(long param, long grad, long m, long v, long computeCopy, long clipScale, long n,
            long decayEnd, float lr, float beta1, float beta2, float eps, float weightDecay, double biasCorrection1,
            double biasCorrection2, long stream) {
        String op = "AdamWKernel.step";
        if (n <= 0) {
            throw new IllegalArgumentException(op + ": n must be positive, got " + n);
        }
        if (!(biasCorrection1 > 0) || !(biasCorrection2 > 0)) {
            throw new IllegalArgumentException(op + ": bias corrections must be > 0 (step >= 1), got "
                    + biasCorrection1 + ", " + biasCorrection2);
        }
        Checks.finite(op, "lr", lr);
        Checks.finite(op, "beta1", beta1);
        Checks.finite(op, "beta2", beta2);
        Checks.finite(op, "eps", eps);
        Checks.finite(op, "weightDecay", weightDecay);
        Checks.pointer(op, "param", param, Float.BYTES);
        Checks.pointer(op, "grad", grad, Float.BYTES);
        Checks.pointer(op, "m", m, Float.BYTES);
        Checks.pointer(op, "v", v, Float.BYTES);
        Checks.optionalPointer(op, "computeCopy", computeCopy, 2);
        Checks.optionalPointer(op, "clipScale", clipScale, Float.BYTES);
        long b = 4L * n;
        String[] names = {"param", "grad", "m", "v", "computeCopy", "clipScale"};
        long[] ptrs = {param, grad, m, v, computeCopy, clipScale};
        long[] bytes = {b, b, b, b, 2L * n, 4L};
        for (int i = 0; i < ptrs.length; i++) {
            for (int j = i + 1; j < ptrs.length; j++) {
                if (ptrs[i] != 0 && ptrs[j] != 0) {
                    Checks.disjoint(op, names[i], ptrs[i], bytes[i], names[j], ptrs[j], bytes[j]);
                }
            }
        }
        // the CPU's float arithmetic of the constants (AdamWReference)
        float decay = 1f - lr * weightDecay;
        float stepSize = (float) (lr / biasCorrection1);
        float bc2Sqrt = (float) Math.sqrt(biasCorrection2);
        long split = Math.max(0, Math.min(n, decayEnd));
        long work = (n + 3) / 4;
        int grid = (int) Math.min((work + THREADS - 1) / THREADS, MAX_GRID);
        KernelArgs args = KernelArgs.local().ptr(param).ptr(grad).ptr(m).ptr(v).ptr(computeCopy).ptr(clipScale).i64(n)
                .i64(split).f32(decay).f32(beta1).f32(beta2).f32(eps).f32(stepSize).f32(bc2Sqrt);
        STEP.launch(grid, THREADS, stream, args);
    }
}
