package dev.rlsr.engine.conformance;

import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.Tag;

/** The conformance suite on the CUDA backend in fp32 (a GPU, or the CUDA emulator in CI). */
@Tag("gpu")
class CudaFp32ConformanceTest extends BackendConformance {
    CudaFp32ConformanceTest() {
        super("cuda-fp32", DType.F32);
    }

    @Override
    protected Backend openBackend() {
        return TestBackends.device("cuda-fp32", DType.F32, () -> CudaBackend.open(0, Precision.FP32));
    }
}
