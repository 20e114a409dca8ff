package dev.rlsr.engine.model;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;

/** HF parity on the CPU backend in fp32, with the fixtures' fp32 tolerances. */
class CpuHfParityTest extends HfParity {
    CpuHfParityTest() {
        super("cpu-fp32", Precision.FP32, ParityTolerances.FP32);
    }

    @Override
    protected Backend openBackend() {
        return CpuBackend.INSTANCE;
    }
}
