package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.Sampling;
import dev.rlsr.kernels.SamplingReference;

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
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One decode step's sampling on the device: logits (B, 151936) bf16 (Qwen's vocabulary) -> B tokens and log-probs,
 * for B = 64 and 256 rows, with the settings of the workload's suffix: {@code plain} (T = 1, RLSR's default),
 * {@code topk20_topp095} (T = 0.7, top-k 20, top-p 0.95: Qwen's recommended sampling), {@code topp09} (T = 1, top-p
 * 0.9), {@code greedy} (T = 0; compare with {@code kops_argmax_bf16_R64_V151936}).
 *
 * <p>Setup fills the logits on the GPU (uniform in [-6, 6)), resets the sampling state, runs one step and checks every
 * row's token (exactly) and log-prob against {@link SamplingReference} on the rows read back; then times the kernel
 * with CUDA events. Each timed launch is the next decode step of the same rows (the state advances; no stop ids, so
 * no row finishes). The GB/s counts the logits once: the kernel reads them two to eight times (from L2 when they fit).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class SamplingBench {
    private static final long SEED = 20261201L;
    private static final float LOGIT_LO = -6f;
    private static final float LOGIT_HI = 6f;

    /** rows B, vocabulary V, dtype, settings */
    @Param({"B64_V151936_bf16_plain", "B64_V151936_bf16_topk20_topp095", "B64_V151936_bf16_topp09",
        "B64_V151936_bf16_greedy", "B256_V151936_bf16_plain", "B256_V151936_bf16_topk20_topp095"})
    public String workload;

    private GpuSession gpu;
    private int rows;
    private int vocab;
    private long logits;
    private long temperature;
    private long topK;
    private long topP;
    private long counters;
    private long finished;
    private long steps;
    private long tokens;
    private long logprobs;
    private long stream;

    @Setup(Level.Trial)
    public void setup() {
        String key = "sampling_" + workload;
        gpu = GpuSession.open("SamplingBench " + workload);
        try {
            int[] bv = Validation.dims(workload, "B", "V");
            rows = bv[0];
            vocab = bv[1];
            if (!workload.contains("_bf16_")) {
                throw new IllegalArgumentException("only bf16 logits are benchmarked, got " + workload);
            }
            String mode = workload.substring(workload.indexOf("_bf16_") + 6);
            float t, p;
            int k;
            switch (mode) {
                case "plain" -> { t = 1f; k = 0; p = 1f; }
                case "topk20_topp095" -> { t = 0.7f; k = 20; p = 0.95f; }
                case "topp09" -> { t = 1f; k = 0; p = 0.9f; }
                case "greedy" -> { t = 0f; k = 0; p = 1f; }
                default -> throw new IllegalArgumentException("unknown sampling settings '" + mode + "' in " + workload);
            }
            stream = gpu.streamHandle();
            logits = gpu.alloc((long) rows * vocab * 2).address();
            float[] tArr = new float[rows], pArr = new float[rows];
            int[] kArr = new int[rows];
            Arrays.fill(tArr, t);
            Arrays.fill(pArr, p);
            Arrays.fill(kArr, k);
            DeviceBuffer dt = gpu.alloc(4L * rows), dk = gpu.alloc(4L * rows), dp = gpu.alloc(4L * rows);
            dt.copyFrom(tArr);
            dk.copyFrom(kArr);
            dp.copyFrom(pArr);
            temperature = dt.address();
            topK = dk.address();
            topP = dp.address();
            counters = gpu.alloc(4L * Sampling.COUNTERS).address();
            finished = gpu.alloc(4L * rows).address();
            steps = gpu.alloc(4L * rows).address();
            DeviceBuffer tok = gpu.alloc(4L * rows), lp = gpu.alloc(4L * rows);
            tok.fill((byte) 0xff);
            lp.fill(Float.NaN);
            tokens = tok.address();
            logprobs = lp.address();
            try (DeviceFill fill = new DeviceFill(gpu)) {
                fill.bf16(logits, (long) rows * vocab, SEED, LOGIT_LO, LOGIT_HI, stream);
            }
            Sampling.reset(counters, finished, steps, rows, SEED, stream);
            gpu.sync();

            // ---- validate one step on every row: same token, log-prob within the device's fp32 rounding
            launch();
            gpu.sync();
            int[] got = new int[rows];
            tok.copyTo(got);
            float[] gotLogp = Validation.floats(logprobs, rows);
            SamplingReference.Workspace ws = new SamplingReference.Workspace(vocab);
            double maxErr = 0;
            for (int b = 0; b < rows; b++) {
                float[] row = BF16.toFloat(Validation.shorts(logits + (long) b * vocab * 2, vocab));
                int want = ws.sample(row, 0, t, k, p, SEED, b, 0);
                if (got[b] != want) {
                    throw new IllegalStateException(key + ": row " + b + " sampled token " + got[b]
                            + ", the reference " + want);
                }
                double err = Math.abs(gotLogp[b] - ws.logprob());
                if (!(err <= 0x1p-21 * (Math.abs(ws.logprob()) + 2 * Math.log(vocab) + 1))) {
                    throw new IllegalStateException(key + ": row " + b + " log-prob " + gotLogp[b] + ", the reference "
                            + ws.logprob());
                }
                maxErr = Math.max(maxErr, err);
            }
            GpuSession.Timing timing = gpu.time(this::launch, null, 3, 31);
            Map<String, Object> extra = new LinkedHashMap<>();
            extra.put("rows_validated", rows);
            extra.put("max_abs_err_logprob", maxErr);
            extra.put("what", "one sampling step (" + mode + "), tokens equal to the reference on every row");
            GpuResults.kernel(gpu, key, timing, (long) rows * vocab * 2 + 8L * rows, extra);
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    private void launch() {
        Sampling.sample(logits, DType.BF16, rows, vocab, 1, temperature, topK, topP, 0, 0, 0, counters, finished,
                steps, tokens, logprobs, 0, 0, 0, stream);
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: launch one sampling step, wait for it. */
    @Benchmark
    public void sample() {
        launch();
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (gpu != null) {
            gpu.close();
        }
    }
}
