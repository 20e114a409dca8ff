package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.DeviceBuffer;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Device copy bandwidth, the ceiling the memory-bound kernels are measured against: cuMemcpyDtoDAsync of 1 GiB,
 * counting bytes read + written (2 GiB). Event-timed median in the setup, the Java call (copy + stream synchronize)
 * by JMH.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class DeviceCopyBench {
    @Param({"1GiB"})
    public String workload;

    private GpuSession gpu;
    private long src;
    private long dst;
    private long bytes;
    private long stream;

    @Setup(Level.Trial)
    public void setup() {
        String key = "copy_" + workload;
        gpu = GpuSession.open("DeviceCopyBench");
        try {
            bytes = switch (workload) {
                case "1GiB" -> 1L << 30;
                default -> throw new IllegalArgumentException("unknown workload " + workload);
            };
            DeviceBuffer s = gpu.alloc(bytes);
            DeviceBuffer d = gpu.alloc(bytes);
            src = s.address();
            dst = d.address();
            stream = gpu.streamHandle();
            try (DeviceFill fill = new DeviceFill(gpu)) {
                fill.f32(src, bytes / 4, 7, -1f, 1f, stream);
                gpu.sync();
            }
            // validate: the last MiB arrives intact (and is not zeros)
            CudaDriver.memcpyDtoDAsync(dst, src, bytes, stream);
            gpu.sync();
            int words = 1 << 18;
            float[] a = new float[words];
            float[] b = new float[words];
            CudaDriver.memcpyDtoH(java.lang.foreign.MemorySegment.ofArray(a), src + bytes - 4L * words, 4L * words);
            CudaDriver.memcpyDtoH(java.lang.foreign.MemorySegment.ofArray(b), dst + bytes - 4L * words, 4L * words);
            if (!Arrays.equals(a, b) || a[0] == 0f && a[words - 1] == 0f) {
                throw new IllegalStateException("device copy check failed: the copied tail differs from the source");
            }
            GpuSession.Timing t = gpu.time(() -> CudaDriver.memcpyDtoDAsync(dst, src, bytes, stream), null, 3, 21);
            GpuResults.kernel(gpu, key, t, 2 * bytes, Map.of("what", "cuMemcpyDtoDAsync, bytes read + written"));
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: enqueue the copy, wait for it. */
    @Benchmark
    public void copy() {
        CudaDriver.memcpyDtoDAsync(dst, src, bytes, stream);
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (gpu != null) {
            gpu.close();
        }
    }
}
