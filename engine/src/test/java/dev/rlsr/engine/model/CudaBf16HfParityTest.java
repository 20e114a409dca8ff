package dev.rlsr.engine.model;

import dev.rlsr.engine.conformance.TestBackends;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.Tag;

/** HF parity on the CUDA backend in bf16 (a GPU, or the CUDA emulator in CI), tolerances of {@link ParityTolerances#BF16}. */
@Tag("gpu")
class CudaBf16HfParityTest extends HfParity {
    CudaBf16HfParityTest() {
        super("cuda-bf16", Precision.BF16, ParityTolerances.BF16);
    }

    @Override
    protected Backend openBackend() {
        return TestBackends.device("cuda-bf16", DType.BF16, () -> CudaBackend.open(0, Precision.BF16));
    }
}
