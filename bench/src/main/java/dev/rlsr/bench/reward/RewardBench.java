package dev.rlsr.bench.reward;

import dev.rlsr.trainer.encoder.Encoder;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.reward.BleuReward;
import dev.rlsr.trainer.reward.CosineReward;
import dev.rlsr.trainer.reward.RewardInput;
import dev.rlsr.trainer.reward.RougeLReward;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Reward throughput on the CPU for one RLSR rollout batch: P = 32 prompts x G = 8 responses = 256 rows, each
 * (prompt + "\n" + response) about 200 WordPiece tokens (about 40 prompt + 160 response; the mean is printed in
 * setup), with the default SentenceBERT encoder (all-MiniLM-L6-v2, ONNX Runtime, fp32, default batch size 32).
 *
 * <p>The primary result is rows per second, i.e. <b>rewards per second</b> ({@code @OperationsPerInvocation(256)}).
 * <ul>
 *   <li>{@code embed}: the encoder alone on the 256 (prompt + response) texts;</li>
 *   <li>{@code cosineFreshPrompts}: the full RLSR reward with a new set of 32 example ids every call, so one encoder
 *       call embeds 256 responses + 32 references (the reference cache never hits: worst case per step);</li>
 *   <li>{@code cosineCachedReferences}: the same rows with the references already cached (later epochs);</li>
 *   <li>{@code bleu}, {@code rougeL}: the text rewards on the same rows, for scale.</li>
 * </ul>
 * Tokens per second = rewards/s x the printed mean token count. An engine-native BERT variant comes later.
 *
 * <pre>java -jar bench/target/benchmarks.jar RewardBench -f 1 -wi 1 -i 3</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 1, time = 10)
@Measurement(iterations = 3, time = 10)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class RewardBench {
    static final int PROMPTS = 32;
    static final int GROUP = 8;
    static final int ROWS = PROMPTS * GROUP;

    private Encoder encoder;
    private CosineReward cosine;
    private CosineReward cosineCached;
    private List<String> texts;              // texts (ROWS): prompt + "\n" + response
    private List<RewardInput> rows;          // rows (ROWS), ids fixed
    private List<List<RewardInput>> fresh;   // batches with never-seen ids, one per invocation
    private int freshNext;
    private final BleuReward bleu = new BleuReward();
    private final RougeLReward rougeL = new RougeLReward();

    @Setup(Level.Trial)
    public void setup() {
        MiniLmOnnxEncoder minilm = MiniLmOnnxEncoder.create();
        encoder = minilm;
        rows = BenchTexts.rows(PROMPTS, GROUP);
        texts = BenchTexts.texts(rows);
        // validate before timing: shapes, finiteness, unit norm, and the token budget we claim
        float[][] e = encoder.embed(texts);
        long tokens = 0;
        for (int i = 0; i < ROWS; i++) {
            if (e[i].length != encoder.dimension()) {
                throw new IllegalStateException("row " + i + " has width " + e[i].length);
            }
            double n = 0;
            for (float x : e[i]) {
                if (!Float.isFinite(x)) {
                    throw new IllegalStateException("row " + i + " is not finite");
                }
                n += x * x;
            }
            if (Math.abs(Math.sqrt(n) - 1) > 1e-4) {
                throw new IllegalStateException("row " + i + " has norm " + Math.sqrt(n));
            }
            tokens += minilm.tokenCount(texts.get(i));
        }
        System.out.printf("%nRewardBench: %d rows, mean %.1f tokens per (prompt + response) text (max %d), encoder %s batch %d, %d cores%n",
                ROWS, tokens / (double) ROWS, encoder.maxTokens(), encoder.name(), encoder.batchSize(),
                Runtime.getRuntime().availableProcessors());
        cosine = new CosineReward(encoder, CosineReward.Options.defaults());
        cosineCached = new CosineReward(encoder, CosineReward.Options.defaults());
        cosineCached.score(rows);
        fresh = new ArrayList<>();
        freshNext = 0;
    }

    /** The same rows under example ids never seen before (a new step's prompts). */
    private List<RewardInput> nextFreshBatch() {
        int k = freshNext++;
        List<RewardInput> out = new ArrayList<>(ROWS);
        for (RewardInput r : rows) {
            out.add(new RewardInput(r.exampleId() + "-step" + k, r.prompt(), r.response(), r.reference()));
        }
        return out;
    }

    @Benchmark
    @OperationsPerInvocation(ROWS)
    public float[][] embed() {
        return encoder.embed(texts);
    }

    @Benchmark
    @OperationsPerInvocation(ROWS)
    public double[] cosineFreshPrompts() {
        return cosine.score(nextFreshBatch());
    }

    @Benchmark
    @OperationsPerInvocation(ROWS)
    public double[] cosineCachedReferences() {
        return cosineCached.score(rows);
    }

    @Benchmark
    @OperationsPerInvocation(ROWS)
    public double[] bleu() {
        return bleu.score(rows);
    }

    @Benchmark
    @OperationsPerInvocation(ROWS)
    public double[] rougeL() {
        return rougeL.score(rows);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        cosine.close();
        cosineCached.close();
        encoder.close();
    }
}
