package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;

/**
 * Entry point of the GPU benchmarks: {@code java -cp benchmarks.jar dev.rlsr.bench.gpu.GpuBenchMain [JMH options]}.
 * Without a usable CUDA device it prints why and exits 0 (nothing to measure is not an error); otherwise it hands
 * the arguments to JMH unchanged. Run directly through {@code org.openjdk.jmh.Main}, each GPU benchmark's setup
 * reports the same message as a JMH failure instead.
 */
public final class GpuBenchMain {
    private GpuBenchMain() {
    }

    public static void main(String[] args) throws Exception {
        if (!CudaDriver.isAvailable()) {
            System.out.println("SKIP GPU benchmarks: no usable CUDA device (" + CudaDriver.unavailableReason()
                    + "). They need an NVIDIA GPU and driver; see bench/gpu/README.md");
            return;
        }
        if (CudaDriver.isEmulator()) {
            System.out.println("SKIP GPU benchmarks: the CUDA emulator is loaded (-Drlsr.cuda.emulator); it runs the "
                    + "kernels on the CPU, so its timings mean nothing");
            return;
        }
        System.out.println("[gpu] device 0: " + CudaDriver.deviceName(CudaDriver.device(0)) + ", driver "
                + CudaDriver.driverVersion());
        org.openjdk.jmh.Main.main(args);
    }
}
