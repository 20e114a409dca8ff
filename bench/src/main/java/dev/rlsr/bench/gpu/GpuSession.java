package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaContext;
import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaEvent;
import dev.rlsr.bindings.CudaModule;
import dev.rlsr.bindings.CudaStream;
import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.bindings.KernelArgs;
import dev.rlsr.bindings.KernelCache;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What every GPU benchmark's setup needs: device 0's primary context, one stream, timing events, a buffer that
 * evicts the L2 cache between timed runs, and the device buffers of the workload (freed on {@link #close()}).
 *
 * <p>Kernel time is measured the way {@code triton.testing.do_bench} measures PyTorch (bench/gpu/torch_bench.py):
 * an L2 flush (a 256 MiB memset, like do_bench's) before each run and outside the event pair, then the median of
 * the event-timed runs. So small inputs that would fit the 50-60 MB L2 are not timed from cache on one side only.
 *
 * <p>Two guards keep host-side launch cost out of the event pair (a first run timed 4 µs kernels at 28 µs): the
 * launch path is JIT-warmed first (at least {@link #JIT_WARMUP_LAUNCHES} launches or {@link #JIT_WARMUP_NANOS}),
 * and a short GPU spin kernel runs between the flush and the start event, so start event, kernel and end event are
 * all queued while the GPU is still busy and the events see the kernel alone.
 */
final class GpuSession implements AutoCloseable {
    /** do_bench flushes 256 MB; H100/H200 L2 is 50/60 MB. */
    private static final long FLUSH_BYTES = 256L << 20;
    private static final int JIT_WARMUP_LAUNCHES = 2000;
    private static final long JIT_WARMUP_NANOS = 400_000_000L;
    /** Long enough to cover a warm Java launch + two event records (a few µs) many times over. */
    private static final long SPIN_NANOS = 50_000L;
    private static final String SPIN_SOURCE = """
            extern "C" __global__ void spin_kernel(unsigned long long nanos) {
                unsigned long long t0;
                asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
                unsigned long long t = t0;
                while (t - t0 < nanos) { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); }
            }
            """;

    final CudaContext context;
    final CudaStream stream;
    private final CudaEvent start;
    private final CudaEvent end;
    private final DeviceBuffer flush;
    private final CudaModule spinModule;
    private final long spin;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private boolean closed;

    /** Event timing of one launch: median / min / 90th percentile in ms over {@code runs} runs. */
    record Timing(double medianMs, double minMs, double p90Ms, int runs, double backToBackMs) {
    }

    private GpuSession(String benchmark) {
        requireGpu(benchmark);
        context = CudaContext.open(0);
        stream = CudaStream.create();
        start = CudaEvent.create();
        end = CudaEvent.create();
        flush = DeviceBuffer.alloc(FLUSH_BYTES);
        spinModule = CudaModule.load(KernelCache.cubin(SPIN_SOURCE, "rlsr_bench_spin.cu", context.arch(), List.of()));
        spin = spinModule.function("spin_kernel");
    }

    /** Keeps the GPU busy for about {@link #SPIN_NANOS} so the host can queue the timed region ahead of it. */
    private void spin(long s) {
        try (KernelArgs args = KernelArgs.of().i64(SPIN_NANOS)) {
            CudaDriver.launchKernel(spin, 1, 1, 1, 1, 1, 1, 0, s, args);
        }
    }

    /** Opens device 0, or throws {@link GpuUnavailableException} (with the reason printed) when there is no GPU. */
    static GpuSession open(String benchmark) {
        return new GpuSession(benchmark);
    }

    static void requireGpu(String benchmark) {
        if (!CudaDriver.isAvailable()) {
            String msg = "SKIP " + benchmark + ": no usable CUDA device (" + CudaDriver.unavailableReason()
                    + "). GPU benchmarks need an NVIDIA GPU and driver; see bench/gpu/README.md";
            System.out.println(msg);
            throw new GpuUnavailableException(msg);
        }
        if (CudaDriver.isEmulator()) {
            String msg = "SKIP " + benchmark + ": the CUDA emulator is loaded (-Drlsr.cuda.emulator); its timings "
                    + "mean nothing";
            System.out.println(msg);
            throw new GpuUnavailableException(msg);
        }
    }

    /** A device buffer owned by this session. */
    DeviceBuffer alloc(long bytes) {
        DeviceBuffer b = DeviceBuffer.alloc(bytes);
        buffers.add(b);
        return b;
    }

    /** Makes the context current on the calling thread (JMH may run iterations on another thread than setup). */
    void makeCurrent() {
        context.makeCurrent();
    }

    void sync() {
        stream.synchronize();
    }

    long streamHandle() {
        return stream.handle();
    }

    String deviceName() {
        return context.name();
    }

    int multiprocessors() {
        return CudaDriver.attribute(context.device(), CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    }

    /**
     * Times {@code launch} with CUDA events: {@code warmup} untimed runs, then {@code runs} runs each preceded by
     * {@code beforeEach} (null: the L2 flush) outside the event pair; also the mean of {@code runs} back-to-back
     * launches between one event pair (no flush), which is what a stream of such launches costs.
     */
    Timing time(Runnable launch, Runnable beforeEach, int warmup, int runs) {
        long s = stream.handle();
        long t0 = System.nanoTime();
        for (int i = 0; i < warmup || (i < JIT_WARMUP_LAUNCHES && System.nanoTime() - t0 < JIT_WARMUP_NANOS); i++) {
            launch.run();
            if ((i & 63) == 63) {
                stream.synchronize();   // bounded queue: the warm-up is for the JIT, not a launch backlog
            }
        }
        stream.synchronize();
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) {
            if (beforeEach == null) {
                CudaDriver.memsetD32Async(flush.address(), i, FLUSH_BYTES / 4, s);
            } else {
                beforeEach.run();
            }
            spin(s);
            start.record(s);
            launch.run();
            end.record(s);
            end.synchronize();
            ms[i] = end.elapsedMsSince(start);
        }
        double backToBack = Double.NaN;
        if (beforeEach == null) {
            spin(s);
            start.record(s);
            for (int i = 0; i < runs; i++) {
                launch.run();
            }
            end.record(s);
            end.synchronize();
            backToBack = end.elapsedMsSince(start) / runs;
        }
        Arrays.sort(ms);
        double median = runs % 2 == 1 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);
        return new Timing(median, ms[0], ms[(int) Math.min(runs - 1, Math.ceil(0.9 * runs) - 1)], runs, backToBack);
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            stream.synchronize();
        } catch (RuntimeException e) {
            System.err.println("[gpu] stream synchronize at close failed: " + e.getMessage());
        }
        for (int i = buffers.size() - 1; i >= 0; i--) {
            buffers.get(i).close();
        }
        flush.close();
        spinModule.close();
        end.close();
        start.close();
        stream.close();
        context.close();
    }
}
