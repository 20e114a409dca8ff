package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.Gelu;
import dev.rlsr.kernels.GeluReference;
import dev.rlsr.kernels.LayerNorm;
import dev.rlsr.kernels.LayerNormReference;
import dev.rlsr.kernels.Pooling;
import dev.rlsr.kernels.PoolingReference;

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
 * The reward encoder's (BERT, all-MiniLM-L6-v2: C = 384, F = 1536) element- and row-wise ops in bf16 on a batch of
 * B = 64 sequences of T = 128 tokens (N = 8192 rows): LayerNorm (N, C) (reads x, writes out), exact GELU over the MLP
 * activations (N, F), masked mean pooling (B, T, C) -&gt; (B, C) (reads the hidden states once). Each is validated
 * against its CPU reference on data read back from the device (sampled rows), then timed with CUDA events.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class EncoderOpsBench {
    private static final long SEED = 20261201L;
    private static final float EPS = 1e-12f;

    /** batch B, tokens T, hidden C, MLP width F */
    @Param({"B64_T128_C384_F1536_bf16"})
    public String workload;

    private GpuSession gpu;
    private int b;
    private int t;
    private int c;
    private int f;
    private long x;
    private long w;
    private long bias;
    private long out;
    private long h;
    private long hOut;
    private long mask;
    private long pooled;
    private long stream;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
        String op = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
        String key = op + "_" + workload;
        gpu = GpuSession.open("EncoderOpsBench " + workload);
        try {
            int[] d = Validation.dims(workload, "B", "T", "C", "F");
            b = d[0];
            t = d[1];
            c = d[2];
            f = d[3];
            int n = b * t;
            stream = gpu.streamHandle();
            x = gpu.alloc(2L * n * c).address();
            out = gpu.alloc(2L * n * c).address();
            w = gpu.alloc(2L * c).address();
            bias = gpu.alloc(2L * c).address();
            h = gpu.alloc(2L * n * f).address();
            hOut = gpu.alloc(2L * n * f).address();
            pooled = gpu.alloc(2L * b * c).address();
            DeviceBuffer mb = gpu.alloc(4L * n);
            mask = mb.address();
            int[] hm = new int[n];
            for (int i = 0; i < n; i++) {
                hm[i] = (i % t) < t - 3 * (i / t % 40) ? 1 : 0; // padded sequences of different lengths
            }
            mb.copyFrom(hm);
            try (DeviceFill fill = new DeviceFill(gpu)) {
                fill.bf16(x, (long) n * c, SEED, -3f, 3f, stream);
                fill.bf16(w, c, SEED + 1, 0.5f, 1.5f, stream);
                fill.bf16(bias, c, SEED + 2, -0.5f, 0.5f, stream);
                fill.bf16(h, (long) n * f, SEED + 3, -5f, 5f, stream);
            }
            gpu.sync();
            Map<String, Object> extra = new LinkedHashMap<>();
            int[] rows = Validation.sampleRows(n, SEED);
            GpuSession.Timing timing;
            long bytes;
            switch (op) {
                case "layerNorm" -> {
                    LayerNorm.forward(x, w, bias, out, DType.BF16, n, c, EPS, stream);
                    gpu.sync();
                    short[] hw = Validation.shorts(w, c), hb = Validation.shorts(bias, c);
                    double err = 0;
                    for (int r : rows) {
                        short[] ref = new short[c];
                        LayerNormReference.forward(Validation.shorts(x + 2L * r * c, c), 0, hw, 0, hb, 0, EPS, ref, 0,
                                1, c);
                        // fp32 statistics in another order, both rounded to bf16: one bf16 ulp (plus a 1e-3 floor)
                        err = Math.max(err, Validation.assertClose("layernorm row " + r,
                                BF16.toFloat(Validation.shorts(out + 2L * r * c, c)), BF16.toFloat(ref), 1e-3, 0x1p-7));
                    }
                    extra.put("max_abs_err", err);
                    timing = gpu.time(() -> LayerNorm.forward(x, w, bias, out, DType.BF16, n, c, EPS, stream), null, 3,
                            31);
                    bytes = 4L * n * c;
                }
                case "gelu" -> {
                    Gelu.forward(h, hOut, DType.BF16, (long) n * f, stream);
                    gpu.sync();
                    double err = 0;
                    for (int r : rows) {
                        short[] ref = new short[f];
                        GeluReference.forward(Validation.shorts(h + 2L * r * f, f), 0, ref, 0, f);
                        // erfcf vs the CPU's Chebyshev erfc (both within ~1e-6 relative), rounded to bf16
                        err = Math.max(err, Validation.assertClose("gelu row " + r,
                                BF16.toFloat(Validation.shorts(hOut + 2L * r * f, f)), BF16.toFloat(ref), 1e-30,
                                0x1p-7));
                    }
                    extra.put("max_abs_err", err);
                    timing = gpu.time(() -> Gelu.forward(h, hOut, DType.BF16, (long) n * f, stream), null, 3, 31);
                    bytes = 4L * n * f;
                }
                case "meanPool" -> {
                    Pooling.meanPool(x, mask, pooled, DType.BF16, b, t, c, stream);
                    gpu.sync();
                    short[] ref = new short[b * c];
                    PoolingReference.meanPool(Validation.shorts(x, n * c), 0, hm, 0, ref, 0, b, t, c);
                    // the same fp32 sums in the same order: bit for bit
                    extra.put("max_abs_err", Validation.assertClose("mean pool",
                            BF16.toFloat(Validation.shorts(pooled, b * c)), BF16.toFloat(ref), 0, 0));
                    timing = gpu.time(() -> Pooling.meanPool(x, mask, pooled, DType.BF16, b, t, c, stream), null, 3,
                            31);
                    bytes = 2L * n * c + 4L * n + 2L * b * c;
                }
                default -> throw new IllegalStateException("unknown benchmark " + op);
            }
            extra.put("what", op + " bf16");
            GpuResults.kernel(gpu, key, timing, bytes, extra);
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: LayerNorm (N, C), wait for it. */
    @Benchmark
    public void layerNorm() {
        LayerNorm.forward(x, w, bias, out, DType.BF16, b * t, c, EPS, stream);
        gpu.sync();
    }

    /** The Java call: GELU over (N, F), wait for it. */
    @Benchmark
    public void gelu() {
        Gelu.forward(h, hOut, DType.BF16, (long) b * t * f, stream);
        gpu.sync();
    }

    /** The Java call: masked mean pooling, wait for it. */
    @Benchmark
    public void meanPool() {
        Pooling.meanPool(x, mask, pooled, DType.BF16, b, t, c, stream);
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (gpu != null) {
            gpu.close();
        }
    }
}
