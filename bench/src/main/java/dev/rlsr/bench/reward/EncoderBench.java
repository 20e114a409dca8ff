package dev.rlsr.bench.reward;

import dev.rlsr.trainer.encoder.BertEncoder;
import dev.rlsr.trainer.encoder.Encoder;
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

import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * SentenceBERT all-MiniLM-L6-v2 reward throughput on the CPU, two implementations of the same weights in one JMH
 * run: {@code onnx} ({@link MiniLmOnnxEncoder}, ONNX Runtime, its default threads) versus {@code engine}
 * ({@link BertEncoder#bundledMiniLm()}, the engine's BERT on the CPU backend, {@code rlsr.threads} = all cores).
 * Rows: P = 32 prompts x G = 8 responses = 256 (prompt + "\n" + response) texts of about 200 WordPiece tokens (the
 * mean is printed in setup); both encoders use batch size 32 and truncate at 256 pieces.
 *
 * <p>Primary result: rows per second = <b>rewards per second</b> ({@code @OperationsPerInvocation(256)}).
 * {@code embed}: the encoder alone on the 256 texts; {@code rewardsCachedReferences}: the full RLSR cosine reward
 * with the 32 reference embeddings already cached. Setup validates before timing: unit-norm finite rows, and the
 * two encoders agree (cosine >= 0.9999 on every row).
 *
 * <pre>java -jar bench/target/benchmarks.jar EncoderBench -f 1 -wi 1 -i 3</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 1, time = 10)
@Measurement(iterations = 3, time = 10)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class EncoderBench {
    static final int PROMPTS = 32;
    static final int GROUP = 8;
    static final int ROWS = PROMPTS * GROUP;

    @Param({"onnx", "engine"})
    public String encoderKind;

    private Encoder encoder;
    private CosineReward cosine;
    private List<String> texts;       // texts (ROWS): prompt + "\n" + response
    private List<RewardInput> rows;   // rows (ROWS)

    @Setup(Level.Trial)
    public void setup() {
        rows = BenchTexts.rows(PROMPTS, GROUP);
        texts = BenchTexts.texts(rows);
        BertEncoder engine = BertEncoder.bundledMiniLm();
        MiniLmOnnxEncoder onnx = MiniLmOnnxEncoder.create();
        float[][] a = engine.embed(texts), b = onnx.embed(texts);
        long tokens = 0;
        double worst = 1;
        for (int i = 0; i < ROWS; i++) {
            double dot = 0, n = 0;
            for (int c = 0; c < a[i].length; c++) {
                if (!Float.isFinite(a[i][c]) || !Float.isFinite(b[i][c])) {
                    throw new IllegalStateException("row " + i + " is not finite");
                }
                dot += a[i][c] * b[i][c];
                n += a[i][c] * a[i][c];
            }
            if (Math.abs(Math.sqrt(n) - 1) > 1e-4) {
                throw new IllegalStateException("engine row " + i + " has norm " + Math.sqrt(n));
            }
            worst = Math.min(worst, dot);
            tokens += onnx.tokenCount(texts.get(i));
        }
        if (worst < 0.9999) {
            throw new IllegalStateException("engine BERT and ONNX Runtime disagree: min cosine " + worst);
        }
        if (encoderKind.equals("engine")) {
            onnx.close();
            encoder = engine;
        } else {
            engine.close();
            encoder = onnx;
        }
        System.out.printf("%nEncoderBench[%s]: %d rows, mean %.1f tokens per text (max %d), batch %d, %d cores, "
                        + "engine-vs-onnx min cosine %.7f%n", encoderKind, ROWS, tokens / (double) ROWS,
                encoder.maxTokens(), encoder.batchSize(), Runtime.getRuntime().availableProcessors(), worst);
        cosine = new CosineReward(encoder, CosineReward.Options.defaults());
        cosine.score(rows); // caches the references
    }

    @Benchmark
    @OperationsPerInvocation(ROWS)
    public float[][] embed() {
        return encoder.embed(texts);
    }

    @Benchmark
    @OperationsPerInvocation(ROWS)
    public double[] rewardsCachedReferences() {
        return cosine.score(rows);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        cosine.close();
        encoder.close();
    }
}
