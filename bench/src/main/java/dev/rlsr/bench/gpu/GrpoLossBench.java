package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.GrpoLevel;
import dev.rlsr.kernels.GrpoLossKernel;
import dev.rlsr.kernels.GrpoLossReference;

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
 * The GRPO loss and dL/dlogp on the device for one RL micro-batch (B = 64 completions of L = 1024 tokens, token
 * level, clip 0.2/0.28, k3 KL with beta 0.04): tiny tensors (B*L fp32), so what counts is that the two launches cost
 * a few microseconds instead of a host round trip. Validated against {@link GrpoLossReference} (double) first.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class GrpoLossBench {
    private static final long SEED = 20261130L;
    private static final double CLIP_LOW = 0.2, CLIP_HIGH = 0.28, BETA = 0.04;

    /** completions B, tokens L */
    @Param({"B64_L1024"})
    public String workload;

    private GpuSession gpu;
    private int b;
    private int len;
    private long logp;
    private long old;
    private long ref;
    private long mask;
    private long adv;
    private long dLogp;
    private long stats;
    private long result;
    private long stream;

    @Setup(Level.Trial)
    public void setup() {
        String key = "grpo_loss_" + workload;
        gpu = GpuSession.open("GrpoLossBench " + workload);
        try {
            int[] bl = Validation.dims(workload, "B", "L");
            b = bl[0];
            len = bl[1];
            int n = b * len;
            stream = gpu.streamHandle();
            Random r = new Random(SEED);
            float[] hl = new float[n], ho = new float[n], hr = new float[n], ha = new float[b], hmF = new float[n];
            int[] hm = new int[n];
            for (int i = 0; i < n; i++) {
                hl[i] = (float) (-2 + r.nextGaussian());
                ho[i] = hl[i] + (float) (0.2 * r.nextGaussian());
                hr[i] = hl[i] + (float) (0.2 * r.nextGaussian());
                hm[i] = (i % len) < len - 17 * (i / len % 30) ? 1 : 0; // completions of different lengths
                hmF[i] = hm[i];
            }
            for (int i = 0; i < b; i++) {
                ha[i] = (float) r.nextGaussian();
            }
            DeviceBuffer[] in = {gpu.alloc(4L * n), gpu.alloc(4L * n), gpu.alloc(4L * n), gpu.alloc(4L * n),
                    gpu.alloc(4L * b)};
            in[0].copyFrom(hl);
            in[1].copyFrom(ho);
            in[2].copyFrom(hr);
            in[3].copyFrom(hm);
            in[4].copyFrom(ha);
            logp = in[0].address();
            old = in[1].address();
            ref = in[2].address();
            mask = in[3].address();
            adv = in[4].address();
            DeviceBuffer g = gpu.alloc(4L * n);
            DeviceBuffer res = gpu.alloc(4L * GrpoLossKernel.RESULT_SIZE);
            g.fill(Float.NaN);
            res.fill(Float.NaN);
            dLogp = g.address();
            result = res.address();
            stats = gpu.alloc(GrpoLossKernel.scratchBytes(b)).address();
            launch();
            gpu.sync();
            GrpoLossReference.Result want = GrpoLossReference.compute(CLIP_LOW, CLIP_HIGH, BETA, GrpoLevel.TOKEN, 0, hl,
                    ho, hr, ha, hmF, b, len);
            float[] got = Validation.floats(result, GrpoLossKernel.RESULT_SIZE);
            Map<String, Object> extra = new LinkedHashMap<>();
            // fp32 on the device vs double: a few 1e-7 per token, sums of B*L terms in a fixed tree
            extra.put("max_abs_err_dlogp", Validation.assertClose("dLogp", Validation.floats(dLogp, n), want.dLogp(),
                    1e-9, 1e-5));
            extra.put("max_abs_err_loss", Validation.assertClose("loss", new float[] {got[GrpoLossKernel.LOSS]},
                    new float[] {(float) want.loss()}, 1e-5, 1e-4));
            Validation.assertClose("mean ratio", new float[] {got[GrpoLossKernel.MEAN_RATIO]},
                    new float[] {(float) want.meanRatio()}, 0, 1e-5);
            Validation.assertClose("clip fraction", new float[] {got[GrpoLossKernel.CLIP_FRACTION]},
                    new float[] {(float) want.clipFraction()}, 1e-6, 0);
            Validation.assertClose("mean KL", new float[] {got[GrpoLossKernel.MEAN_KL]},
                    new float[] {(float) want.meanKl()}, 0, 1e-4);
            GpuSession.Timing timing = gpu.time(this::launch, null, 3, 31);
            extra.put("what", "token level, beta 0.04: logp, old, ref, mask read, dLogp written (two launches)");
            GpuResults.kernel(gpu, key, timing, 4L * n * 5 + 4L * b, extra);
        } catch (RuntimeException e) {
            GpuResults.failure(key, e.toString());
            throw e;
        }
    }

    private void launch() {
        GrpoLossKernel.compute(logp, old, ref, mask, adv, dLogp, stats, result, b, len, CLIP_LOW, CLIP_HIGH, BETA,
                GrpoLevel.TOKEN, 0, stream);
    }

    @Setup(Level.Iteration)
    public void bindContext() {
        gpu.makeCurrent();
    }

    /** The Java call: the two launches, wait for them. */
    @Benchmark
    public void grpoLoss() {
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
