package dev.rlsr.engine.conformance;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.kernels.DType;

/** The conformance suite on the CPU backend (fp32). */
class CpuConformanceTest extends BackendConformance {
    CpuConformanceTest() {
        super("cpu-fp32", DType.F32);
    }

    @Override
    protected Backend openBackend() {
        return CpuBackend.INSTANCE;
    }
}
