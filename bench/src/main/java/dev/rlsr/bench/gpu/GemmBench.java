package dev.rlsr.bench.gpu;

import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.Gemm;
import dev.rlsr.kernels.GemmReference;

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
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The GEMMs of one Qwen2.5-0.5B layer's training step on {@link Gemm} (cuBLASLt), bf16 with fp32 accumulation, N =
 * 8192 tokens: hidden C = 896, q/k/v projections fused (896 -> 896 + 2*128, with bias), o (896 -> 896), gate/up fused
 * (896 -> 2*4864), down (4864 -> 896) and the LM head (896 -> 151936, whole). Three GEMMs per linear layer:
 * {@code fwd} y (N,out) = x W^T (+ b), {@code dx} dX (N,in) = dY W, {@code dw} dW (out,in) += dY^T X into fp32 (with
 * the bias gradient in the epilogue for q/k/v). TFLOP/s are reported next to the dense bf16 peak of the GPU (989 for
 * H100 SXM and H200, 756 for H100 PCIe).
 *
 * <p>Setup fills the operands on the device with {@link DeviceFill} (uniform [-1, 1)), validates sampled outputs
 * against {@link GemmReference} (the inputs regenerated on the host from the fill's hash, D read back), then times
 * the GEMM with CUDA events ({@code GpuSession.time}); the JMH call adds the Java call and a stream synchronisation.
 * Class name distinct from the CPU {@code dev.rlsr.bench.cpu.GemmBench}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 2, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class GemmBench {
    private static final long SEED = 20261127L;
    private static final float LO = -1f;
    private static final float HI = 1f;

    /** {layer}_{fwd|dx|dw} */
    @Param({"qkv_fwd", "qkv_dx", "qkv_dw", "o_fwd", "o_dx", "o_dw", "gateup_fwd", "gateup_dx", "gateup_dw",
            "down_fwd", "down_dx", "down_dw", "lmhead_fwd", "lmhead_dx", "lmhead_dw"})
    public String workload;

    /** N = B*T tokens. */
    @Param({"8192"})
    public int tokens;

    /** A linear layer {@code y = x W^T (+ b)}, W (out,in). */
    record Linear(String name, int in, int out, boolean bias) {
    }

    static final Linear[] LAYERS = {new Linear("qkv", 896, 896 + 2 * 128, true), new Linear("o", 896, 896, false),
            new Linear("gateup", 896, 2 * 4864, false), new Linear("down", 4864, 896, false),
            new Linear("lmhead", 896, 151936, false)};

    /** One GEMM in {@link Gemm}'s terms: D (m,n) = op(A) op(B) + beta D. */
    record Problem(boolean transA, boolean transB, int m, int n, int k, DType cdType, float beta,
            Gemm.Epilogue epilogue) {
        int lda() {
            return transA ? m : k;
        }

        int ldb() {
            return transB ? k : n;
        }

        long lengthA() {
            return (long) m * k;
        }

        long lengthB() {
            return (long) k * n;
        }

        double flops() {
            return 2.0 * m * n * k;
        }
    }

    static Problem problem(Linear l, String pass, int tokens) {
        return switch (pass) {
            case "fwd" -> new Problem(false, true, tokens, l.out, l.in, DType.BF16, 0f,
                    l.bias ? Gemm.Epilogue.BIAS : Gemm.Epilogue.NONE);
            case "dx" -> new Problem(false, false, tokens, l.in, l.out, DType.BF16, 0f, Gemm.Epilogue.NONE);
            case "dw" -> new Problem(true, false, l.out, l.in, tokens, DType.F32, 1f,
                    l.bias ? Gemm.Epilogue.BIAS_GRADIENT : Gemm.Epilogue.NONE);
            default -> throw new IllegalArgumentException("unknown pass '" + pass + "'; expected fwd, dx or dw");
        };
    }

    /** Dense bf16 tensor-core peak in TFLOP/s (NVIDIA data sheets, without sparsity); NaN for other GPUs. */
    static double denseBf16PeakTflops(String device) {
        String d = device.toUpperCase(Locale.ROOT);
        if (d.contains("H200")) {
            return 989.4;
        }
        if (d.contains("H100")) {
            return d.contains("PCIE") ? 756.0 : 989.4;
        }
        return Double.NaN;
    }

    private GpuSession gpu;
    private DeviceFill fill;
    private Gemm gemm;
    private Problem p;
    private long a;
    private long b;
    private long d;
    private long bias;
    private long stream;

    @Setup(Level.Trial)
    public void setup() {
        String key = "gemm_" + workload; // table.py pairs it with the JMH score of GemmBench.gemm
        gpu = GpuSession.open("GemmBench " + workload);
        try {
            String[] parts = workload.split("_");
            Linear layer = null;
            for (Linear l : LAYERS) {
                if (l.name.equals(parts[0])) {
                    layer = l;
                }
            }
            if (layer == null || parts.length != 2) {
                throw new IllegalArgumentException("workload '" + workload + "' must be <layer>_<pass>, layer one of"
                        + " qkv, o, gateup, down, lmhead");
            }
            p = problem(layer, parts[1], tokens);
            stream = gpu.streamHandle();
            fill = new DeviceFill(gpu);
            gemm = Gemm.create(stream);
            a = gpu.alloc(p.lengthA() * 2).address();
            b = gpu.alloc(p.lengthB() * 2).address();
            d = gpu.alloc((long) p.m * p.n * p.cdType.bytes()).address();
            fill.bf16(a, p.lengthA(), SEED + 1, LO, HI, stream);
            fill.bf16(b, p.lengthB(), SEED + 2, LO, HI, stream);
            if (p.cdType == DType.F32) {
                fill.f32(d, (long) p.m * p.n, SEED + 3, LO, HI, stream); // dW accumulates onto this
            } else {
                fill.bf16(d, (long) p.m * p.n, SEED + 3, LO, HI, stream); // overwritten (beta = 0)
            }
            if (p.epilogue == Gemm.Epilogue.BIAS) {
                bias = gpu.alloc(2L * p.n).address();
                fill.bf16(bias, p.n, SEED + 4, LO, HI, stream);
            } else if (p.epilogue == Gemm.Epilogue.BIAS_GRADIENT) {
                bias = gpu.alloc(4L * p.m).address();
                dev.rlsr.bindings.CudaDriver.memsetD32(bias, 0x7fc00000, p.m); // NaN: must be written
            }
            gpu.sync();
            Map<String, Object> extra = validate();
            GpuSession.Timing timing = gpu.time(this::run, null, 3, 21);
            extra.put("tokens", tokens);
            extra.put("what", workload + ": D (" + p.m + "," + p.n + ") " + p.cdType + " = A" + (p.transA ? "^T" : "")
                    + " B" + (p.transB ? "^T" : "") + ", K " + p.k + ", bf16 in, fp32 accumulate"
                    + (p.beta != 0 ? ", + D" : "") + (p.epilogue == Gemm.Epilogue.NONE ? "" : ", " + p.epilogue));
            GpuResults.compute(gpu, key, timing, p.flops(), denseBf16PeakTflops(gpu.deviceName()), extra);
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    private void run() {
        gemm.matmulStridedBatched(p.transA, p.transB, p.m, p.n, p.k, 1f, a, p.lda(), 0, b, p.ldb(), 0, DType.BF16,
                p.beta, d, p.n, 0, d, p.n, 0, p.cdType, 1, p.epilogue, bias,
                p.epilogue == Gemm.Epilogue.NONE ? null : p.epilogue == Gemm.Epilogue.BIAS ? DType.BF16 : DType.F32);
    }

    /**
     * Runs the GEMM once and checks a sample of D (6 rows x 8 columns) and the bias gradient against
     * {@link GemmReference} on the same inputs. Tolerance: both sides are within gamma(K+4) sum|a b| of the exact
     * value (the GPU twice that: tensor cores may truncate), plus one bf16 ulp (2^-7 relative) when both round to bf16.
     */
    private Map<String, Object> validate() {
        int[] rows = Validation.sampleRows(p.m, SEED);
        Random r = new Random(SEED);
        int[] cols = java.util.stream.IntStream.of(0, 1, p.n / 2, p.n - 1, r.nextInt(p.n), r.nextInt(p.n),
                r.nextInt(p.n), r.nextInt(p.n)).distinct().toArray();
        int s = rows.length, t = cols.length, k = p.k;
        // op(A) rows and op(B) columns regenerated from the fill's hash; C is D's initial content
        float[] opA = new float[s * k], opB = new float[k * t], c = new float[s * t];
        for (int ri = 0; ri < s; ri++) {
            for (int q = 0; q < k; q++) {
                long idx = p.transA ? (long) q * p.lda() + rows[ri] : (long) rows[ri] * p.lda() + q;
                opA[ri * k + q] = DeviceFill.hostValue(idx, SEED + 1, LO, HI, true);
            }
            for (int ci = 0; ci < t; ci++) {
                c[ri * t + ci] = DeviceFill.hostValue((long) rows[ri] * p.n + cols[ci], SEED + 3, LO, HI,
                        p.cdType == DType.BF16);
            }
        }
        for (int q = 0; q < k; q++) {
            for (int ci = 0; ci < t; ci++) {
                long idx = p.transB ? (long) cols[ci] * p.ldb() + q : (long) q * p.ldb() + cols[ci];
                opB[q * t + ci] = DeviceFill.hostValue(idx, SEED + 2, LO, HI, true);
            }
        }
        // the fill itself must match its host formula, or nothing below means anything
        Validation.assertClose("A as filled", new float[] {bf16At(a, rows[0] * (long) (p.transA ? 1 : p.lda()))},
                new float[] {opA[0]}, 0, 0);

        float[] biasRef = null;
        if (p.epilogue == Gemm.Epilogue.BIAS) {
            biasRef = new float[t];
            for (int ci = 0; ci < t; ci++) {
                biasRef[ci] = DeviceFill.hostValue(cols[ci], SEED + 4, LO, HI, true);
            }
        } else if (p.epilogue == Gemm.Epilogue.BIAS_GRADIENT) {
            biasRef = new float[s];
        }
        float[] ref = new float[s * t];
        GemmReference.matmulStridedBatched(false, false, s, t, k, 1f, opA, 0, k, 0, opB, 0, t, 0, DType.BF16, p.beta,
                c, 0, t, 0, ref, 0, t, 0, p.cdType, 1, p.epilogue, biasRef, 0,
                p.epilogue == Gemm.Epilogue.NONE ? null : p.epilogue == Gemm.Epilogue.BIAS ? DType.BF16 : DType.F32);

        run();
        dev.rlsr.bindings.CudaDriver.streamSynchronize(stream);
        float[] got = new float[s * t];
        double[] tol = new double[s * t];
        double gamma = (k + 4) * 0x1p-24 / (1 - (k + 4) * 0x1p-24);
        for (int ri = 0; ri < s; ri++) {
            float[] row = p.cdType == DType.F32 ? Validation.floats(d + (long) rows[ri] * p.n * 4, p.n)
                    : dev.rlsr.kernels.BF16.toFloat(Validation.shorts(d + (long) rows[ri] * p.n * 2, p.n));
            for (int ci = 0; ci < t; ci++) {
                got[ri * t + ci] = row[cols[ci]];
                double abs = Math.abs(p.beta * c[ri * t + ci]);
                for (int q = 0; q < k; q++) {
                    abs += Math.abs((double) opA[ri * k + q] * opB[q * t + ci]);
                }
                if (p.epilogue == Gemm.Epilogue.BIAS) {
                    abs += Math.abs(biasRef[ci]);
                }
                tol[ri * t + ci] = 3 * gamma * abs * (1 + 0x1p-8)
                        + (p.cdType == DType.BF16 ? 0x1p-7 * Math.abs(ref[ri * t + ci]) : 0);
            }
        }
        Validation.assertFinite("D sample " + workload, got);
        double maxErr = 0;
        for (int e = 0; e < got.length; e++) {
            // per-element tolerance: assertClose with atol = that element's bound
            maxErr = Math.max(maxErr, Validation.assertClose("D " + workload + " [" + rows[e / t] + "," + cols[e % t]
                    + "]", new float[] {got[e]}, new float[] {ref[e]}, tol[e], 0));
        }
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("validated_elements", got.length);
        extra.put("max_abs_err", maxErr);
        if (p.epilogue == Gemm.Epilogue.BIAS_GRADIENT) {
            float[] db = Validation.floats(bias, p.m);
            float[] gotDb = new float[s];
            double[] tolDb = new double[s];
            for (int ri = 0; ri < s; ri++) {
                gotDb[ri] = db[rows[ri]];
                double abs = 0;
                for (int q = 0; q < k; q++) {
                    abs += Math.abs(opA[ri * k + q]);
                }
                tolDb[ri] = 3 * gamma * abs;
            }
            Validation.assertFinite("bias gradient", db);
            for (int ri = 0; ri < s; ri++) {
                Validation.assertClose("dbias " + workload + " [" + rows[ri] + "]", new float[] {gotDb[ri]},
                        new float[] {biasRef[ri]}, tolDb[ri], 0);
            }
            extra.put("validated_bias_gradient", s);
        }
        return extra;
    }

    private static float bf16At(long base, long index) {
        return dev.rlsr.kernels.BF16.toFloat(Validation.shorts(base + 2 * index, 1)[0]);
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call (cached plan: no heuristic, no allocation), then wait for the GEMM. */
    @Benchmark
    public void gemm() {
        run();
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (gemm != null) {
            gpu.sync();
            gemm.close();
        }
        if (fill != null) {
            fill.close();
        }
        if (gpu != null) {
            gpu.close();
        }
    }
}
