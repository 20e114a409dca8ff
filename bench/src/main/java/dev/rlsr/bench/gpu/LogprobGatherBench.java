package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.LogprobGather;
import dev.rlsr.kernels.LogprobGatherReference;

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
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Log-prob gather on logits (N,V) bf16, N = B*T rows: forward (one pass, logp and lse (N)) and backward in place
 * (dlogits over the logits, from the saved lse). Workloads: Qwen's vocabulary (16*512, 151936), target <= 0.70 ms
 * forward on an H200, and Llama-2's (16*1024, 32000).
 *
 * <p>Setup fills the logits on the GPU (2.5 GB would take seconds on the host), validates the kernel against
 * {@link LogprobGatherReference} on a few rows read back from the device, then times the kernel with CUDA events.
 * The backward's event-timed runs each start from freshly filled logits (the refill, outside the events, also
 * evicts L2); the JMH backward calls run in place over what the previous call left, which costs the same.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class LogprobGatherBench {
    private static final long SEED = 20261126L;
    private static final float TEMPERATURE = 1f;
    private static final float LOGIT_LO = -6f;
    private static final float LOGIT_HI = 6f;

    /** rows N = B*T, vocabulary V, dtype */
    @Param({"N8192_V151936_bf16", "N16384_V32000_bf16"})
    public String workload;

    private GpuSession gpu;
    private DeviceFill fill;
    private int n;
    private int v;
    private long logits;
    private long targets;
    private long logp;
    private long lse;
    private long dlogp;
    private long stream;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
        boolean backward = params.getBenchmark().endsWith(".backward");
        String key = (backward ? "logprob_bwd_" : "logprob_fwd_") + workload;
        gpu = GpuSession.open("LogprobGatherBench " + workload);
        try {
            int[] nv = Validation.dims(workload, "N", "V");
            n = nv[0];
            v = nv[1];
            if (!workload.endsWith("_bf16")) {
                throw new IllegalArgumentException("only bf16 logits are benchmarked, got " + workload);
            }
            stream = gpu.streamHandle();
            long logitBytes = (long) n * v * 2;
            logits = gpu.alloc(logitBytes).address();
            DeviceBuffer t = gpu.alloc(4L * n);
            DeviceBuffer lp = gpu.alloc(4L * n);
            DeviceBuffer ls = gpu.alloc(4L * n);
            DeviceBuffer dl = gpu.alloc(4L * n);
            targets = t.address();
            logp = lp.address();
            lse = ls.address();
            dlogp = dl.address();
            fill = new DeviceFill(gpu);
            fillLogits();

            Random rnd = new Random(SEED);
            int[] tgt = new int[n];
            float[] up = new float[n];
            for (int i = 0; i < n; i++) {
                tgt[i] = rnd.nextInt(v);
                // upstream gradient dL/dlogp: nonzero, both signs
                up[i] = (rnd.nextBoolean() ? 1f : -1f) * (0.1f + 0.9f * rnd.nextFloat());
            }
            t.copyFrom(tgt);
            dl.copyFrom(up);
            lp.fill(Float.NaN);
            ls.fill(Float.NaN);
            gpu.sync();

            // ---- validate the forward on sampled rows ----
            int[] rows = Validation.sampleRows(n, SEED);
            short[][] rowLogits = new short[rows.length][];
            for (int k = 0; k < rows.length; k++) {
                rowLogits[k] = Validation.shorts(logits + (long) rows[k] * v * 2, v);
            }
            LogprobGather.forward(logits, DType.BF16, targets, logp, lse, n, v, TEMPERATURE, stream);
            gpu.sync();
            float[] gotLogp = Validation.floats(logp, n);
            float[] gotLse = Validation.floats(lse, n);
            Validation.assertFinite("logp", gotLogp);
            Validation.assertFinite("lse", gotLse);
            float[] refLogp = new float[rows.length];
            float[] refLse = new float[rows.length];
            float[] sampleLogp = new float[rows.length];
            float[] sampleLse = new float[rows.length];
            for (int k = 0; k < rows.length; k++) {
                float[] one = new float[1];
                float[] oneLse = new float[1];
                LogprobGatherReference.forward(rowLogits[k], new int[] {tgt[rows[k]]}, 1, v, TEMPERATURE, one, oneLse);
                refLogp[k] = one[0];
                refLse[k] = oneLse[0];
                sampleLogp[k] = gotLogp[rows[k]];
                sampleLse[k] = gotLse[rows[k]];
            }
            // fp32 online softmax vs a double reference on identical bf16 inputs: ~1e-6 relative to lse (~ln V + 6)
            double errLse = Validation.assertClose("lse " + workload, sampleLse, refLse, 1e-4, 1e-5);
            double errLogp = Validation.assertClose("logp " + workload, sampleLogp, refLogp, 1e-4, 1e-5);
            Map<String, Object> extra = new LinkedHashMap<>();
            extra.put("rows_validated", rows.length);
            extra.put("max_abs_err_logp", errLogp);
            extra.put("max_abs_err_lse", errLse);

            if (backward) {
                // ---- validate the in-place backward on the same rows ----
                LogprobGather.backwardInPlace(logits, DType.BF16, targets, lse, dlogp, n, v, TEMPERATURE, stream);
                gpu.sync();
                double errGrad = 0;
                for (int k = 0; k < rows.length; k++) {
                    int r = rows[k];
                    short[] refGrad = new short[v];
                    LogprobGatherReference.backward(rowLogits[k], new int[] {tgt[r]}, new float[] {refLse[k]},
                            new float[] {up[r]}, 1, v, TEMPERATURE, refGrad);
                    float[] got = BF16.toFloat(Validation.shorts(logits + (long) r * v * 2, v));
                    // both sides round to bf16 (8 bits): one ulp apart at most, plus fp32 exp error
                    errGrad = Math.max(errGrad, Validation.assertClose("dlogits row " + r + " " + workload, got,
                            BF16.toFloat(refGrad), 1e-7, 1.6e-2));
                }
                extra.put("max_abs_err_dlogits", errGrad);
                fillLogits();
                gpu.sync();
                GpuSession.Timing timing = gpu.time(
                        () -> LogprobGather.backwardInPlace(logits, DType.BF16, targets, lse, dlogp, n, v, TEMPERATURE,
                                stream),
                        this::fillLogits, 2, 25);
                // reads the logits, writes the gradient over them; targets, lse, dlogp (N) are negligible
                long bytes = 2 * logitBytes + 12L * n;
                extra.put("what", "backward in place, logits refilled before each timed run");
                GpuResults.kernel(gpu, key, timing, bytes, extra);
                fillLogits(); // the JMH calls start from logits again
                gpu.sync();
            } else {
                GpuSession.Timing timing = gpu.time(
                        () -> LogprobGather.forward(logits, DType.BF16, targets, logp, lse, n, v, TEMPERATURE, stream),
                        null, 3, 31);
                long bytes = logitBytes + 12L * n; // logits once, targets in, logp and lse out
                extra.put("what", "forward: logp and lse");
                GpuResults.kernel(gpu, key, timing, bytes, extra);
            }
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    private void fillLogits() {
        fill.bf16(logits, (long) n * v, SEED, LOGIT_LO, LOGIT_HI, stream);
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: launch the forward, wait for it. */
    @Benchmark
    public void forward() {
        LogprobGather.forward(logits, DType.BF16, targets, logp, lse, n, v, TEMPERATURE, stream);
        gpu.sync();
    }

    /** The Java call: launch the in-place backward, wait for it. */
    @Benchmark
    public void backward() {
        LogprobGather.backwardInPlace(logits, DType.BF16, targets, lse, dlogp, n, v, TEMPERATURE, stream);
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
