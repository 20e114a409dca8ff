package dev.rlsr.trainer.reward;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every case of grader_cases.json (sacreBLEU 2.6 sentence_bleu and torchmetrics 1.9 ROUGE-L outputs, produced
 * outside this project). Default: the copy in test resources; {@code RLSR_GRADER_CASES} points at another file.
 */
class GraderCasesTest {
    static final double BLEU_TOL = 1e-4;   // on the 0..100 scale, as the fixture states
    static final double ROUGE_TOL = 1e-6;  // torchmetrics stores float32: ~3e-8 of that is representation error

    record Case(int index, String hypothesis, String reference, double bleu, double p, double r, double f) {
        @Override
        public String toString() {
            return "case " + index + " hyp=" + quote(hypothesis) + " ref=" + quote(reference);
        }

        private static String quote(String s) {
            return '"' + s.replace("\n", "\\n") + '"';
        }
    }

    static JsonNode load() throws IOException {
        String override = System.getenv("RLSR_GRADER_CASES");
        ObjectMapper mapper = new ObjectMapper();
        if (override != null && !override.isBlank()) {
            Path p = Path.of(override);
            if (Files.isDirectory(p)) {
                p = p.resolve("grader_cases.json");
            }
            return mapper.readTree(p.toFile());
        }
        try (InputStream in = GraderCasesTest.class.getResourceAsStream("/graders/grader_cases.json")) {
            if (in == null) {
                throw new IOException("test resource /graders/grader_cases.json is missing");
            }
            return mapper.readTree(in);
        }
    }

    static List<Case> cases() throws IOException {
        List<Case> out = new ArrayList<>();
        int i = 0;
        for (JsonNode c : load().get("cases")) {
            out.add(new Case(i++, c.get("hypothesis").asText(), c.get("reference").asText(),
                    c.get("sacrebleu_sentence_bleu").asDouble(), c.get("rougeL_precision").asDouble(),
                    c.get("rougeL_recall").asDouble(), c.get("rougeL_fmeasure").asDouble()));
        }
        return out;
    }

    @Test
    void fixtureHasCases() throws IOException {
        assertFalse(cases().isEmpty(), "grader_cases.json has no cases");
    }

    @TestFactory
    List<DynamicTest> sentenceBleuMatchesSacrebleu() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : cases()) {
            tests.add(DynamicTest.dynamicTest(c.toString(), () -> {
                SentenceBleu.Result got = SentenceBleu.compute(c.hypothesis(), c.reference());
                assertEquals(c.bleu(), got.score(), BLEU_TOL, () -> c + " tokens hyp=["
                        + Tokenizer13a.tokenize(c.hypothesis()) + "] ref=[" + Tokenizer13a.tokenize(c.reference())
                        + "] correct=" + java.util.Arrays.toString(got.correct()) + " total="
                        + java.util.Arrays.toString(got.total()));
                double reward = new BleuReward().score(List.of(new RewardInput("c" + c.index(), "", c.hypothesis(), c.reference())))[0];
                assertEquals(c.bleu() / 100.0, reward, BLEU_TOL / 100.0, c::toString);
            }));
        }
        return tests;
    }

    @TestFactory
    List<DynamicTest> rougeLMatchesTorchmetrics() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : cases()) {
            tests.add(DynamicTest.dynamicTest(c.toString(), () -> {
                RougeL.Score got = RougeL.score(c.hypothesis(), c.reference());
                String why = c + " tokens pred=" + RougeL.tokenize(c.hypothesis()) + " target=" + RougeL.tokenize(c.reference());
                assertEquals(c.p(), got.precision(), ROUGE_TOL, "precision, " + why);
                assertEquals(c.r(), got.recall(), ROUGE_TOL, "recall, " + why);
                assertEquals(c.f(), got.f1(), ROUGE_TOL, "F1, " + why);
                double reward = new RougeLReward().score(List.of(new RewardInput("c" + c.index(), "", c.hypothesis(), c.reference())))[0];
                assertEquals(c.f(), reward, ROUGE_TOL, c::toString);
                assertTrue(Double.isFinite(reward));
            }));
        }
        return tests;
    }
}
