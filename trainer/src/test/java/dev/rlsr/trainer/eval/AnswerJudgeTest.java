package dev.rlsr.trainer.eval;

import dev.rlsr.trainer.data.DemoDataset;
import dev.rlsr.trainer.data.Example;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AnswerJudgeTest {

    private static boolean judge(String response, String... answers) {
        return AnswerJudge.correct(response, List.of(answers));
    }

    @Test
    void anAnswerCountsAsWholeWordsOnly() {
        assertTrue(judge("Fourteen plus two is sixteen.", "is sixteen."));
        assertFalse(judge("Fourteen plus two is six.", "is sixteen."));
        assertFalse(judge("Twenty plus eight is twenty-eight.", "is twenty"), "a hyphen continues the word");
        assertTrue(judge("Twenty plus eight is twenty-eight.", "is twenty-eight."));
        assertFalse(judge("171 is larger than 35.", "71 is larger"), "a digit before the match");
        assertTrue(judge("71 is larger than 35.", "71 is larger"));
        assertFalse(judge("The opposite of high is lower.", "is low"), "a letter after the match");
        assertTrue(judge("The opposite of high is low, of course", "is low"));
        // an answer that ends in punctuation needs no boundary after it
        assertTrue(judge("In order, the numbers are 5, 32, 48.", "are 5, 32, 48."));
        assertFalse(judge("In order, the numbers are 5, 32, 48, 90.", "are 5, 32, 48."));
    }

    @Test
    void caseMattersAndWhitespaceRunsAreOneSpace() {
        assertTrue(judge("The word jungle in capitals is JUNGLE.", "is JUNGLE"));
        assertFalse(judge("The word jungle in capitals is Jungle.", "is JUNGLE"));
        assertTrue(judge("  The capital of Mexico is\n Mexico   City. ", "is Mexico City"));
        assertFalse(judge("The capital of Mexico is Mexico.", "is Mexico City"));
    }

    @Test
    void anyOfSeveralAnswersCounts() {
        assertTrue(judge("The result is 16.", "is sixteen", "is 16"));
        assertFalse(judge("The result is 61.", "is sixteen", "is 16"));
        assertFalse(judge("", "is 16"));
        assertThrows(IllegalArgumentException.class, () -> AnswerJudge.correct("x", List.of()));
        assertThrows(IllegalArgumentException.class, () -> judge("x", "  "));
    }

    /**
     * Every reference of the bundled set states its own answer, and the reference of another example of the same
     * task with a different answer does not (counted per task: the judge separates right from wrong answers, not
     * just well-formed sentences from garbage).
     */
    @Test
    void theDemoReferencesAreRightAndOtherAnswersWrong() {
        Map<String, int[]> wrongRejected = new TreeMap<>();
        for (String resource : List.of(DemoDataset.TRAIN_RESOURCE, DemoDataset.EVAL_RESOURCE)) {
            List<Example> all = DemoDataset.load(resource);
            for (int i = 0; i < all.size(); i++) {
                Example e = all.get(i);
                assertEquals(1, e.answers().size(), e.id());
                assertFalse(e.task().isEmpty(), e.id());
                assertTrue(AnswerJudge.correct(e.response(), e.answers()), e.id() + ": " + e.response() + " / "
                        + e.answers());
                // the next example of the same task with another answer
                for (int j = i + 1; j < all.size(); j++) {
                    Example o = all.get(j);
                    if (o.task().equals(e.task()) && !o.answers().equals(e.answers())) {
                        int[] c = wrongRejected.computeIfAbsent(e.task(), k -> new int[2]);
                        c[0] += AnswerJudge.correct(o.response(), e.answers()) ? 0 : 1;
                        c[1]++;
                        break;
                    }
                }
            }
        }
        assertEquals(14, wrongRejected.size(), "tasks: " + wrongRejected.keySet());
        wrongRejected.forEach((task, c) -> assertEquals(c[1], c[0], task + ": other answers judged right"));
    }
}
