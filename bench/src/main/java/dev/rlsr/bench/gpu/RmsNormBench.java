package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.RmsNorm;
import dev.rlsr.kernels.RmsNormReference;

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
import org.openjdk.jmh.infra.BenchmarkParams;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * RMSNorm forward and backward in bf16 on Qwen2.5-0.5B shapes: the hidden states (R = 8192 tokens, D = C = 896) and
 * the per-head q/k norms of Qwen3-style models (R = 8192 * 14 heads, D = 64). Memory-bound: the forward reads x and
 * writes out (2 bytes each per element), the backward reads dOut and x and writes dx (plus the dw partials, P*D*4
 * bytes written and read). Setup validates against {@link RmsNormReference} on the whole tensors read back from the
 * device (both outputs and rstd, then dx and dw), then times each kernel with CUDA events.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class RmsNormBench {
    private static final long SEED = 20261127L;
    private static final float EPS = 1e-6f;

    /** rows R, width D, dtype */
    @Param({"R8192_D896_bf16", "R114688_D64_bf16"})
    public String workload;

    private GpuSession gpu;
    private DeviceFill fill;
    private int rows;
    private int dim;
    private long x;
    private long w;
    private long out;
    private long rstd;
    private long dOut;
    private long dx;
    private long dw;
    private long partials;
    private long stream;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
        boolean backward = params.getBenchmark().endsWith(".backward");
        String key = (backward ? "rmsnorm_bwd_" : "rmsnorm_fwd_") + workload;
        gpu = GpuSession.open("RmsNormBench " + workload);
        try {
            int[] rd = Validation.dims(workload, "R", "D");
            rows = rd[0];
            dim = rd[1];
            int n = rows * dim;
            stream = gpu.streamHandle();
            long actBytes = 2L * n;
            x = gpu.alloc(actBytes).address();
            out = gpu.alloc(actBytes).address();
            dOut = gpu.alloc(actBytes).address();
            dx = gpu.alloc(actBytes).address();
            w = gpu.alloc(2L * dim).address();
            DeviceBuffer rs = gpu.alloc(4L * rows);
            DeviceBuffer dwb = gpu.alloc(4L * dim);
            rstd = rs.address();
            dw = dwb.address();
            partials = gpu.alloc(RmsNorm.backwardScratchBytes(DType.BF16, rows, dim)).address();
            fill = new DeviceFill(gpu);
            fill.bf16(x, n, SEED, -2f, 2f, stream);
            fill.bf16(w, dim, SEED + 1, 0.5f, 1.5f, stream);
            fill.bf16(dOut, n, SEED + 2, -1f, 1f, stream);
            rs.fill(Float.NaN);
            dwb.fill(0f);
            gpu.sync();

            // ---- validate the forward on every row ----
            short[] hx = Validation.shorts(x, n), hw = Validation.shorts(w, dim);
            RmsNorm.forward(x, w, out, rstd, DType.BF16, rows, dim, EPS, stream);
            gpu.sync();
            short[] refOut = new short[n];
            float[] refRs = new float[rows];
            RmsNormReference.forward(hx, 0, hw, 0, EPS, refOut, 0, refRs, 0, rows, dim);
            Map<String, Object> extra = new LinkedHashMap<>();
            // fp32 sums in another order: ~1e-7 relative; bf16 outputs one bf16 ulp apart at most
            extra.put("max_abs_err_rstd", Validation.assertClose("rstd " + workload, Validation.floats(rstd, rows),
                    refRs, 0, 2e-6));
            extra.put("max_abs_err_out", Validation.assertClose("out " + workload,
                    BF16.toFloat(Validation.shorts(out, n)), BF16.toFloat(refOut), 1e-6, 0x1p-7));
            if (backward) {
                short[] hg = Validation.shorts(dOut, n);
                float[] gotRs = Validation.floats(rstd, rows);
                RmsNorm.backward(dOut, x, w, rstd, dx, dw, partials, DType.BF16, rows, dim, false, stream);
                gpu.sync();
                short[] refDx = new short[n];
                float[] refDw = new float[dim];
                RmsNormReference.backward(hg, 0, hx, 0, hw, 0, gotRs, 0, refDx, 0, refDw, 0, rows, dim, false);
                // dx: terms of either sign cancel, so an absolute floor of 1e-5 on values of order 1
                extra.put("max_abs_err_dx", Validation.assertClose("dx " + workload,
                        BF16.toFloat(Validation.shorts(dx, n)), BF16.toFloat(refDx), 1e-5, 0x1p-7));
                // dw sums R products of order 1: rtol 1e-5 of the result plus 1e-6 * R absolute for cancellation
                extra.put("max_abs_err_dw", Validation.assertClose("dw " + workload, Validation.floats(dw, dim),
                        refDw, 1e-6 * rows, 1e-5));
                GpuSession.Timing timing = gpu.time(
                        () -> RmsNorm.backward(dOut, x, w, rstd, dx, dw, partials, DType.BF16, rows, dim, false, stream),
                        null, 3, 31);
                long parts = RmsNorm.backwardPartials(DType.BF16, rows, dim);
                long bytes = 3 * actBytes + 2 * 4L * parts * dim + 4L * rows + 2 * 4L * dim;
                extra.put("what", "backward: dOut, x read, dx written, dw partials written + reduced, P=" + parts);
                GpuResults.kernel(gpu, key, timing, bytes, extra);
            } else {
                GpuSession.Timing timing = gpu.time(
                        () -> RmsNorm.forward(x, w, out, rstd, DType.BF16, rows, dim, EPS, stream), null, 3, 31);
                long bytes = 2 * actBytes + 4L * rows;
                extra.put("what", "forward: x read, out and rstd written");
                GpuResults.kernel(gpu, key, timing, bytes, extra);
            }
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: launch the forward, wait for it. */
    @Benchmark
    public void forward() {
        RmsNorm.forward(x, w, out, rstd, DType.BF16, rows, dim, EPS, stream);
        gpu.sync();
    }

    /** The Java call: launch the backward (two kernels), wait for it. */
    @Benchmark
    public void backward() {
        RmsNorm.backward(dOut, x, w, rstd, dx, dw, partials, DType.BF16, rows, dim, false, stream);
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (fill != null) {
            fill.close();
        }
        if (gpu != null) {
            gpu.close();
        }
    }
}
