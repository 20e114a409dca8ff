package dev.rlsr.kernels;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The element types of the project, one enum for kernels, tensors and checkpoints. A tensor on a device is
 * {@link #F32}, {@link #BF16} or {@link #I32}; checkpoints may also hold {@link #F16}, {@link #I64}, {@link #U8} and
 * {@link #BOOL}. bf16 is the upper 16 bits of a binary32; on the host it travels as raw bits in a {@code short[]}
 * (see {@link BF16}).
 */
public enum DType {
    /** IEEE binary32. */
    F32(4, 0),
    /** IEEE binary16 (checkpoints only; converted on load). */
    F16(2, 2),
    /** bfloat16. */
    BF16(2, 14),
    /** 64-bit signed integer (checkpoints only). */
    I64(8, 24),
    /** 32-bit signed integer: token ids, targets, positions, masks. */
    I32(4, 10),
    /** Unsigned byte (checkpoints only). */
    U8(1, 8),
    /** Boolean, one byte (checkpoints only). */
    BOOL(1, 8);

    private final int bytes;
    private final int cudaDataType;

    DType(int bytes, int cudaDataType) {
        this.bytes = bytes;
        this.cudaDataType = cudaDataType;
    }

    /** {@return the size of one element in bytes} */
    public int bytes() {
        return bytes;
    }

    /** {@return the {@code cudaDataType_t} value of this type (CUDA_R_32F = 0, CUDA_R_16BF = 14, ...), for cuBLAS(Lt)} */
    public int cudaDataType() {
        return cudaDataType;
    }

    /** {@return true for F32, F16 and BF16} */
    public boolean isFloating() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** {@return the dtype string of a safetensors header ("F32", "BF16", ...)} */
    public String safetensorsName() {
        return name();
    }

    /**
     * Parses a safetensors header dtype ("F32", "BF16", ...).
     *
     * @param safetensorsName the header's string
     * @return the type
     * @throws IllegalArgumentException naming the unknown dtype and the supported ones
     */
    public static DType parse(String safetensorsName) {
        if (safetensorsName != null) {
            for (DType d : values()) {
                if (d.name().equals(safetensorsName)) {
                    return d;
                }
            }
        }
        throw new IllegalArgumentException("unsupported safetensors dtype '" + safetensorsName + "'; supported: "
                + Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", ")));
    }
}
