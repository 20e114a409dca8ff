package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaContext;
import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaStream;
import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.bindings.KernelArgs;
import dev.rlsr.kernels.CosineSimilarity;
import dev.rlsr.kernels.CudaKernels;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.Gemm;
import dev.rlsr.kernels.Kernel;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Host time of one kernel launch from Java: the cost a training step pays per op before the GPU sees it. Target: at
 * most 2 us per launch on an H100 host. The kernel is the smallest existing one (cosine similarity of one pair of
 * 1-element vectors: one block, microseconds on the GPU), launched in bursts of {@link #BURST}; the stream is
 * synchronised between bursts, outside the timed region ({@code Level.Invocation}), so the launch queue (about a
 * thousand entries) never fills and a launch never waits for the GPU. Scores are per launch.
 *
 * <ul>
 *   <li>{@code api}: the public Java API ({@code CosineSimilarity.pairs}: host checks, {@code Kernel},
 *       {@code KernelArgs.local()}).</li>
 *   <li>{@code kernelLocal}: the launch path alone, {@code Kernel.launch} with {@code KernelArgs.local()}.</li>
 *   <li>{@code allocatingPerLaunch}: the path before the rewrite, for comparison: the function looked up in
 *       {@code CudaKernels}' map by a record key and a fresh {@code KernelArgs.of()} (its own native arena) per
 *       launch.</li>
 *   <li>{@code gemmCached}: one cached {@link Gemm} call (16x16x16 bf16), the host cost of a cuBLASLt GEMM.</li>
 * </ul>
 * Run with {@code -prof gc} to see the allocation per launch ({@code gc.alloc.rate.norm}, bytes/op): 0 for the first
 * two and the GEMM. Without a GPU it is skipped, except on the CUDA emulator ({@code -Drlsr.cuda.emulator=DIR}) with
 * {@code RLSR_CUDA_EMULATOR_NULL_LAUNCH=1}: its {@code cuLaunchKernel} then checks and returns without running the
 * kernel, so {@code api} and {@code kernelLocal} show the host cost of the Java side (plus the emulator's argument
 * checks), to set beside {@code bench/gpu/launch_baseline.c}'s figure for the driver alone (run only those two: the
 * emulator's GEMM still computes). (No {@code GpuSession}: nothing here needs its timing kernels, which the
 * emulator cannot compile.)
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 5, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 500, timeUnit = TimeUnit.MILLISECONDS)
public class LaunchOverheadBench {
    /** Launches per timed invocation: well below the launch queue's depth. */
    static final int BURST = 128;
    private static final String FILE = "cosine_similarity";
    private static final String NAME = "cosine_similarity_f32_kernel";
    private static final Kernel KERNEL = Kernel.of(FILE, NAME);

    private CudaContext context;
    private CudaStream cudaStream;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private Gemm gemm;
    private long stream;
    private long x;
    private long y;
    private long out;
    private long ga;
    private long gb;
    private long gd;

    @Setup(Level.Trial)
    public void setup() {
        if (!nullLaunch()) {
            GpuSession.requireGpu("LaunchOverheadBench"); // the emulator's timings mean nothing, except for this
        }
        context = CudaContext.open(0);
        cudaStream = CudaStream.create();
        stream = cudaStream.handle();
        x = alloc(256);
        y = alloc(256);
        out = alloc(256);
        CudaDriver.memsetD32(x, Float.floatToRawIntBits(1f), 64);
        CudaDriver.memsetD32(y, Float.floatToRawIntBits(2f), 64);
        ga = alloc(512);
        gb = alloc(512);
        gd = alloc(512);
        CudaDriver.memsetD8(ga, (byte) 0x3c, 512); // bf16 0x3c3c ~ 0.0115
        CudaDriver.memsetD8(gb, (byte) 0x3c, 512);
        gemm = Gemm.create(stream);
        // validate first: cos of (1) and (2) is 1 (unless the emulator was told to run no kernel at all)
        CosineSimilarity.pairs(x, y, DType.F32, out, 1, 1, stream);
        cudaStream.synchronize();
        float got = Validation.floats(out, 1)[0];
        if (nullLaunch()) {
            System.out.println("[launch] RLSR_CUDA_EMULATOR_NULL_LAUNCH: launches run no kernel; the scores are the"
                    + " host cost of the Java path plus the emulator's argument checks");
        } else if (Math.abs(got - 1f) > 1e-6f) {
            throw new IllegalStateException("cosine of (1) and (2) should be 1, got " + got);
        }
        gemmCall();
        cudaStream.synchronize();
        // 16 products of 0x3c3c^2 each: the sum in fp32, rounded to bf16 once
        float v = dev.rlsr.kernels.BF16.toFloat((short) 0x3c3c);
        float expect = dev.rlsr.kernels.BF16.toFloat(dev.rlsr.kernels.BF16.fromFloat(16 * v * v));
        float gotD = dev.rlsr.kernels.BF16.toFloat(Validation.shorts(gd, 1)[0]);
        if (gotD != expect) {
            throw new IllegalStateException("16x16x16 GEMM: D[0,0] should be " + expect + ", got " + gotD);
        }
    }

    /** The CUDA emulator with {@code RLSR_CUDA_EMULATOR_NULL_LAUNCH} set: cuLaunchKernel checks and returns. */
    private static boolean nullLaunch() {
        return CudaDriver.isEmulator() && System.getenv("RLSR_CUDA_EMULATOR_NULL_LAUNCH") != null;
    }

    /** The stream drained outside the timed region: each burst starts with an empty launch queue. */
    @Setup(Level.Invocation)
    public void drain() {
        context.makeCurrent();
        cudaStream.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(BURST)
    public void api() {
        for (int i = 0; i < BURST; i++) {
            CosineSimilarity.pairs(x, y, DType.F32, out, 1, 1, stream);
        }
    }

    @Benchmark
    @OperationsPerInvocation(BURST)
    public void kernelLocal() {
        for (int i = 0; i < BURST; i++) {
            KERNEL.launch(1, 256, stream, KernelArgs.local().ptr(x).ptr(y).ptr(out).i32(1).i32(1).i32(1).f32(1e-8f)
                    .i32(1));
        }
    }

    @Benchmark
    @OperationsPerInvocation(BURST)
    public void allocatingPerLaunch() {
        for (int i = 0; i < BURST; i++) {
            long fn = CudaKernels.function(FILE, NAME);
            try (KernelArgs args = KernelArgs.of().ptr(x).ptr(y).ptr(out).i32(1).i32(1).i32(1).f32(1e-8f).i32(1)) {
                CudaDriver.launchKernel(fn, 1, 1, 1, 256, 1, 1, 0, stream, args);
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(BURST)
    public void gemmCached() {
        for (int i = 0; i < BURST; i++) {
            gemmCall();
        }
    }

    private long alloc(long bytes) {
        DeviceBuffer b = DeviceBuffer.alloc(bytes);
        buffers.add(b);
        return b.address();
    }

    private void gemmCall() {
        gemm.matmul(false, true, 16, 16, 16, 1f, ga, 16, gb, 16, DType.BF16, 0f, 0, 16, gd, 16, DType.BF16);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (context == null) {
            return;
        }
        context.makeCurrent();
        if (cudaStream != null) {
            cudaStream.synchronize();
        }
        if (gemm != null) {
            gemm.close();
        }
        for (DeviceBuffer b : buffers) {
            b.close();
        }
        if (cudaStream != null) {
            cudaStream.close();
        }
        context.close();
    }
}
