package dev.rlsr.bench.cpu;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.engine.cpu.OpenBlas;
import dev.rlsr.kernels.cpu.Sgemm;
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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * fp32 GEMM throughput, pure Java ({@link Sgemm}) and OpenBLAS ({@code cblas_sgemm} through FFM) side by side, with
 * the same inputs, thread count ({@code rlsr.threads}, default all cores) and JVM.
 *
 * <p>Read the secondary result {@code sgemm:gflops}: it is GFLOP/s (2*M*N*K per call, counted per invocation by an
 * aux counter and divided by the measured time). The primary result is calls per second. {@code shape} is
 * {@code MxNxK}; {@code trans} is NN, NT (B stored (N,K): Y = X·Wᵀ), TN (A stored (K,M): dW = dYᵀ·X) or TT.
 * Where OpenBLAS is absent its rows fail in setup with the reason (JMH goes on with the others).
 *
 * <pre>java -jar bench/target/benchmarks.jar GemmBench -f 1 -wi 3 -i 5</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GemmBench {
    @Param({"1024x1024x1024", "2048x4864x896"})
    public String shape;

    @Param({"NN"})
    public String trans;

    @Param({"java", "openblas"})
    public String impl;

    private int m;
    private int n;
    private int k;
    private boolean transA;
    private boolean transB;
    private boolean openblas;
    private float[] a;
    private float[] b;
    private float[] c;

    /** GFLOP done by the measured calls; JMH reports it per second, i.e. GFLOP/s. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops {
        public double gflops;
    }

    @Setup(Level.Trial)
    public void setup() {
        String[] dims = shape.split("x");
        if (dims.length != 3) {
            throw new IllegalArgumentException("shape must be MxNxK, got " + shape);
        }
        m = Integer.parseInt(dims[0]);
        n = Integer.parseInt(dims[1]);
        k = Integer.parseInt(dims[2]);
        if (trans.length() != 2 || !"NT".contains(trans.substring(0, 1)) || !"NT".contains(trans.substring(1))) {
            throw new IllegalArgumentException("trans must be NN, NT, TN or TT, got " + trans);
        }
        transA = trans.charAt(0) == 'T';
        transB = trans.charAt(1) == 'T';
        switch (impl) {
            case "java" -> openblas = false;
            case "openblas" -> {
                if (!OpenBlas.available()) {
                    System.out.println("SKIP openblas: " + OpenBlas.unavailableReason());
                    throw new IllegalStateException("skipped: " + OpenBlas.unavailableReason());
                }
                openblas = true;
                OpenBlas.setThreads(CpuParallel.THREADS);
            }
            default -> throw new IllegalArgumentException("impl must be java or openblas, got " + impl);
        }
        SplittableRandom rnd = new SplittableRandom(1234);
        a = random(rnd, m * k);
        b = random(rnd, k * n);
        c = new float[m * n];
        validate();
        System.out.printf("%n%s %s %s: threads=%d%s%n", impl, shape, trans, CpuParallel.THREADS,
                openblas ? ", OpenBLAS threads=" + OpenBlas.threads() + " (" + OpenBlas.config().trim() + ")" : "");
    }

    /** Validate first, then time: 256 sampled entries of C against a double-precision dot product. */
    private void validate() {
        run();
        SplittableRandom rnd = new SplittableRandom(99);
        for (int s = 0; s < 256; s++) {
            int i = rnd.nextInt(m);
            int j = rnd.nextInt(n);
            double ref = 0;
            double mag = 0;
            for (int p = 0; p < k; p++) {
                double av = transA ? a[p * m + i] : a[i * k + p];
                double bv = transB ? b[j * k + p] : b[p * n + j];
                ref += av * bv;
                mag += Math.abs(av * bv);
            }
            double got = c[i * n + j];
            if (!(Math.abs(got - ref) <= 1e-5 * Math.sqrt(k + 1.0) * (1 + mag))) {
                throw new IllegalStateException(impl + " " + shape + " " + trans + ": C(" + i + "," + j + ") = " + got
                        + " but the reference is " + ref);
            }
        }
    }

    private void run() {
        int lda = transA ? m : k;
        int ldb = transB ? k : n;
        if (openblas) {
            OpenBlas.sgemm(transA, transB, m, n, k, 1f, a, 0, lda, b, 0, ldb, 0f, c, 0, n);
        } else {
            Sgemm.sgemm(transA, transB, m, n, k, 1f, a, 0, lda, b, 0, ldb, 0f, c, 0, n);
        }
    }

    @Benchmark
    public float[] sgemm(Flops flops) {
        run();
        flops.gflops += 2.0 * m * n * k * 1e-9;
        return c;
    }

    private static float[] random(SplittableRandom rnd, int size) {
        float[] x = new float[size];
        for (int i = 0; i < size; i++) {
            x[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        return x;
    }
}
