package dev.rlsr.kernels;

/** Element type of a kernel's floating-point input (outputs of the reductions are always fp32). */
public enum DType {
    /** IEEE binary32. */
    F32(4),
    /** bfloat16, the upper 16 bits of a binary32; on the host as raw bits in a {@code short[]} (see {@link BF16}). */
    BF16(2);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }
}
