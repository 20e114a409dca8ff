package dev.rlsr.bench.gpu;

import dev.rlsr.bench.reward.BenchTexts;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.trainer.encoder.BertEncoder;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.reward.CosineReward;
import dev.rlsr.trainer.reward.RewardInput;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The RLSR reward on the GPU: all-MiniLM-L6-v2 (the engine BERT with the bundled weights) on {@code CudaBackend},
 * embeddings and cached references in device memory, one cosine launch per batch, only the rewards copied back
 * ({@code CosineReward}'s device path). Rollout batches of 64 rows (P = 8 prompts x G = 8) and 256 rows (P = 32 x 8),
 * each (prompt + "\n" + response) about 200 word pieces (the mean is printed in setup), encoder batch size 64, in fp32
 * and bf16. The primary result is rows per second, i.e. <b>rewards per second</b>; every call includes the
 * tokenization on the host and the wait for the rewards.
 * <ul>
 *   <li>{@code freshPrompts64/256}: example ids never seen before, so one encoder call embeds the responses and the
 *       P references (a new step's prompts);</li>
 *   <li>{@code cachedReferences64/256}: the same rows with their references in the device cache (later epochs);</li>
 *   <li>{@code embed256}: the encoder alone on the 256 response texts ({@code embedOnDevice}, then a wait).</li>
 * </ul>
 *
 * <p>Validated before timing: the 256-row batch's rewards on the GPU against the CPU reward that runs by default
 * (ONNX Runtime), within 1e-5 in fp32 (the bar) and within 3 sqrt(2) 2^-5 / sqrt(384) = 6.8e-3 in bf16 (the
 * bound derived in the trainer's {@code EncoderParity}); a larger difference stops the benchmark. Runs only on a real
 * GPU (the CUDA emulator's timings mean nothing).
 *
 * <pre>java -cp benchmarks.jar dev.rlsr.bench.gpu.GpuBenchMain RewardGpuBench -f 1</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
public class RewardGpuBench {
    static final int G = 8;
    static final int SMALL = 64;
    static final int LARGE = 256;
    static final int ENCODER_BATCH = 64;

    /** Encoder precision on the GPU. */
    @Param({"fp32", "bf16"})
    public String precision;

    private CudaBackend backend;
    private BertEncoder encoder;
    private CosineReward fresh;
    private CosineReward cached;
    private List<RewardInput> rows64;
    private List<RewardInput> rows256;
    private List<String> responses256;
    private long freshNext;

    @Setup(Level.Trial)
    public void setup() {
        GpuSession.requireGpu("RewardGpuBench " + precision);
        prepare(Precision.parse(precision), LARGE / G);
    }

    /**
     * Opens the device, loads the encoder, builds the batches ({@code prompts} groups of G for the large one; fewer
     * only for a smoke run of this setup on the CUDA emulator) and validates all their GPU rewards against ONNX
     * Runtime on the CPU.
     */
    void prepare(Precision p, int prompts) {
        backend = CudaBackend.open(0, p);
        encoder = BertEncoder.bundledMiniLm(new BertEncoder.Config(ENCODER_BATCH, 0), backend, p);
        rows256 = batch(prompts);
        rows64 = rows256.subList(0, Math.min(SMALL, rows256.size()));
        responses256 = new ArrayList<>(rows256.size());
        long tokens = 0;
        for (RewardInput r : rows256) {
            String text = r.prompt() + "\n" + r.response();
            responses256.add(text);
            tokens += encoder.tokenCount(text);
        }
        double worst = validate(p, rows256);
        fresh = new CosineReward(encoder, CosineReward.Options.defaults());
        cached = new CosineReward(encoder, CosineReward.Options.defaults());
        cached.score(rows256);
        System.out.printf("%nRewardGpuBench: %s, %s, %d rows, mean %.1f word pieces per (prompt + response) text,"
                        + " encoder batch %d; GPU vs CPU (ONNX Runtime) rewards on %d rows: max |diff| %.3e%n",
                backend.deviceName(), p, rows256.size(), tokens / (double) rows256.size(), ENCODER_BATCH,
                rows256.size(), worst);
    }

    /** {@return the largest |GPU reward - CPU reward| of the rows}, after checking it against the bound. */
    private double validate(Precision p, List<RewardInput> rows) {
        double bound = p.equals(Precision.FP32) ? 1e-5 : 3 * Math.sqrt(2) * 0x1p-5 / Math.sqrt(encoder.dimension());
        double[] got;
        double[] want;
        try (CosineReward gpu = new CosineReward(encoder, CosineReward.Options.defaults());
             CosineReward cpu = CosineReward.owning(MiniLmOnnxEncoder.create(), CosineReward.Options.defaults())) {
            if (!gpu.onDevice()) {
                throw new IllegalStateException("the reward did not take the device path");
            }
            got = gpu.score(rows);
            want = cpu.score(rows);
        }
        double worst = 0;
        for (int i = 0; i < rows.size(); i++) {
            double e = Math.abs(got[i] - want[i]);
            if (!(e <= bound)) {
                throw new IllegalStateException("RewardGpuBench " + p + ": row " + i + " has reward " + got[i]
                        + " on the GPU and " + want[i] + " on the CPU, |diff| " + e + " > " + bound);
            }
            worst = Math.max(worst, e);
        }
        return worst;
    }

    /** P prompts of ~40 word pieces, each with a ~160-piece reference and G responses of ~160 pieces. */
    static List<RewardInput> batch(int prompts) {
        SplittableRandom rnd = new SplittableRandom(2510_14200L);
        List<RewardInput> out = new ArrayList<>(prompts * G);
        for (int p = 0; p < prompts; p++) {
            String prompt = BenchTexts.sentence(rnd, 34) + "?";
            String reference = BenchTexts.sentence(rnd, 140) + ".";
            for (int g = 0; g < G; g++) {
                out.add(new RewardInput("p" + p, prompt, BenchTexts.sentence(rnd, 140) + ".", reference));
            }
        }
        return out;
    }

    /** The rows under example ids never seen before (a new step's prompts). */
    private List<RewardInput> renamed(List<RewardInput> rows) {
        long k = freshNext++;
        List<RewardInput> out = new ArrayList<>(rows.size());
        for (RewardInput r : rows) {
            out.add(new RewardInput(r.exampleId() + "-" + k, r.prompt(), r.response(), r.reference()));
        }
        return out;
    }

    /** 64 rows, references embedded in the same encoder call. */
    @Benchmark
    @OperationsPerInvocation(SMALL)
    public double[] freshPrompts64() {
        return fresh.score(renamed(rows64));
    }

    /** 256 rows, references embedded in the same encoder call. */
    @Benchmark
    @OperationsPerInvocation(LARGE)
    public double[] freshPrompts256() {
        return fresh.score(renamed(rows256));
    }

    /** 64 rows, references from the device cache. */
    @Benchmark
    @OperationsPerInvocation(SMALL)
    public double[] cachedReferences64() {
        return cached.score(rows64);
    }

    /** 256 rows, references from the device cache. */
    @Benchmark
    @OperationsPerInvocation(LARGE)
    public double[] cachedReferences256() {
        return cached.score(rows256);
    }

    /** The encoder alone: 256 texts to device embeddings, then a wait. */
    @Benchmark
    @OperationsPerInvocation(LARGE)
    public void embed256() {
        try (Tensor e = encoder.embedOnDevice(responses256)) {
            backend.synchronize();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (fresh != null) {
            fresh.close();
        }
        if (cached != null) {
            cached.close();
        }
        if (encoder != null) {
            encoder.close();
        }
        if (backend != null) {
            backend.close();
        }
    }
}
