package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.kernels.Attention;
import dev.rlsr.kernels.AttentionReference;
import dev.rlsr.kernels.BF16;
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
import org.openjdk.jmh.infra.BenchmarkParams;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Attention kernels at the Qwen2.5-0.5B shapes, bf16: the causal training forward and backward (B 8, T 1024, 14 query
 * heads, 2 kv heads, D 64) and a decode step (64 rows, one new token after {@code K - 1} cached positions, against a
 * cache of capacity 2K); and the decode step of a CUDA graph, {@link Attention#decodeAt}, whose cache length L is
 * read from device memory and whose grid is sized from the capacity S: 64 rows at L = 64 and L = 256 of a 384-row
 * cache ({@code decodeAtL64}, {@code decodeAtL256}). Its extra fields give the KV bytes read per step
 * ({@code 2 * B * L * KV * D * 2}, only the L valid rows are read) and the kernel time of {@link Attention#decode} at
 * the same L (splits sized from L instead of S), what the fixed grid costs.
 *
 * <p>FLOPs are counted for the causal work only, the way FlashAttention reports them: a (query, key) pair a query
 * sees costs 2 x 2 x D for Q·Kᵀ and P·V, so the forward is {@code 4 * B * H * D * T(T+1)/2} and the backward 2.5 times
 * that (five products: S, dP, dV, dK, dQ; this backward recomputes S and dP a second time for dq, seven products, which
 * are not counted). Decode reads the cache once per kv head and is memory-bound: it is reported in GB/s of K and V read
 * (plus q and out), next to its TFLOP/s.
 *
 * <p>Setup fills the inputs on the GPU, runs the kernel, validates batch entries 0 and B-1 against
 * {@link AttentionReference} (the CPU twin, on the same bf16 inputs read back), then times with CUDA events. bf16
 * forward and backward run on the tensor-core kernels ({@code -Drlsr.attention.tensorCores=false}: the fp32-FMA
 * ones), decode on the fp32-FMA kernel.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class AttentionBench {
    private static final long SEED = 20261127L;

    /** Training shape: batch B, sequence T, query heads H, kv heads KV, head dim D. */
    @Param({"B8_T1024_H14_KV2_D64_bf16"})
    public String workload;

    /** Decode shape: rows B, cached positions K - 1 before the new token, heads, head dim. */
    @Param({"B64_K512_H14_KV2_D64_bf16"})
    public String decodeWorkload;

    /**
     * Graph decode shape: rows B, cache capacity S (kStride), heads, head dim; the length L comes from the method
     * (one param value, so JMH's cross product of params does not rerun the other methods).
     */
    @Param({"B64_S384_H14_KV2_D64_bf16"})
    public String decodeAtWorkload;

    private GpuSession gpu;
    private DeviceFill fill;
    private int b;
    private int qLen;
    private int kLen;
    private int kStride;
    private int qOffset;
    private int h;
    private int kv;
    private int d;
    private float scale;
    private long q;
    private long k;
    private long v;
    private long out;
    private long lse;
    private long dOut;
    private long dq;
    private long dk;
    private long dv;
    private long workspace;
    private long workspaceBytes;
    private long cacheLen;
    private long stream;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
        String method = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
        boolean decodeAt = method.startsWith("decodeAtL");
        boolean decode = method.equals("decode") || decodeAt;
        int atLen = decodeAt ? Integer.parseInt(method.substring("decodeAtL".length())) : 0;
        String shape = decodeAt ? decodeAtWorkload : decode ? decodeWorkload : workload;
        String key = switch (method) {
            case "forward" -> "attn_fwd_";
            case "backward" -> "attn_bwd_";
            case "decode" -> "attn_dec_";
            default -> "attn_decat_";
        } + (decodeAt ? shape.replaceFirst("_S", "_L" + atLen + "_S") : shape);
        gpu = GpuSession.open("AttentionBench " + method + " " + shape);
        try {
            if (!shape.endsWith("_bf16")) {
                throw new IllegalArgumentException("only bf16 is benchmarked, got " + shape);
            }
            if (decodeAt) {
                int[] x = Validation.dims(shape, "B", "S", "H", "KV", "D");
                b = x[0];
                kStride = x[1];
                h = x[2];
                kv = x[3];
                d = x[4];
                if (atLen < 1 || atLen > kStride) {
                    throw new IllegalArgumentException("L " + atLen + " outside [1, S = " + kStride + "]");
                }
                qLen = 1;
                kLen = atLen;
                qOffset = kLen - 1;
            } else if (decode) {
                int[] x = Validation.dims(shape, "B", "K", "H", "KV", "D");
                b = x[0];
                kLen = x[1];
                h = x[2];
                kv = x[3];
                d = x[4];
                qLen = 1;
                qOffset = kLen - 1;
                kStride = 2 * kLen;
            } else {
                int[] x = Validation.dims(shape, "B", "T", "H", "KV", "D");
                b = x[0];
                qLen = x[1];
                h = x[2];
                kv = x[3];
                d = x[4];
                kLen = kStride = qLen;
                qOffset = 0;
            }
            scale = (float) (1.0 / Math.sqrt(d));
            stream = gpu.streamHandle();
            long qn = (long) b * qLen * h * d, kn = (long) b * kStride * kv * d, ln = (long) b * h * qLen;
            q = gpu.alloc(2 * qn).address();
            k = gpu.alloc(2 * kn).address();
            v = gpu.alloc(2 * kn).address();
            out = gpu.alloc(2 * qn).address();
            lse = gpu.alloc(4 * ln).address();
            fill = new DeviceFill(gpu);
            fill.bf16(q, qn, SEED, -2f, 2f, stream);
            fill.bf16(k, kn, SEED + 1, -2f, 2f, stream);
            fill.bf16(v, kn, SEED + 2, -1f, 1f, stream);
            if (decode) {
                workspaceBytes = Attention.decodeWorkspaceBytes(b, qLen, h, d);
                workspace = gpu.alloc(workspaceBytes).address();
            }
            if (decodeAt) {
                cacheLen = gpu.alloc(4).address();
                CudaDriver.memsetD32Async(cacheLen, kLen, 1, stream);
            }
            if (method.equals("backward")) {
                dOut = gpu.alloc(2 * qn).address();
                dq = gpu.alloc(2 * qn).address();
                dk = gpu.alloc(2 * kn).address();
                dv = gpu.alloc(2 * kn).address();
                fill.bf16(dOut, qn, SEED + 3, -1f, 1f, stream);
            }
            gpu.sync();

            Map<String, Object> extra = new LinkedHashMap<>();
            if (decodeAt) {
                decodeAtOnce();
            } else if (decode) {
                decodeOnce();
            } else {
                forwardOnce();
            }
            if (method.equals("backward")) {
                backwardOnce();
            }
            gpu.sync();
            extra.put("max_abs_err", validate(method));

            GpuSession.Timing timing = gpu.time(switch (method) {
                case "forward" -> this::forwardOnce;
                case "backward" -> this::backwardOnce;
                case "decode" -> this::decodeOnce;
                default -> this::decodeAtOnce;
            }, null, 3, 21);
            double pairs = decode ? (double) b * h * kLen : (double) b * h * qLen * (qLen + 1) / 2.0;
            double flops = 4.0 * d * pairs * (method.equals("backward") ? 2.5 : 1.0);
            double tflops = flops / (timing.medianMs() * 1e-3) / 1e12;
            long bytes = decode ? 2L * 2 * b * kLen * kv * d + 2L * 2 * qn + 4 * ln
                    : method.equals("forward") ? 2L * (2 * qn + 2 * kn) + 4 * ln
                    : 2L * (4 * qn + 4 * kn) + 4 * ln;
            extra.put("what", switch (method) {
                case "forward" -> "causal forward, out and lse";
                case "backward" -> "backward: dq, then dk and dv";
                case "decode" -> "decode: one token, cache read once per kv head, splits + combine";
                default -> "graph decode step: cache length read from device memory, splits sized from the capacity";
            });
            if (decode) {
                extra.put("kv_bytes_per_step", 2L * 2 * b * kLen * kv * d);
            }
            if (decodeAt) {
                // the same step with the length as a host value (splits sized from L): what the fixed grid costs
                GpuSession.Timing eager = gpu.time(this::decodeOnce, null, 3, 21);
                extra.put("decode_same_L_kernel_ms", eager.medianMs());
            }
            extra.put("tflops", tflops);
            extra.put("flops", flops);
            GpuResults.kernel(gpu, key, timing, bytes, extra);
            System.out.printf(Locale.ROOT, "[gpu] %-34s %.2f TFLOP/s (causal FLOPs %.3g)%n", key, tflops, flops);
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    private void forwardOnce() {
        Attention.forward(q, k, v, out, lse, 0, DType.BF16, b, qLen, kLen, kStride, qOffset, h, kv, d, scale, stream);
    }

    private void backwardOnce() {
        Attention.backward(q, k, v, out, lse, dOut, dq, dk, dv, 0, DType.BF16, b, qLen, kLen, kStride, qOffset, h, kv,
                d, scale, stream);
    }

    private void decodeOnce() {
        Attention.decode(q, k, v, out, lse, 0, workspace, workspaceBytes, DType.BF16, b, qLen, kLen, kStride, qOffset,
                h, kv, d, scale, stream);
    }

    private void decodeAtOnce() {
        Attention.decodeAt(q, k, v, out, lse, 0, workspace, workspaceBytes, DType.BF16, b, kStride, h, kv, d, scale,
                cacheLen, stream);
    }

    /** Batch entries 0 and B-1 against the reference on the same bf16 inputs; returns the largest absolute error. */
    private double validate(String method) {
        double worst = 0;
        int qw = h * d, kw = kv * d;
        for (int bb : new int[] {0, b - 1}) {
            long qo = 2L * bb * qLen * qw, ko = 2L * bb * kStride * kw;
            short[] qb = Validation.shorts(q + qo, qLen * qw), kb = Validation.shorts(k + ko, kStride * kw);
            short[] vb = Validation.shorts(v + ko, kStride * kw);
            short[] ref = new short[qLen * qw];
            float[] refLse = new float[h * qLen];
            AttentionReference.forward(qb, 0, kb, 0, vb, 0, ref, 0, refLse, 0, null, 0, 1, qLen, kLen, kStride,
                    qOffset, h, kv, d, scale);
            float[] got = BF16.toFloat(Validation.shorts(out + qo, qLen * qw));
            float[] gotLse = Validation.floats(lse + 4L * bb * h * qLen, h * qLen);
            Validation.assertFinite("out", got);
            // one bf16 ulp (2^-7 relative) between the two roundings of the outputs, and the tensor cores round P
            // (and dS) to bf16 before the second product: up to 2^-9 per term, so an absolute 2^-7 of the tensor's
            // largest magnitude (AttentionGpuTest checks the tight per-element bound)
            float[] refOut = BF16.toFloat(ref);
            worst = Math.max(worst, Validation.assertClose("out batch " + bb, got, refOut, maxAbs(refOut) / 128,
                    1.0 / 128));
            worst = Math.max(worst, Validation.assertClose("lse batch " + bb, gotLse, refLse, 1e-4, 1e-5));
            if (method.equals("backward")) {
                short[] ob = Validation.shorts(out + qo, qLen * qw), gb = Validation.shorts(dOut + qo, qLen * qw);
                short[] rq = new short[qLen * qw], rk = new short[kStride * kw], rv = new short[kStride * kw];
                AttentionReference.backward(qb, 0, kb, 0, vb, 0, ob, 0, gotLse, 0, gb, 0, rq, 0, rk, 0, rv, 0, null, 0,
                        1, qLen, kLen, kStride, qOffset, h, kv, d, scale);
                float[][] got3 = {BF16.toFloat(Validation.shorts(dq + qo, qLen * qw)),
                        BF16.toFloat(Validation.shorts(dk + ko, kStride * kw)),
                        BF16.toFloat(Validation.shorts(dv + ko, kStride * kw))};
                short[][] ref3 = {rq, rk, rv};
                for (int t = 0; t < 3; t++) {
                    Validation.assertFinite("d" + "qkv".charAt(t), got3[t]);
                    float[] r3 = BF16.toFloat(ref3[t]);
                    worst = Math.max(worst, Validation.assertClose("d" + "qkv".charAt(t) + " batch " + bb, got3[t],
                            r3, maxAbs(r3) / 128, 1.0 / 128));
                }
            }
        }
        return worst;
    }

    private static double maxAbs(float[] x) {
        double m = 0;
        for (float f : x) {
            m = Math.max(m, Math.abs(f));
        }
        return m;
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: launch the causal forward, wait for it. */
    @Benchmark
    public void forward() {
        forwardOnce();
        gpu.sync();
    }

    /** The Java call: launch the backward (two kernels), wait for it. */
    @Benchmark
    public void backward() {
        backwardOnce();
        gpu.sync();
    }

    /** The Java call: launch one decode step (splits and combine), wait for it. */
    @Benchmark
    public void decode() {
        decodeOnce();
        gpu.sync();
    }

    /** The Java call: one graph decode step at L = 64 of the 384-row cache (eager launches here), wait for it. */
    @Benchmark
    public void decodeAtL64() {
        decodeAtOnce();
        gpu.sync();
    }

    /** The Java call: one graph decode step at L = 256 of the 384-row cache, wait for it. */
    @Benchmark
    public void decodeAtL256() {
        decodeAtOnce();
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
