package dev.rlsr.engine.conformance;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A device test skips without a device, fails instead when the run requires one, and runs when there is one. */
class TestBackendsTest {

    private static <T extends Throwable> T withRequired(String value, Class<T> expected, Runnable r) {
        String before = System.getProperty(TestBackends.GPU_REQUIRED);
        try {
            if (value == null) {
                System.clearProperty(TestBackends.GPU_REQUIRED);
            } else {
                System.setProperty(TestBackends.GPU_REQUIRED, value);
            }
            return expected == null ? null : assertThrows(expected, r::run);
        } finally {
            if (before == null) {
                System.clearProperty(TestBackends.GPU_REQUIRED);
            } else {
                System.setProperty(TestBackends.GPU_REQUIRED, before);
            }
        }
    }

    @Test
    void skipsOrFailsWithoutADevice() {
        if (CudaDriver.isAvailable()) {
            withRequired("true", null, () -> TestBackends.requireDevice("cuda-test"));
            TestBackends.requireDevice("cuda-test"); // returns: the device is there
            return;
        }
        TestAbortedException skip = withRequired(null, TestAbortedException.class,
                () -> TestBackends.requireDevice("cuda-test"));
        assertTrue(skip.getMessage().contains("cuda-test") && skip.getMessage().contains("CUDA device"),
                skip.getMessage());
        AssertionFailedError fail = withRequired("true", AssertionFailedError.class,
                () -> TestBackends.requireDevice("cuda-test"));
        assertTrue(fail.getMessage().contains(TestBackends.GPU_REQUIRED), fail.getMessage());
        withRequired("true", AssertionFailedError.class,
                () -> TestBackends.device("cuda-test", DType.BF16, CpuBackend::new));
    }

    @Test
    void aBackendThatDoesNotComputeTheDtypeFails() {
        AssertionFailedError e = assertThrows(AssertionFailedError.class,
                () -> TestBackends.computing("cpu-as-bf16", DType.BF16, new CpuBackend()));
        assertTrue(e.getMessage().contains("does not compute in BF16"), e.getMessage());
        TestBackends.computing("cpu-fp32", DType.F32, new CpuBackend());
    }
}
