package dev.rlsr.trainer.run;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rlsr.trainer.eval.Bootstrap;
import dev.rlsr.trainer.eval.Evaluator;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The judge's accuracy and its paired differences in the console table, summary.json and report.md. */
class RunReportJudgeTest {

    /** n rows; row i is correct when correct[i], task "t" + (i % 2), reward r[i]; null verdicts where asked. */
    private static Evaluator.Result result(String stage, boolean[] correct, double[] reward, boolean judged) {
        List<Evaluator.Row> rows = new ArrayList<>();
        double[] verdicts = new double[correct.length];
        for (int i = 0; i < correct.length; i++) {
            rows.add(new Evaluator.Row("id" + i, "p" + i, "ref", "resp " + stage + i, reward[i], 0.5, 0.1, 5,
                    judged ? correct[i] : null, "t" + (i % 2)));
            verdicts[i] = correct[i] ? 1 : 0;
        }
        Bootstrap.Interval judge = judged ? Bootstrap.mean(verdicts, 500, 0.95, 1) : null;
        return new Evaluator.Result(stage, judge, Bootstrap.mean(reward, 500, 0.95, 1), 0.5, 0.1, 0.3, 5.0, rows,
                1.0);
    }

    @Test
    void judgeComesFirstWithItsPairedDifference() throws Exception {
        int n = 40;
        boolean[] a = new boolean[n], b = new boolean[n];
        double[] ra = new double[n], rb = new double[n];
        int ca = 0, cb = 0;
        for (int i = 0; i < n; i++) {
            a[i] = i % 4 != 0;        // 30 of 40
            b[i] = i % 2 == 0;        // 20 of 40
            ca += a[i] ? 1 : 0;
            cb += b[i] ? 1 : 0;
            ra[i] = 0.8 + 0.001 * i;
            rb[i] = 0.7 + 0.001 * i;
        }
        RunReport report = new RunReport("t");
        report.eval(result("sft", b, rb, true)).eval(result("sft+rlsr", a, ra, true));
        report.delta("sft+rlsr", "sft", 1000, 0.95, 7);

        Bootstrap.Interval j = report.judgeDeltas().get("sft+rlsr - sft");
        assertEquals((ca - cb) / (double) n, j.mean(), 1e-15);
        assertEquals(0.25, j.mean(), 1e-15);
        assertEquals(0.1, report.deltas().get("sft+rlsr - sft").mean(), 1e-12);

        String table = report.consoleTable();
        String header = table.lines().findFirst().orElseThrow();
        assertTrue(header.indexOf("correct") < header.indexOf("reward"), header);
        assertTrue(table.contains(" 75.0%"), table);
        assertTrue(table.contains(" 50.0%"), table);
        assertTrue(table.contains("+25.0"), table);

        JsonNode s = report.summaryJson();
        assertEquals(0.75, s.path("stages").path("sft+rlsr").path("judge_accuracy").asDouble(), 1e-15);
        assertEquals(n, s.path("stages").path("sft+rlsr").path("judge_n").asInt());
        // tasks: even rows are t0 (a correct on rows 2, 6, ...: 10 of 20), odd rows t1 (all 20 correct)
        assertEquals(0.5, s.path("stages").path("sft+rlsr").path("judge_by_task").path("t0").asDouble(), 1e-15);
        assertEquals(1.0, s.path("stages").path("sft+rlsr").path("judge_by_task").path("t1").asDouble(), 1e-15);
        assertEquals(0.25, s.path("deltas").path("sft+rlsr - sft").path("judge").path("mean").asDouble(), 1e-15);
        assertEquals(j.aboveZero(), s.path("deltas").path("sft+rlsr - sft").path("judge").path("above_zero")
                .asBoolean());

        String md = report.markdown(List.of(), 1);
        assertTrue(md.contains("| sft+rlsr | **75.0%** |"), md);
        assertTrue(md.contains("## Correct answers per task"), md);
        assertTrue(md.contains("| t0 | 20 | 100% | 50% |"), md);
    }

    @Test
    void withoutAnswersTheTablesHaveNoJudge() {
        int n = 10;
        boolean[] c = new boolean[n];
        double[] r = new double[n];
        RunReport report = new RunReport("t");
        report.eval(result("a", c, r, false)).eval(result("b", c, r, false));
        report.delta("b", "a", 200, 0.95, 1);
        assertTrue(report.judgeDeltas().isEmpty());
        assertFalse(report.consoleTable().contains("correct"));
        assertFalse(report.summaryJson().path("stages").path("a").has("judge_accuracy"));
        assertFalse(report.markdown(List.of(), 0).contains("correct"));
    }
}
