package dev.rlsr.engine.conformance;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.Assumptions;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * How the per-backend test classes (conformance, HF parity) obtain their backend. A device backend skips its class
 * with the reason when no CUDA device is usable (a real GPU, or the CUDA emulator when the bindings are switched to
 * it: both answer through {@link CudaDriver#isAvailable()}), and <em>fails</em> instead when the run asks for the
 * device with {@code -Drlsr.gpu.required=true} (the GPU check, the emulator job in CI), so a backend that silently
 * skips cannot pass unnoticed there.
 *
 * <p>A CUDA subclass opens its backend in one line:
 * {@code return TestBackends.device("cuda-bf16", DType.BF16, () -> new CudaBackend(...));}
 */
public final class TestBackends {
    /** The system property that turns a missing device into a failure. */
    public static final String GPU_REQUIRED = "rlsr.gpu.required";

    private TestBackends() {}

    /**
     * Whether this run demands a device.
     *
     * @return true under {@code -Drlsr.gpu.required=true}
     */
    public static boolean deviceRequired() {
        return Boolean.getBoolean(GPU_REQUIRED);
    }

    /**
     * Skips the calling test class (a JUnit assumption) unless a CUDA device is usable; fails instead when
     * {@code -Drlsr.gpu.required=true}.
     *
     * @param what the backend or test that needs the device, for the message
     */
    public static void requireDevice(String what) {
        if (CudaDriver.isAvailable()) {
            return;
        }
        String reason = what + " needs a CUDA device (or the CUDA emulator): " + CudaDriver.unavailableReason();
        if (deviceRequired()) {
            fail(reason + " — and -D" + GPU_REQUIRED + "=true forbids skipping");
        }
        Assumptions.abort(reason);
    }

    /**
     * Opens a device backend after {@link #requireDevice}; checks that it computes in the requested activation
     * dtype, so a backend that quietly falls back to another precision fails rather than passing.
     *
     * @param name    the backend as the tests name it ("cuda-fp32", "cuda-bf16")
     * @param act     the activation dtype the tests will use
     * @param factory creates the backend once the device is known to exist
     * @param <B>     the backend type
     * @return the backend
     */
    public static <B extends Backend> B device(String name, DType act, Supplier<B> factory) {
        requireDevice(name);
        return computing(name, act, factory.get());
    }

    /** Fails (after closing it) unless the backend computes in {@code act}. */
    static <B extends Backend> B computing(String name, DType act, B backend) {
        if (!backend.computes(act)) {
            backend.close();
            fail(name + ": backend '" + backend.name() + "' does not compute in " + act);
        }
        return backend;
    }
}
