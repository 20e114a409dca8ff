package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaEvent;
import dev.rlsr.bindings.DeviceBuffer;

import java.util.Arrays;
import java.util.Locale;

/**
 * Device-level numbers the end-to-end GPU benchmarks report next to their own: the card's dense bf16 peak (for MFU),
 * device memory in use as the driver sees it, and the measured device copy bandwidth (the memory roofline).
 */
final class DeviceFacts {
    private DeviceFacts() {
    }

    /**
     * Dense (no sparsity) bf16 tensor-core peak in TFLOP/s from the NVIDIA datasheets, by device name; NaN when the
     * card is not known. {@code -Drlsr.bench.peakTflops=X} overrides it (e.g. for a card not listed, or to use a
     * measured GEMM rate instead).
     *
     * @param deviceName the CUDA device name
     * @return TFLOP/s, or NaN
     */
    static double denseBf16PeakTflops(String deviceName) {
        String forced = System.getProperty("rlsr.bench.peakTflops", "");
        if (!forced.isBlank()) {
            return Double.parseDouble(forced);
        }
        String n = deviceName.toUpperCase(Locale.ROOT);
        if (n.contains("H200") || n.contains("H100") && (n.contains("SXM") || n.contains("HBM3"))) {
            return 989.4; // H100 SXM5 and H200: same SMs and clocks
        }
        if (n.contains("H100") && n.contains("NVL")) {
            return 835.0;
        }
        if (n.contains("H100")) {
            return 756.5; // PCIe
        }
        if (n.contains("A100")) {
            return 312.0;
        }
        return Double.NaN;
    }

    /**
     * The dense fp32 (CUDA cores, no TF32) peak in TFLOP/s, by device name; NaN when not known.
     *
     * @param deviceName the CUDA device name
     * @return TFLOP/s, or NaN
     */
    static double fp32PeakTflops(String deviceName) {
        String n = deviceName.toUpperCase(Locale.ROOT);
        if (n.contains("H200") || n.contains("H100") && (n.contains("SXM") || n.contains("HBM3"))) {
            return 66.9;
        }
        if (n.contains("H100")) {
            return 51.2;
        }
        if (n.contains("A100")) {
            return 19.5;
        }
        return Double.NaN;
    }

    /** {@return bytes of device memory in use on the current context's device: total - free (cuMemGetInfo)} */
    static long deviceUsedBytes() {
        long[] ft = CudaDriver.memInfo();
        return ft[1] - ft[0];
    }

    /**
     * Device-to-device copy bandwidth, bytes read + written per second: the median of {@code runs}
     * cuMemcpyDtoDAsync of {@code bytes}, each between two events on {@code stream}, after a warm-up copy. The same
     * figure as DeviceCopyBench and torch_bench.py's copy_GBps.
     *
     * @param bytes  bytes copied per run
     * @param runs   timed runs
     * @param stream the stream to time on
     * @return GB/s (1e9 bytes per second), read + written
     */
    static double copyBandwidthGBps(long bytes, int runs, long stream) {
        try (DeviceBuffer src = DeviceBuffer.alloc(bytes); DeviceBuffer dst = DeviceBuffer.alloc(bytes);
             CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create()) {
            CudaDriver.memsetD8Async(src.address(), (byte) 1, bytes, stream);
            CudaDriver.memcpyDtoDAsync(dst.address(), src.address(), bytes, stream);
            CudaDriver.streamSynchronize(stream);
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                start.record(stream);
                CudaDriver.memcpyDtoDAsync(dst.address(), src.address(), bytes, stream);
                end.record(stream);
                end.synchronize();
                ms[i] = end.elapsedMsSince(start);
            }
            Arrays.sort(ms);
            return 2.0 * bytes / (ms[runs / 2] * 1e-3) / 1e9;
        }
    }

    /** {@return bytes in GiB} */
    static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }
}
