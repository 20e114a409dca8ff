package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.GroupAdvantages;
import dev.rlsr.kernels.GroupAdvantagesReference;

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
 * Group-normalised advantages, rewards (P,G) -> advantages (P,G) fp32 in one launch. Workloads: 4096 groups of 16
 * (target <= 6 us on an H200) and 64 x 8, the size of one RLSR step. Launch-bound: the back-to-back figure in
 * ours.jsonl (mean of launches queued one after another) shows the cost inside a stream of work, the event median
 * the cost of one isolated launch.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
public class GroupAdvantagesBench {
    private static final long SEED = 16L;

    /** groups P, group size G */
    @Param({"P4096_G16", "P64_G8"})
    public String workload;

    private GpuSession gpu;
    private int p;
    private int g;
    private long rewards;
    private long advantages;
    private long stream;

    @Setup(Level.Trial)
    public void setup() {
        String key = "gadv_" + workload;
        gpu = GpuSession.open("GroupAdvantagesBench " + workload);
        try {
            int[] pg = Validation.dims(workload, "P", "G");
            p = pg[0];
            g = pg[1];
            stream = gpu.streamHandle();
            Random rnd = new Random(SEED);
            float[] r = new float[p * g];
            for (int i = 0; i < r.length; i++) {
                r[i] = 2 * rnd.nextFloat() - 1; // rewards are cosines in [-1, 1]
            }
            DeviceBuffer in = gpu.alloc(4L * r.length);
            DeviceBuffer adv = gpu.alloc(4L * r.length);
            in.copyFrom(r);
            adv.fill(Float.NaN);
            rewards = in.address();
            advantages = adv.address();
            gpu.sync();

            GroupAdvantages.compute(rewards, advantages, p, g, stream);
            gpu.sync();
            float[] got = adv.toFloatArray();
            Validation.assertFinite("advantages", got);
            float[] ref = GroupAdvantagesReference.compute(r, p, g, true, GroupAdvantages.DEFAULT_EPS);
            // fp32 moments of <= 32 values vs double: a few ulps of values ~1
            double err = Validation.assertClose("advantages " + workload, got, ref, 1e-5, 1e-4);

            GpuSession.Timing timing = gpu.time(() -> GroupAdvantages.compute(rewards, advantages, p, g, stream), null,
                    10, 51);
            Map<String, Object> extra = new LinkedHashMap<>();
            extra.put("values_validated", got.length);
            extra.put("max_abs_err", err);
            extra.put("what", "rewards read, advantages written, one launch");
            GpuResults.kernel(gpu, key, timing, 8L * p * g, extra);
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
    public void advantages() {
        GroupAdvantages.compute(rewards, advantages, p, g, stream);
        gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (gpu != null) {
            gpu.close();
        }
    }
}
