package dev.rlsr.engine.conformance;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.kernels.DType;

/**
 * The conformance suite in bf16 mode on {@link Bf16StorageBackend} (bf16 storage, fp32 CPU arithmetic): checks the
 * suite's bf16 path and that the bf16 tolerances hold for a backend that rounds once per op output. Not a device.
 */
class Bf16StorageConformanceTest extends BackendConformance {
    Bf16StorageConformanceTest() {
        super("cpu-bf16-storage", DType.BF16);
    }

    @Override
    protected Backend openBackend() {
        return new Bf16StorageBackend();
    }
}
