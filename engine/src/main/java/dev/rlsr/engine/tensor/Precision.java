package dev.rlsr.engine.tensor;

import dev.rlsr.kernels.DType;

/**
 * The precision policy of a model on a backend: the dtype of activations and of the compute copy of the weights.
 * Master weights, gradients and optimizer moments are always fp32, and every GEMM and reduction accumulates in
 * fp32. With {@link #FP32} the compute copy <em>is</em> the master copy (one buffer); with {@link #BF16} a trainable
 * model keeps an fp32 master copy that AdamW updates and a bf16 copy that the forward and backward read (written by
 * the same AdamW launch). A frozen model (reference, encoder, evaluated model) holds only the compute copy.
 *
 * @param compute the activation / compute-weight dtype, F32 or BF16
 */
public record Precision(DType compute) {

    /** All fp32: the CPU backend, and the CUDA backend's parity mode. */
    public static final Precision FP32 = new Precision(DType.F32);
    /** bf16 activations and compute weights, fp32 master weights, gradients, moments and accumulation. */
    public static final Precision BF16 = new Precision(DType.BF16);

    public Precision {
        if (compute != DType.F32 && compute != DType.BF16) {
            throw new IllegalArgumentException("compute precision must be F32 or BF16, got " + compute);
        }
    }

    /** @return true when trainable weights need an fp32 master copy beside the compute copy */
    public boolean hasMasterCopy() {
        return compute != DType.F32;
    }

    /**
     * Parses a user's {@code --precision} value.
     *
     * @param name "bf16" or "fp32" (also "bfloat16", "float32", "f32")
     * @return the policy
     * @throws IllegalArgumentException naming the value and the accepted ones
     */
    public static Precision parse(String name) {
        return switch (name == null ? "" : name.strip().toLowerCase(java.util.Locale.ROOT)) {
            case "bf16", "bfloat16" -> BF16;
            case "fp32", "f32", "float32" -> FP32;
            default -> throw new IllegalArgumentException("unknown precision '" + name + "': use bf16 or fp32");
        };
    }

    @Override
    public String toString() {
        return compute == DType.F32 ? "fp32" : "bf16";
    }
}
