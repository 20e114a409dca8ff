package dev.rlsr.engine.tensor;

/** Element type of a {@link Tensor}. The CPU backend is fp32 throughout; bf16 arrives with the CUDA backend. */
public enum DType {
    F32(4);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    public int byteSize() {
        return byteSize;
    }
}
