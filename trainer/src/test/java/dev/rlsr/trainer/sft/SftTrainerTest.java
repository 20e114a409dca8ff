package dev.rlsr.trainer.sft;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.train.Batcher.Sequence;
import dev.rlsr.trainer.train.Tiny;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SFT and pretraining on a tiny byte-level model. */
class SftTrainerTest {
    @TempDir
    static Path dir;
    static Tokenizer tok;
    static int pad;

    @BeforeAll
    static void setUp() {
        tok = Tiny.tokenizer(dir);
        pad = tok.specialTokens().padId();
    }

    @AfterAll
    static void tearDown() {
        tok.close();
    }

    static List<Example> examples() {
        return List.of(Example.of("a", "2+2?", "four"), Example.of("b", "Capital of France?", "Paris"),
                Example.of("c", "Color of the sky?", "blue"), Example.of("d", "Opposite of hot?", "cold"),
                Example.of("e", "3*3?", "nine"), Example.of("f", "First letter?", "A"));
    }

    static SftConfig cfg(int epochs, int batch, int accum, double lr, boolean packing, double clip, int ckptEvery) {
        return new SftConfig(epochs, batch, accum, lr, 2, 0.1, 0.01, clip, packing, 64, 0, ckptEvery, 42, true);
    }

    @Test
    void promptMaskingTrainsOnlyTheResponseAndEos() {
        Example e = examples().getFirst();
        Sequence s = SftData.fromExamples(tok, List.of(e), true, 256).getFirst();
        int[] prompt = tok.encodeChat(e.prompt(), true);
        int[] response = tok.encode("four", false);
        assertEquals(prompt.length + response.length + 1, s.ids().length);
        assertEquals(tok.specialTokens().eosId(), s.ids()[s.ids().length - 1], "ends with <|im_end|>");
        for (int t = 0; t < s.ids().length; t++) {
            assertEquals(t < prompt.length ? -100 : s.ids()[t], s.labels()[t], "label " + t);
        }
        assertEquals(response.length + 1, s.targets());
        Sequence unmasked = SftData.fromExamples(tok, List.of(e), false, 256).getFirst();
        assertEquals(unmasked.ids().length - 1, unmasked.targets());
    }

    @Test
    void sftLossDecreasesAndEvalLossDrops() {
        List<Sequence> train = SftData.fromExamples(tok, examples(), true, 64);
        try (DecoderModel m = Tiny.model(1);
             SftTrainer t = new SftTrainer(cfg(12, 2, 1, 3e-3, false, 1.0, 0), m, pad, null, null, "sft")) {
            double before = t.evalLoss(train);
            SftResult r = t.train(train, train, null, null);
            assertEquals(36, r.steps(), "12 epochs x 3 batches");
            double first = r.history().getFirst().loss(), last = r.lastLoss();
            System.out.printf("SFT: eval %.4f -> %.4f, train step 1 %.4f -> step 36 %.4f%n", before,
                    r.finalEvalLoss(), first, last);
            assertTrue(last < 0.6 * first, "train loss " + first + " -> " + last);
            assertTrue(r.finalEvalLoss() < 0.6 * before, "eval loss " + before + " -> " + r.finalEvalLoss());
        }
    }

    @Test
    void pretrainingWithPackingLearnsRawText() {
        List<String> texts = List.of("the cat sat on the mat. ", "the dog sat on the log. ",
                "a cat and a dog sat together on the mat. ");
        List<Sequence> seqs = SftData.fromTexts(tok, texts, 32);
        for (Sequence s : seqs) {
            assertEquals(s.ids().length - 1, s.targets(), "pretraining trains every next token");
        }
        SftConfig c = new SftConfig(30, 2, 1, 3e-3, 0, 0.1, 0.0, 1.0, true, 32, 0, 0, 1, false);
        try (DecoderModel m = Tiny.model(2); SftTrainer t = new SftTrainer(c, m, pad, null, null, "pretrain")) {
            double before = t.evalLoss(seqs);
            SftResult r = t.train(seqs, seqs, null, null);
            System.out.printf("pretrain (packed): eval %.4f -> %.4f in %d steps%n", before, r.finalEvalLoss(),
                    r.steps());
            assertTrue(r.finalEvalLoss() < 0.5 * before, before + " -> " + r.finalEvalLoss());
        }
    }

    @Test
    void gradientAccumulationEqualsTheLargeBatchGradient() {
        List<Sequence> train = SftData.fromExamples(tok, examples().subList(0, 4), true, 64);
        // lr 0 and no clipping: after the single step, grads() hold that step's raw gradient
        try (DecoderModel a = Tiny.model(3); DecoderModel b = Tiny.model(3); DecoderModel c = Tiny.model(3);
             SftTrainer ta = new SftTrainer(cfg(1, 4, 1, 0, false, 0, 0), a, pad, null, null, "sft");
             SftTrainer tb = new SftTrainer(cfg(1, 2, 2, 0, false, 0, 0), b, pad, null, null, "sft");
             SftTrainer tc = new SftTrainer(cfg(1, 1, 4, 0, false, 0, 0), c, pad, null, null, "sft")) {
            SftResult ra = ta.train(train, List.of(), null, null);
            SftResult rb = tb.train(train, List.of(), null, null);
            SftResult rc = tc.train(train, List.of(), null, null);
            assertEquals(1, ra.steps());
            assertEquals(1, rb.steps());
            assertEquals(1, rc.steps());
            assertEquals(ra.lastLoss(), rb.lastLoss(), 1e-5 * ra.lastLoss());
            assertEquals(ra.lastLoss(), rc.lastLoss(), 1e-5 * ra.lastLoss());
            double db = Tiny.maxRelativeDifference(a.grads(), b.grads());
            double dc = Tiny.maxRelativeDifference(a.grads(), c.grads());
            System.out.printf("grad accumulation: max rel diff 2x2 %.2e, 4x1 %.2e%n", db, dc);
            assertTrue(db < 1e-5 && dc < 1e-5, "accumulated vs large-batch gradient: " + db + ", " + dc);
            assertTrue(ra.history().getFirst().gradNorm() > 0);
        }
    }

    @Test
    void resumeContinuesIdentically() {
        List<Sequence> train = SftData.fromExamples(tok, examples(), true, 64);
        SftConfig c = cfg(3, 2, 1, 3e-3, true, 1.0, 4);
        Tiny.Snapshot snap = new Tiny.Snapshot(4);
        try (DecoderModel m = Tiny.model(4); SftTrainer t = new SftTrainer(c, m, pad, null, snap, "sft")) {
            SftResult full = t.train(train, List.of(), null, null);
            assertTrue(full.steps() > 5, "enough steps to resume in the middle: " + full.steps());
            try (DecoderModel resumed = snap.model;
                 SftTrainer t2 = new SftTrainer(c, resumed, pad, null, null, "sft")) {
                SftResult rest = t2.train(train, List.of(), snap.state, snap.optimizer);
                assertEquals(full.steps(), rest.steps());
                assertEquals(full.history().size() - 4, rest.history().size());
                for (int i = 0; i < rest.history().size(); i++) {
                    var u = full.history().get(4 + i);
                    var v = rest.history().get(i);
                    assertEquals(u.step(), v.step());
                    assertEquals(u.loss(), v.loss(), 1e-5 * Math.abs(u.loss()), "loss at step " + u.step());
                    assertEquals(u.lr(), v.lr(), 0.0, "lr at step " + u.step());
                }
                double d = Tiny.maxRelativeDifference(m.parameters(), resumed.parameters());
                System.out.printf("SFT resume: %d steps continued, final parameters max rel diff %.2e%n",
                        rest.history().size(), d);
                for (int i = 0; i < rest.history().size(); i++) {
                    System.out.println("  step " + rest.history().get(i).step() + " loss "
                            + full.history().get(4 + i).loss() + " vs " + rest.history().get(i).loss());
                }
                // not bitwise: the Vector API leaves the order of float lane reductions to the JIT, so a cold and
                // a warm JVM may round differently; fp32 noise is all that may separate the two runs
                assertTrue(d < 1e-5, "final parameters: " + d);
            }
        }
    }
}
