package dev.rlsr.engine.io;

import java.util.Arrays;
import java.util.stream.Collectors;

/** Element types of safetensors tensors that the engine reads and writes (names as in the safetensors header). */
public enum DType {
    F32(4), F16(2), BF16(2), I64(8), I32(4), U8(1), BOOL(1);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** True for F32/F16/BF16, the types {@link SafeTensors#floats} converts. */
    public boolean isFloating() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** The dtype string written in a safetensors header ("F32", "BF16", ...). */
    public String safetensorsName() {
        return name();
    }

    /**
     * Parses a safetensors header dtype ("F32", "BF16", ...).
     *
     * @throws CheckpointException naming the unknown dtype and the supported ones
     */
    public static DType parse(String safetensorsName) {
        if (safetensorsName != null) {
            for (DType d : values()) {
                if (d.name().equals(safetensorsName)) {
                    return d;
                }
            }
        }
        throw new CheckpointException("unsupported safetensors dtype '" + safetensorsName + "'; supported: "
                + Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", ")));
    }
}
