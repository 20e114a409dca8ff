package dev.rlsr.bench.cpu;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.tensor.Backend;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * CPU training throughput of a small Llama-style model built from scratch, the workload of the PyTorch anchor
 * (1,539 tokens/s on the 2-core development machine): vocab 4096, hidden 256, 4 layers, 4 heads, 2 KV heads,
 * head dim 64, FFN 768, tied embeddings; batch 8 x 256 random tokens; one step = zero grads, forward, SFT
 * cross-entropy, backward, AdamW.
 *
 * <p>Read the secondary result {@code step:tokens} (tokens/s). Where the time goes, per backend op:
 * <pre>java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.rlsr.bench.cpu.TrainStepBench [steps]</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 5, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class TrainStepBench {
    static final int BATCH = 8;
    static final int SEQ = 256;

    /** The anchor's model: llama, V 4096, C 256, F 768, 4 layers, 4 heads, 2 KV heads, D 64, tied. */
    static ModelConfig config() {
        return ModelConfig.of("llama", 4096, 256, 768, 4, 4, 2, 64, true);
    }

    private DecoderModel model;
    private AdamW optimizer;
    private int[] ids;
    private float lastLoss;

    /** Tokens trained on; JMH reports it per second. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Tokens {
        public long tokens;
    }

    @Setup(Level.Trial)
    public void setup() {
        setup(CpuBackend.INSTANCE);
        // validate first: a step from a fresh model must give the loss of a uniform guess, ln(V)
        float loss = step();
        double expected = Math.log(config().vocabSize());
        if (!(Math.abs(loss - expected) < 0.5)) {
            throw new IllegalStateException("first-step loss " + loss + " is not near ln(V) = " + expected);
        }
        System.out.printf("%nthreads=%d, first loss %.4f (ln V = %.4f)%n", CpuParallel.THREADS, loss, expected);
    }

    void setup(Backend backend) {
        model = DecoderModel.init(config(), 42, backend);
        optimizer = new AdamW(AdamW.Config.defaults());
        ids = new int[BATCH * SEQ];
        SplittableRandom rnd = new SplittableRandom(7);
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rnd.nextInt(config().vocabSize());
        }
    }

    float step() {
        model.zeroGrad();
        float loss = model.sftLoss(BATCH, ids, ids);
        optimizer.step(model);
        lastLoss = loss;
        return loss;
    }

    @Benchmark
    public float step(Tokens tokens) {
        float loss = step();
        tokens.tokens += (long) BATCH * SEQ;
        return loss;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        System.out.printf("%nlast loss %.4f%n", lastLoss);
        optimizer.close();
        model.close();
    }

    /** Profile: runs steps with every backend op timed by name, then prints tokens/s and the breakdown. */
    public static void main(String[] args) {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        Map<String, long[]> times = new LinkedHashMap<>();
        Backend timed = timing(CpuBackend.INSTANCE, times);
        TrainStepBench b = new TrainStepBench();
        b.setup(timed);
        // two warm-up steps for the JIT, then measure
        b.step();
        b.step();
        times.clear();
        long[] stepNs = new long[steps];
        for (int s = 0; s < steps; s++) {
            long t0 = System.nanoTime();
            b.step();
            stepNs[s] = System.nanoTime() - t0;
        }
        long total = 0;
        for (long t : stepNs) {
            total += t;
        }
        double perStep = total / 1e9 / steps;
        System.out.printf("threads=%d, %d steps, %.3f s/step, %.0f tokens/s, loss %.4f%n", CpuParallel.THREADS, steps,
                perStep, BATCH * SEQ / perStep, b.lastLoss);
        List<Map.Entry<String, long[]>> ops = new ArrayList<>(times.entrySet());
        ops.sort((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0]));
        long opsTotal = 0;
        for (Map.Entry<String, long[]> e : ops) {
            opsTotal += e.getValue()[0];
        }
        System.out.printf("%-28s %10s %8s %7s%n", "backend op", "ms/step", "calls", "share");
        for (Map.Entry<String, long[]> e : ops) {
            System.out.printf("%-28s %10.1f %8d %6.1f%%%n", e.getKey(), e.getValue()[0] / 1e6 / steps,
                    e.getValue()[1] / steps, 100.0 * e.getValue()[0] / total);
        }
        System.out.printf("%-28s %10.1f%n", "(outside backend ops)", (total - opsTotal) / 1e6 / steps);
        b.tearDown();
    }

    /** A Backend that times each method (by name, plus the linear layers' shapes) around the real backend. */
    static Backend timing(Backend inner, Map<String, long[]> times) {
        InvocationHandler h = (proxy, method, margs) -> {
            long t0 = System.nanoTime();
            try {
                return method.invoke(inner, margs);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            } finally {
                long dt = System.nanoTime() - t0;
                String key = method.getName();
                if (key.startsWith("linear") && margs != null && margs.length >= 2) {
                    key += " " + shape(margs[0]) + "·" + shape(margs[1]);
                }
                long[] acc = times.computeIfAbsent(key, x -> new long[2]);
                acc[0] += dt;
                acc[1]++;
            }
        };
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, h);
    }

    private static String shape(Object t) {
        if (t instanceof dev.rlsr.engine.tensor.Tensor x) {
            return java.util.Arrays.toString(x.shape()).replace(" ", "");
        }
        return "?";
    }
}
