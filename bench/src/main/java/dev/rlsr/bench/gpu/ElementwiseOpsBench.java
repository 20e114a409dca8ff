package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.Argmax;
import dev.rlsr.kernels.ArgmaxReference;
import dev.rlsr.kernels.BF16;
import dev.rlsr.kernels.Cast;
import dev.rlsr.kernels.CastReference;
import dev.rlsr.kernels.CopyRows;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.Elementwise;
import dev.rlsr.kernels.ElementwiseReference;
import dev.rlsr.kernels.Embedding;
import dev.rlsr.kernels.Rope;
import dev.rlsr.kernels.RopeReference;
import dev.rlsr.kernels.Swiglu;
import dev.rlsr.kernels.SwigluReference;

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
 * The memory-bound transformer ops (cast, elementwise, copy_rows, argmax, embedding, rope, swiglu) on the shapes of
 * Qwen2.5-0.5B: N = 8192 tokens (16 x 512), C = 896, F = 4864, V = 151936, D = 64, 14 query / 2 key-value heads,
 * bf16 activations. Each workload is validated first (against the CPU reference, on the whole output or on sampled
 * parts of it, read back from the device), then timed with CUDA events (L2 flushed before each run) and reported as
 * GB/s of the bytes the op must move (inputs read once, outputs written once), to be read against the device copy
 * bandwidth of {@link DeviceCopyBench}. The JMH figure is the Java call: launch(es) plus stream synchronize.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class ElementwiseOpsBench {
    private static final long SEED = 20260213L;
    private static final int N = 8192, C = 896, F = 4864, V = 151936, D = 64, HEADS = 14;
    /** Elements of the checks that read back a prefix of a large output. */
    private static final int SAMPLE = 1 << 20;

    /** op and shape */
    @Param({"cast_f32_bf16_V151936_C896", "cast_bf16_f32_V151936_C896", "fill_bf16_N8192_F4864",
            "add_bf16_N8192_C896", "scale_f32_V151936_C896", "bias_grad_bf16_N8192_C896", "bias_grad_bf16_N8192_C128",
            "copy_rows_bf16_B16_T512_W128", "embedding_fwd_bf16_N8192_C896_V151936", "argmax_bf16_R64_V151936",
            "embedding_bwd_bf16_N8192_C896_V151936", "rope_table_N8192_D64", "rope_apply_bf16_N8192_H14_D64",
            "swiglu_bf16_N8192_F4864", "swiglu_bwd_bf16_N8192_F4864"})
    public String workload;

    private GpuSession gpu;
    private DeviceFill fill;
    private long stream;
    private Runnable launch;

    @Setup(Level.Trial)
    public void setup() {
        String key = "kops_" + workload;
        gpu = GpuSession.open("ElementwiseOpsBench " + workload);
        try {
            stream = gpu.streamHandle();
            fill = new DeviceFill(gpu);
            Map<String, Object> extra = new LinkedHashMap<>();
            long bytes = prepare(extra);
            gpu.sync();
            extra.put("bound", "device copy bandwidth (DeviceCopyBench)");
            GpuSession.Timing timing = gpu.time(launch, null, 3, 21);
            GpuResults.kernel(gpu, key, timing, bytes, extra);
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    /** Allocates and fills the workload, validates one launch, sets {@link #launch}; returns the bytes moved. */
    private long prepare(Map<String, Object> extra) {
        String[] ops = {"cast", "fill", "add", "scale", "bias_grad", "copy_rows", "embedding_fwd", "argmax",
            "embedding_bwd", "rope_table", "rope_apply", "swiglu_bwd", "swiglu"};
        String op = java.util.Arrays.stream(ops).filter(o -> workload.startsWith(o + "_")).findFirst().orElse("?");
        return switch (op) {
            case "cast" -> cast(extra);
            case "fill" -> fillOp(extra);
            case "add" -> add(extra);
            case "scale" -> scale(extra);
            case "bias_grad" -> biasGrad(extra);
            case "copy_rows" -> copyRows(extra);
            case "embedding_fwd" -> embeddingForward(extra);
            case "argmax" -> argmax(extra);
            case "embedding_bwd" -> embeddingBackward(extra);
            case "rope_table" -> ropeTable(extra);
            case "rope_apply" -> ropeApply(extra);
            case "swiglu" -> swiglu(extra);
            case "swiglu_bwd" -> swigluBackward(extra);
            default -> throw new IllegalArgumentException("unknown workload " + workload);
        };
    }

    private long buffer(long bytes) {
        return gpu.alloc(bytes).address();
    }

    private long cast(Map<String, Object> extra) {
        long n = (long) V * C;
        boolean toBf16 = workload.startsWith("cast_f32_bf16");
        long f32 = buffer(4 * n), bf16 = buffer(2 * n);
        if (toBf16) {
            fill.f32(f32, n, SEED, -3f, 3f, stream);
            Cast.f32ToBf16(f32, bf16, n, stream);
            gpu.sync();
            float[] src = Validation.floats(f32, SAMPLE);
            short[] want = new short[SAMPLE];
            CastReference.f32ToBf16(src, 0, want, 0, SAMPLE);
            checkEqual("cast f32->bf16", BF16.toFloat(want), BF16.toFloat(Validation.shorts(bf16, SAMPLE)));
            launch = () -> Cast.f32ToBf16(f32, bf16, n, stream);
        } else {
            fill.bf16(bf16, n, SEED, -3f, 3f, stream);
            Cast.bf16ToF32(bf16, f32, n, stream);
            gpu.sync();
            float[] want = new float[SAMPLE];
            CastReference.bf16ToF32(Validation.shorts(bf16, SAMPLE), 0, want, 0, SAMPLE);
            checkEqual("cast bf16->f32", want, Validation.floats(f32, SAMPLE));
            launch = () -> Cast.bf16ToF32(bf16, f32, n, stream);
        }
        extra.put("what", "weights (V,C) " + (toBf16 ? "fp32 -> bf16" : "bf16 -> fp32") + ", validated on "
                + SAMPLE + " elements (exact)");
        return 6 * n;
    }

    private long fillOp(Map<String, Object> extra) {
        long n = (long) N * F, t = buffer(2 * n);
        Elementwise.fill(t, DType.BF16, n, 0.5f, stream);
        gpu.sync();
        short[] got = Validation.shorts(t + 2 * (n - SAMPLE), SAMPLE);
        for (int i = 0; i < SAMPLE; i++) {
            if (got[i] != BF16.fromFloat(0.5f)) {
                throw new IllegalStateException("fill: element " + (n - SAMPLE + i) + " not written");
            }
        }
        launch = () -> Elementwise.fill(t, DType.BF16, n, 0.5f, stream);
        extra.put("what", "fill (N,F) bf16");
        return 2 * n;
    }

    private long add(Map<String, Object> extra) {
        long n = (long) N * C, a = buffer(2 * n), b = buffer(2 * n), out = buffer(2 * n);
        fill.bf16(a, n, SEED, -2f, 2f, stream);
        fill.bf16(b, n, SEED + 1, -2f, 2f, stream);
        Elementwise.add(a, b, out, DType.BF16, n, stream);
        gpu.sync();
        short[] want = new short[SAMPLE];
        ElementwiseReference.add(Validation.shorts(a, SAMPLE), 0, Validation.shorts(b, SAMPLE), 0, want, 0, SAMPLE);
        checkEqual("add", BF16.toFloat(want), BF16.toFloat(Validation.shorts(out, SAMPLE)));
        launch = () -> Elementwise.add(a, b, out, DType.BF16, n, stream);
        extra.put("what", "residual add (N,C) bf16, out of place, exact");
        return 6 * n;
    }

    private long scale(Map<String, Object> extra) {
        long n = (long) V * C, t = buffer(4 * n);
        fill.f32(t, n, SEED, -1f, 1f, stream);
        gpu.sync();
        float[] want = Validation.floats(t, SAMPLE);
        Elementwise.scale(t, DType.F32, n, 0.75f, stream);
        gpu.sync();
        ElementwiseReference.scale(want, 0, SAMPLE, 0.75f);
        checkEqual("scale", want, Validation.floats(t, SAMPLE));
        launch = () -> Elementwise.scale(t, DType.F32, n, 1f, stream); // the timed runs keep the values
        extra.put("what", "gradient (V,C) fp32 *= s in place, exact");
        return 8 * n;
    }

    private long biasGrad(Map<String, Object> extra) {
        int cols = Validation.dims(workload, "C")[0];
        long dy = buffer(2L * N * cols), db = buffer(4L * cols);
        long scratchBytes = Elementwise.biasGradScratchBytes(N, cols);
        long scratch = scratchBytes == 0 ? 0 : buffer(scratchBytes);
        fill.bf16(dy, (long) N * cols, SEED, -1f, 1f, stream);
        Elementwise.fill(db, DType.F32, cols, 0f, stream);
        Elementwise.biasGrad(dy, DType.BF16, N, cols, db, scratch, stream);
        gpu.sync();
        short[] g = Validation.shorts(dy, N * cols);
        float[] want = new float[cols];
        ElementwiseReference.biasGrad(g, 0, N, cols, want, 0);
        float[] got = Validation.floats(db, cols);
        // two fp32 summation orders of N terms of |x| <= 1: within 2 u sqrt(N) * N of each other
        double err = Validation.assertClose("bias grad", got, want, 2 * 0x1p-24 * Math.sqrt(N) * N, 0);
        extra.put("max_abs_err", err);
        launch = () -> Elementwise.biasGrad(dy, DType.BF16, N, cols, db, scratch, stream);
        extra.put("what", "dBias (" + cols + ") += column sums of dy (N," + cols + ") bf16, scratch " + scratchBytes
                + " B");
        return 2L * N * cols + 8L * cols;
    }

    private long copyRows(Map<String, Object> extra) {
        int b = 16, t = 512, w = 128, dstStride = 1024, row0 = 256;
        long src = buffer(2L * b * t * w), dst = buffer(2L * b * dstStride * w);
        fill.bf16(src, (long) b * t * w, SEED, -1f, 1f, stream);
        CopyRows.copyRows(src, t, 0, dst, dstStride, row0, b, t, w, DType.BF16, stream);
        gpu.sync();
        for (int batch : new int[] {0, b - 1}) {
            float[] s = BF16.toFloat(Validation.shorts(src + 2L * batch * t * w, t * w));
            float[] d = BF16.toFloat(Validation.shorts(dst + 2L * (batch * dstStride + row0) * w, t * w));
            checkEqual("copyRows batch " + batch, s, d);
        }
        launch = () -> CopyRows.copyRows(src, t, 0, dst, dstStride, row0, b, t, w, DType.BF16, stream);
        extra.put("what", "KV-cache append: (16,512,2*64) bf16 into a (16,1024,128) cache at row 256");
        return 4L * b * t * w;
    }

    private int[] ids(Random r) {
        int[] ids = new int[N];
        for (int i = 0; i < N; i++) {
            ids[i] = i % 8 == 0 ? 151643 : r.nextInt(V); // one token (padding / end of text) every 8 positions
        }
        return ids;
    }

    private long embeddingForward(Map<String, Object> extra) {
        long table = buffer(2L * V * C), out = buffer(2L * N * C);
        int[] idsHost = ids(new Random(SEED));
        DeviceBuffer ids = gpu.alloc(4L * N);
        ids.copyFrom(idsHost);
        fill.bf16(table, (long) V * C, SEED, -1f, 1f, stream);
        Embedding.forward(ids.address(), N, table, DType.BF16, V, C, out, stream);
        gpu.sync();
        for (int i : Validation.sampleRows(N, SEED)) {
            checkEqual("embedding row " + i, BF16.toFloat(Validation.shorts(table + 2L * idsHost[i] * C, C)),
                    BF16.toFloat(Validation.shorts(out + 2L * i * C, C)));
        }
        launch = () -> Embedding.forward(ids.address(), N, table, DType.BF16, V, C, out, stream);
        extra.put("what", "embedding forward: (N,C) bf16 rows gathered from (V,C)");
        return 4L * N * C + 4L * N;
    }

    private long argmax(Map<String, Object> extra) {
        int rows = 64;
        long x = buffer(2L * rows * V);
        DeviceBuffer out = gpu.alloc(4L * rows);
        fill.bf16(x, (long) rows * V, SEED, -8f, 8f, stream);
        Argmax.rows(x, DType.BF16, rows, V, out.address(), stream);
        gpu.sync();
        int[] want = new int[rows], got = new int[rows];
        ArgmaxReference.rows(Validation.shorts(x, rows * V), 0, rows, V, want, 0);
        out.copyTo(java.lang.foreign.MemorySegment.ofArray(got));
        if (!java.util.Arrays.equals(want, got)) {
            throw new IllegalStateException("argmax: got " + java.util.Arrays.toString(got) + ", reference "
                    + java.util.Arrays.toString(want));
        }
        launch = () -> Argmax.rows(x, DType.BF16, rows, V, out.address(), stream);
        extra.put("what", "greedy decoding: argmax of 64 rows of bf16 logits (exact)");
        return 2L * rows * V + 4L * rows;
    }

    private long embeddingBackward(Map<String, Object> extra) {
        long dOut = buffer(2L * N * C), dTable = buffer(4L * V * C), scratch = buffer(Embedding.backwardScratchBytes(N, C));
        int[] idsHost = ids(new Random(SEED));
        DeviceBuffer ids = gpu.alloc(4L * N);
        ids.copyFrom(idsHost);
        fill.bf16(dOut, (long) N * C, SEED, -1f, 1f, stream);
        Elementwise.fill(dTable, DType.F32, (long) V * C, 0f, stream);
        Embedding.backward(ids.address(), N, dOut, DType.BF16, C, dTable, V, scratch, stream);
        gpu.sync();
        float[] g = BF16.toFloat(Validation.shorts(dOut, N * C));
        int[] check = {idsHost[0], idsHost[1], idsHost[N / 2 + 1], idsHost[N - 1]};
        double maxErr = 0;
        for (int id : check) {
            double[] sum = new double[C];
            int hits = 0;
            for (int i = 0; i < N; i++) {
                if (idsHost[i] == id) {
                    hits++;
                    for (int j = 0; j < C; j++) {
                        sum[j] += g[i * C + j];
                    }
                }
            }
            float[] want = new float[C];
            for (int j = 0; j < C; j++) {
                want[j] = (float) sum[j];
            }
            // fp32 sums of `hits` terms of |x| <= 1 against double: u sqrt(hits) * hits
            maxErr = Math.max(maxErr, Validation.assertClose("embedding backward row " + id,
                    Validation.floats(dTable + 4L * id * C, C), want, 0x1p-24 * Math.sqrt(hits + 1.0) * (hits + 1), 0));
        }
        extra.put("max_abs_err", maxErr);
        launch = () -> Embedding.backward(ids.address(), N, dOut, DType.BF16, C, dTable, V, scratch, stream);
        extra.put("what", "embedding backward: sort + run sums, dOut (N,C) bf16 into dTable (V,C) fp32, "
                + "every 8th token the same id; bytes count each token's dTable row read and written once (an upper bound)");
        return 2L * N * C + 8L * N * C + 4L * N;
    }

    private float[] invFreq() {
        float[] inv = new float[D / 2];
        for (int i = 0; i < D / 2; i++) {
            inv[i] = (float) (1.0 / Math.pow(1_000_000.0, 2.0 * i / D));
        }
        return inv;
    }

    private long ropeTable(Map<String, Object> extra) {
        int[] posHost = new int[N];
        for (int i = 0; i < N; i++) {
            posHost[i] = i % 512;
        }
        DeviceBuffer pos = gpu.alloc(4L * N);
        pos.copyFrom(posHost);
        DeviceBuffer inv = gpu.alloc(4L * D / 2);
        inv.copyFrom(invFreq());
        long table = buffer(4L * N * D);
        Rope.table(pos.address(), N, inv.address(), D, table, stream);
        gpu.sync();
        float[] want = new float[N * D];
        RopeReference.table(posHost, 0, N, invFreq(), 0, D / 2, want, 0);
        float[] got = Validation.floats(table, N * D);
        for (int k = 0; k < want.length; k++) {
            if (!(Math.abs(got[k] - want[k]) <= 2.5 * Math.ulp(want[k]))) {
                throw new IllegalStateException("rope table element " + k + ": got " + got[k] + " reference " + want[k]);
            }
        }
        launch = () -> Rope.table(pos.address(), N, inv.address(), D, table, stream);
        extra.put("what", "cos/sin table (N,64) fp32 from positions, within 2.5 ulp of the reference");
        return 4L * N * D + 4L * N;
    }

    private long ropeApply(Map<String, Object> extra) {
        int[] posHost = new int[N];
        for (int i = 0; i < N; i++) {
            posHost[i] = i % 512;
        }
        float[] tableHost = new float[N * D];
        RopeReference.table(posHost, 0, N, invFreq(), 0, D / 2, tableHost, 0);
        DeviceBuffer table = gpu.alloc(4L * N * D);
        table.copyFrom(tableHost);
        long width = (long) HEADS * D, x = buffer(2L * N * width);
        fill.bf16(x, N * width, SEED, -2f, 2f, stream);
        gpu.sync();
        int rows = 64;
        short[] want = Validation.shorts(x, (int) (rows * width));
        Rope.apply(x, DType.BF16, N, HEADS, D, table.address(), false, stream);
        gpu.sync();
        RopeReference.apply(want, 0, (int) width, tableHost, 0, rows, HEADS, D, false);
        // one rounding to bf16 on each side of fp32 results a few ulp apart: one bf16 ulp (2^-7 relative)
        Validation.assertClose("rope apply", BF16.toFloat(Validation.shorts(x, (int) (rows * width))),
                BF16.toFloat(want), 1e-5, 0x1p-7);
        boolean[] inverse = {false};
        launch = () -> {
            inverse[0] = !inverse[0]; // alternate so the timed runs keep the values bounded and exact-ish
            Rope.apply(x, DType.BF16, N, HEADS, D, table.address(), inverse[0], stream);
        };
        extra.put("what", "rotary embedding of q (N,14*64) bf16 in place");
        return 4L * N * width + 4L * N * D;
    }

    private long swiglu(Map<String, Object> extra) {
        long n = (long) N * F, g = buffer(2 * n), u = buffer(2 * n), h = buffer(2 * n);
        fill.bf16(g, n, SEED, -6f, 6f, stream);
        fill.bf16(u, n, SEED + 1, -2f, 2f, stream);
        Swiglu.forward(g, u, h, DType.BF16, n, stream);
        gpu.sync();
        short[] want = new short[SAMPLE];
        SwigluReference.forward(Validation.shorts(g, SAMPLE), 0, Validation.shorts(u, SAMPLE), 0, want, 0, SAMPLE);
        Validation.assertClose("swiglu", BF16.toFloat(Validation.shorts(h, SAMPLE)), BF16.toFloat(want), 1e-30, 0x1p-7);
        launch = () -> Swiglu.forward(g, u, h, DType.BF16, n, stream);
        extra.put("what", "h = silu(g)*u, (N,F) bf16");
        return 6 * n;
    }

    private long swigluBackward(Map<String, Object> extra) {
        long n = (long) N * F, g = buffer(2 * n), u = buffer(2 * n), dh = buffer(2 * n), dg = buffer(2 * n),
                du = buffer(2 * n);
        fill.bf16(g, n, SEED, -6f, 6f, stream);
        fill.bf16(u, n, SEED + 1, -2f, 2f, stream);
        fill.bf16(dh, n, SEED + 2, -1f, 1f, stream);
        Swiglu.backward(g, u, dh, dg, du, DType.BF16, n, stream);
        gpu.sync();
        short[] wantDg = new short[SAMPLE], wantDu = new short[SAMPLE];
        SwigluReference.backward(Validation.shorts(g, SAMPLE), 0, Validation.shorts(u, SAMPLE), 0,
                Validation.shorts(dh, SAMPLE), 0, wantDg, 0, wantDu, 0, SAMPLE);
        // dg cancels near silu's minimum: an absolute floor of a few fp32 ulps of |dh*u| <= 2 besides one bf16 ulp
        Validation.assertClose("swiglu dg", BF16.toFloat(Validation.shorts(dg, SAMPLE)), BF16.toFloat(wantDg), 1e-5,
                0x1p-7);
        Validation.assertClose("swiglu du", BF16.toFloat(Validation.shorts(du, SAMPLE)), BF16.toFloat(wantDu), 1e-30,
                0x1p-7);
        launch = () -> Swiglu.backward(g, u, dh, dg, du, DType.BF16, n, stream);
        extra.put("what", "dg, du from dh, (N,F) bf16");
        return 10 * n;
    }

    private static void checkEqual(String what, float[] want, float[] got) {
        Validation.assertClose(what, got, want, 0, 0);
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: launch the workload's op, wait for it. */
    @Benchmark
    public void op() {
        launch.run();
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
