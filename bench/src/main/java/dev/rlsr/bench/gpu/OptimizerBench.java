package dev.rlsr.bench.gpu;

import dev.rlsr.kernels.AdamWKernel;
import dev.rlsr.kernels.AdamWReference;
import dev.rlsr.kernels.GlobalNorm;
import dev.rlsr.kernels.GlobalNormReference;

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

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The optimizer step over Qwen2.5-0.5B's 494,032,768 parameters as one flat fp32 store: the global gradient norm with
 * the clip scale (reads the gradients: 4 bytes per parameter), and AdamW reading that scale from the device and
 * writing the bf16 compute copy (reads param, grad, m, v; writes param, m, v and the copy: 30 bytes per parameter,
 * 14.8 GB per step).
 *
 * <p>Setup fills the buffers on the GPU. AdamW is validated bit for bit against {@link AdamWReference} on three
 * chunks (start, middle, end) read back before and after one step; the global norm against a double sum of the
 * first 2^24 gradients (a second launch on that prefix) and by repeating bit for bit on the whole store.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class OptimizerBench {
    private static final long SEED = 20261129L;
    private static final float LR = 3e-5f, B1 = 0.9f, B2 = 0.95f, EPS = 1e-8f, WD = 0.1f, MAX_NORM = 1f;
    private static final double BC1 = 1 - Math.pow(B1, 10), BC2 = 1 - Math.pow(B2, 10);
    private static final int CHUNK = 1 << 16;

    /** parameters P */
    @Param({"P494032768"})
    public String workload;

    private GpuSession gpu;
    private long n;
    private long decayEnd;
    private long param;
    private long grad;
    private long m;
    private long v;
    private long copy;
    private long partials;
    private long sumSq;
    private long scale;
    private long stream;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
        boolean adamw = params.getBenchmark().endsWith(".adamw");
        String key = (adamw ? "adamw_" : "global_norm_") + workload;
        gpu = GpuSession.open("OptimizerBench " + workload);
        try {
            n = Validation.dims(workload, "P")[0];
            decayEnd = n - 1_000_000; // norms and biases last, undecayed
            stream = gpu.streamHandle();
            param = gpu.alloc(4 * n).address();
            grad = gpu.alloc(4 * n).address();
            m = gpu.alloc(4 * n).address();
            v = gpu.alloc(4 * n).address();
            copy = gpu.alloc(2 * n).address();
            partials = gpu.alloc(GlobalNorm.scratchBytes(n)).address();
            sumSq = gpu.alloc(4).address();
            scale = gpu.alloc(4).address();
            try (DeviceFill fill = new DeviceFill(gpu)) {
                fill.f32(param, n, SEED, -0.1f, 0.1f, stream);
                fill.f32(grad, n, SEED + 1, -1e-3f, 1e-3f, stream);
                fill.f32(m, n, SEED + 2, -1e-4f, 1e-4f, stream);
                fill.f32(v, n, SEED + 3, 1e-9f, 1e-7f, stream);
            }
            gpu.sync();
            Map<String, Object> extra = new LinkedHashMap<>();

            // ---- global norm: a double sum of a prefix, then the whole store twice, bit for bit ----
            int prefix = 1 << 24;
            float[] head = Validation.floats(grad, prefix);
            double want = 0;
            for (float h : head) {
                want += (double) h * h;
            }
            GlobalNorm.sumOfSquares(grad, prefix, partials, sumSq, stream);
            gpu.sync();
            // the device sums in double and rounds once
            extra.put("max_abs_err_prefix_sumsq", Validation.assertClose("sum of squares of 2^24 gradients",
                    Validation.floats(sumSq, 1), new float[] {(float) want}, 0, 2e-7));
            GlobalNorm.clipScale(grad, n, partials, sumSq, MAX_NORM, scale, stream);
            gpu.sync();
            float[] first = {Validation.floats(sumSq, 1)[0], Validation.floats(scale, 1)[0]};
            GlobalNorm.clipScale(grad, n, partials, sumSq, MAX_NORM, scale, stream);
            gpu.sync();
            float[] second = {Validation.floats(sumSq, 1)[0], Validation.floats(scale, 1)[0]};
            if (!Arrays.equals(first, second)) {
                throw new IllegalStateException("global norm is not deterministic: " + Arrays.toString(first) + " vs "
                        + Arrays.toString(second));
            }
            Validation.assertClose("clip scale", new float[] {second[1]},
                    new float[] {GlobalNormReference.clipScale(second[0], MAX_NORM)}, 0, 1e-6);
            extra.put("sumsq", second[0]);
            extra.put("clip_scale", second[1]);

            if (adamw) {
                long[] starts = {0, n / 2 - CHUNK / 2, n - CHUNK};
                float[][] hp = new float[3][], hg = new float[3][], hm = new float[3][], hv = new float[3][];
                for (int k = 0; k < 3; k++) {
                    hp[k] = Validation.floats(param + 4 * starts[k], CHUNK);
                    hg[k] = Validation.floats(grad + 4 * starts[k], CHUNK);
                    hm[k] = Validation.floats(m + 4 * starts[k], CHUNK);
                    hv[k] = Validation.floats(v + 4 * starts[k], CHUNK);
                }
                AdamWKernel.step(param, grad, m, v, copy, scale, n, decayEnd, LR, B1, B2, EPS, WD, BC1, BC2, stream);
                gpu.sync();
                for (int k = 0; k < 3; k++) {
                    short[] refCopy = new short[CHUNK];
                    int end = (int) Math.max(0, Math.min(CHUNK, decayEnd - starts[k]));
                    AdamWReference.step(hp[k], 0, hg[k], 0, hm[k], 0, hv[k], 0, refCopy, 0, CHUNK, end, second[1], LR,
                            B1, B2, EPS, WD, BC1, BC2);
                    // the same fp32 operations in the same order: bit for bit
                    Validation.assertClose("param chunk " + k, Validation.floats(param + 4 * starts[k], CHUNK), hp[k],
                            0, 0);
                    Validation.assertClose("m chunk " + k, Validation.floats(m + 4 * starts[k], CHUNK), hm[k], 0, 0);
                    Validation.assertClose("v chunk " + k, Validation.floats(v + 4 * starts[k], CHUNK), hv[k], 0, 0);
                    if (!Arrays.equals(refCopy, Validation.shorts(copy + 2 * starts[k], CHUNK))) {
                        throw new IllegalStateException("bf16 compute copy chunk " + k + " differs from the reference");
                    }
                }
                extra.put("validated", "3 chunks of " + CHUNK + " bit for bit");
                GpuSession.Timing timing = gpu.time(
                        () -> AdamWKernel.step(param, grad, m, v, copy, scale, n, decayEnd, LR, B1, B2, EPS, WD, BC1, BC2,
                                stream),
                        null, 2, 21);
                extra.put("what", "AdamW: param, grad, m, v read; param, m, v, bf16 copy written");
                GpuResults.kernel(gpu, key, timing, 30 * n, extra);
            } else {
                GpuSession.Timing timing = gpu.time(
                        () -> GlobalNorm.clipScale(grad, n, partials, sumSq, MAX_NORM, scale, stream), null, 3, 31);
                extra.put("what", "global norm: gradients read once, partials, sum of squares and clip scale");
                GpuResults.kernel(gpu, key, timing, 4 * n, extra);
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

    /** The Java call: one AdamW step over the store, wait for it. */
    @Benchmark
    public void adamw() {
        AdamWKernel.step(param, grad, m, v, copy, scale, n, decayEnd, LR, B1, B2, EPS, WD, BC1, BC2, stream);
        gpu.sync();
    }

    /** The Java call: the global norm and clip scale (two kernels), wait for them. */
    @Benchmark
    public void globalNorm() {
        GlobalNorm.clipScale(grad, n, partials, sumSq, MAX_NORM, scale, stream);
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (gpu != null) {
            gpu.close();
        }
    }
}
