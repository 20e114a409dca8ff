package dev.rlsr.engine.conformance;

import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.Tag;

/** The conformance suite on the CUDA backend in bf16 (a GPU, or the CUDA emulator in CI). */
@Tag("gpu")
class CudaBf16ConformanceTest extends BackendConformance {
    CudaBf16ConformanceTest() {
        super("cuda-bf16", DType.BF16);
    }

    @Override
    protected Backend openBackend() {
        return TestBackends.device("cuda-bf16", DType.BF16, () -> CudaBackend.open(0, Precision.BF16));
    }
}
