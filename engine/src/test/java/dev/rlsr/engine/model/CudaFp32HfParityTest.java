package dev.rlsr.engine.model;

import dev.rlsr.engine.conformance.TestBackends;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.Tag;

/** HF parity on the CUDA backend in fp32 (a GPU, or the CUDA emulator in CI), tolerances of {@link ParityTolerances#FP32}. */
@Tag("gpu")
class CudaFp32HfParityTest extends HfParity {
    CudaFp32HfParityTest() {
        super("cuda-fp32", Precision.FP32, ParityTolerances.FP32);
    }

    @Override
    protected Backend openBackend() {
        return TestBackends.device("cuda-fp32", DType.F32, () -> CudaBackend.open(0, Precision.FP32));
    }
}
