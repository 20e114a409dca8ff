package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.CrossEntropy;
import dev.rlsr.kernels.CrossEntropyReference;
import dev.rlsr.kernels.DType;

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

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Fused cross entropy (SFT loss) on Qwen2.5-0.5B's logits (N = 8192 tokens, V = 151936) in bf16, the gradient written
 * in place over the logits: one read of the logits for the loss (online softmax), a second read and the write of the
 * gradient, then the fixed-order loss sum. The kernel moves 3 * N * V * 2 bytes (2.5 GB per bf16 pass of 7.5 GB).
 *
 * <p>Setup fills the logits on the GPU, validates row losses and gradient rows against {@link CrossEntropyReference}
 * on sampled rows read back from the device, then times the kernel pair with CUDA events, each timed run starting from
 * freshly filled logits (the refill, outside the events, also evicts L2).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class CrossEntropyBench {
    private static final long SEED = 20261128L;

    /** rows N, vocabulary V, dtype */
    @Param({"N8192_V151936_bf16"})
    public String workload;

    private GpuSession gpu;
    private DeviceFill fill;
    private int n;
    private int v;
    private float gradScale;
    private long logits;
    private long targets;
    private long rowLoss;
    private long lossSum;
    private long stream;

    @Setup(Level.Trial)
    public void setup() {
        String key = "cross_entropy_" + workload;
        gpu = GpuSession.open("CrossEntropyBench " + workload);
        try {
            int[] nv = Validation.dims(workload, "N", "V");
            n = nv[0];
            v = nv[1];
            gradScale = 1f / n;
            stream = gpu.streamHandle();
            long logitBytes = (long) n * v * 2;
            logits = gpu.alloc(logitBytes).address();
            DeviceBuffer t = gpu.alloc(4L * n);
            DeviceBuffer rl = gpu.alloc(4L * n);
            DeviceBuffer ls = gpu.alloc(4L);
            targets = t.address();
            rowLoss = rl.address();
            lossSum = ls.address();
            fill = new DeviceFill(gpu);
            fillLogits();
            Random rnd = new Random(SEED);
            int[] tgt = new int[n];
            for (int i = 0; i < n; i++) {
                tgt[i] = i % 97 == 5 ? -100 : rnd.nextInt(v); // a few ignored rows, as padding would give
            }
            t.copyFrom(tgt);
            rl.fill(Float.NaN);
            ls.fill(0f);
            gpu.sync();

            int[] rows = Validation.sampleRows(n, SEED);
            short[][] before = new short[rows.length][];
            for (int k = 0; k < rows.length; k++) {
                before[k] = Validation.shorts(logits + (long) rows[k] * v * 2, v);
            }
            CrossEntropy.forwardBackward(logits, DType.BF16, targets, rowLoss, lossSum, logits, n, v, gradScale, stream);
            gpu.sync();
            float[] gotRows = Validation.floats(rowLoss, n);
            Validation.assertFinite("row loss", gotRows);
            double errLoss = 0, errGrad = 0;
            for (int k = 0; k < rows.length; k++) {
                int r = rows[k];
                float[] refRow = new float[1];
                short[] refGrad = new short[v];
                CrossEntropyReference.forwardBackward(before[k], 0, new int[] {tgt[r]}, 0, 1, v, gradScale, refGrad, 0,
                        refRow, 0);
                // fp32 online softmax vs the CPU's fp32 two-pass on identical bf16 inputs: ~1e-6 relative to lse
                errLoss = Math.max(errLoss, Validation.assertClose("row loss " + r + " " + workload,
                        new float[] {gotRows[r]}, refRow, 1e-4, 1e-5));
                float[] got = BF16.toFloat(Validation.shorts(logits + (long) r * v * 2, v));
                // both sides round to bf16: one ulp apart at most; p - 1 at the target cancels to ~ulp(1) * gradScale
                errGrad = Math.max(errGrad, Validation.assertClose("dlogits row " + r + " " + workload, got,
                        BF16.toFloat(refGrad), 1e-6 * gradScale, 1.6e-2));
            }
            Map<String, Object> extra = new LinkedHashMap<>();
            extra.put("rows_validated", rows.length);
            extra.put("max_abs_err_row_loss", errLoss);
            extra.put("max_abs_err_dlogits", errGrad);
            fillLogits();
            gpu.sync();
            GpuSession.Timing timing = gpu.time(
                    () -> CrossEntropy.forwardBackward(logits, DType.BF16, targets, rowLoss, lossSum, logits, n, v,
                            gradScale, stream),
                    this::fillLogits, 2, 21);
            long bytes = 3 * logitBytes + 8L * n;
            extra.put("what", "loss + gradient in place: logits read twice, gradient written once; refilled per run");
            GpuResults.kernel(gpu, key, timing, bytes, extra);
            fillLogits();
            gpu.sync();
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    private void fillLogits() {
        fill.bf16(logits, (long) n * v, SEED, -6f, 6f, stream);
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: loss and in-place gradient (two kernels), wait for them; repeated over its own output. */
    @Benchmark
    public void forwardBackward() {
        CrossEntropy.forwardBackward(logits, DType.BF16, targets, rowLoss, lossSum, logits, n, v, gradScale, stream);
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
