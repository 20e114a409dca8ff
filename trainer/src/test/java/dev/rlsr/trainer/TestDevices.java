package dev.rlsr.trainer;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Precision;
import org.junit.jupiter.api.Assumptions;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * How the trainer's {@code gpu} tests open a device, with the rule of the engine's {@code TestBackends} (whose test
 * classes this module cannot see): without a usable CUDA device (a GPU, or the CUDA emulator that every build's tests
 * load) the calling test class is skipped with the reason, and under {@code -Drlsr.gpu.required=true} (the GPU check,
 * the emulator job of CI) it fails instead.
 */
public final class TestDevices {
    /** The system property that turns a missing device into a failure. */
    public static final String GPU_REQUIRED = "rlsr.gpu.required";

    private TestDevices() {
    }

    /**
     * Returns when a CUDA device (a GPU, or the CUDA emulator) is usable; else skips the calling test (fails it under
     * {@code -Drlsr.gpu.required=true}).
     *
     * @param what the test that needs it, for the message
     */
    public static void requireCuda(String what) {
        if (!CudaDriver.isAvailable()) {
            String reason = what + " needs a CUDA device (or the CUDA emulator): " + CudaDriver.unavailableReason();
            if (Boolean.getBoolean(GPU_REQUIRED)) {
                fail(reason + " — and -D" + GPU_REQUIRED + "=true forbids skipping");
            }
            Assumptions.abort(reason);
        }
    }

    /**
     * A CUDA backend on device 0, or a skip (a failure under {@code -Drlsr.gpu.required=true}).
     *
     * @param what      the test that needs it, for the message
     * @param precision the backend's default precision
     * @return the backend, computing in {@code precision}
     */
    public static CudaBackend cuda(String what, Precision precision) {
        requireCuda(what);
        CudaBackend be = CudaBackend.open(0, precision);
        assertTrue(be.computes(precision.compute()), "the CUDA backend does not compute in " + precision);
        System.out.println(what + ": CUDA backend on " + be.deviceName() + (CudaDriver.isEmulator()
                ? " (the CUDA emulator)" : "") + ", " + precision);
        return be;
    }
}
