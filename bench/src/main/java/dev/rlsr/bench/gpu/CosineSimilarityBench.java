package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.CosineSimilarity;
import dev.rlsr.kernels.CosineSimilarityReference;
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
import java.util.concurrent.TimeUnit;

/**
 * Batched cosine similarity of row pairs a (N,D), b (N,D) -> out (N) fp32, the RLSR reward. Workloads: 16384 x 4096
 * fp32 (target <= 0.15 ms on an H200), 4096 x 1024 fp32, 4096 x 384 bf16 (MiniLM-sized embeddings).
 * Setup fills a and b on the GPU, validates sampled rows against {@link CosineSimilarityReference}, then times with
 * CUDA events (L2 flushed before each run: the smaller inputs would otherwise be read from cache).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class CosineSimilarityBench {
    private static final long SEED = 4096L;

    /** pairs N, embedding size D, dtype */
    @Param({"N16384_D4096_fp32", "N4096_D1024_fp32", "N4096_D384_bf16"})
    public String workload;

    private GpuSession gpu;
    private DType dtype;
    private int n;
    private int d;
    private long a;
    private long b;
    private long out;
    private long stream;

    @Setup(Level.Trial)
    public void setup() {
        String key = "cosine_" + workload;
        gpu = GpuSession.open("CosineSimilarityBench " + workload);
        try {
            int[] nd = Validation.dims(workload, "N", "D");
            n = nd[0];
            d = nd[1];
            dtype = workload.endsWith("_bf16") ? DType.BF16 : workload.endsWith("_fp32") ? DType.F32 : null;
            if (dtype == null) {
                throw new IllegalArgumentException("workload " + workload + " must end in _fp32 or _bf16");
            }
            stream = gpu.streamHandle();
            long inBytes = (long) n * d * dtype.bytes();
            a = gpu.alloc(inBytes).address();
            b = gpu.alloc(inBytes).address();
            DeviceBuffer o = gpu.alloc(4L * n);
            out = o.address();
            try (DeviceFill fill = new DeviceFill(gpu)) {
                if (dtype == DType.F32) {
                    fill.f32(a, (long) n * d, SEED, -1f, 1f, stream);
                    fill.f32(b, (long) n * d, SEED + 1, -0.5f, 1.5f, stream); // shifted: cosines away from 0
                } else {
                    fill.bf16(a, (long) n * d, SEED, -1f, 1f, stream);
                    fill.bf16(b, (long) n * d, SEED + 1, -0.5f, 1.5f, stream);
                }
                gpu.sync();
            }
            o.fill(Float.NaN);
            gpu.sync();

            CosineSimilarity.pairs(a, b, dtype, out, n, d, stream);
            gpu.sync();
            float[] got = Validation.floats(out, n);
            Validation.assertFinite("cos", got);
            int[] rows = Validation.sampleRows(n, SEED);
            float[] ref = new float[rows.length];
            float[] sample = new float[rows.length];
            for (int k = 0; k < rows.length; k++) {
                long off = (long) rows[k] * d * dtype.bytes();
                ref[k] = dtype == DType.F32
                        ? CosineSimilarityReference.pairs(Validation.floats(a + off, d), Validation.floats(b + off, d),
                                1, d, CosineSimilarity.DEFAULT_EPS)[0]
                        : CosineSimilarityReference.pairs(Validation.shorts(a + off, d), Validation.shorts(b + off, d),
                                1, d, CosineSimilarity.DEFAULT_EPS)[0];
                sample[k] = got[rows[k]];
            }
            // fp32 accumulation over D terms vs a double reference on identical inputs
            double err = Validation.assertClose("cos " + workload, sample, ref, 2e-5, 1e-4);

            GpuSession.Timing timing = gpu.time(() -> CosineSimilarity.pairs(a, b, dtype, out, n, d, stream), null, 5, 41);
            Map<String, Object> extra = new LinkedHashMap<>();
            extra.put("rows_validated", rows.length);
            extra.put("max_abs_err", err);
            extra.put("what", "pairs: a, b read once, out written");
            GpuResults.kernel(gpu, key, timing, 2 * inBytes + 4L * n, extra);
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: launch, wait. */
    @Benchmark
    public void pairs() {
        CosineSimilarity.pairs(a, b, dtype, out, n, d, stream);
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (gpu != null) {
            gpu.close();
        }
    }
}
