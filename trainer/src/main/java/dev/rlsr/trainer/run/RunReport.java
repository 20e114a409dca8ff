package dev.rlsr.trainer.run;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.trainer.eval.Bootstrap;
import dev.rlsr.trainer.eval.Evaluator;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Collects what a run measured (evaluations of stages, paired differences between stages, per-phase times, notes)
 * and writes {@code summary.json}, {@code report.md} (tables, plots, sample generations) and the console table.
 *
 * <p>The judge ({@link dev.rlsr.trainer.eval.AnswerJudge}: the fraction of responses that state the checkable
 * answer) comes first wherever the held-out data has answers: it is the measure of quality that the reward cannot
 * game. summary.json:
 * <pre>{@code
 * {"stages": {"sft": {"judge_accuracy": a, "judge_ci95": [lo, hi], "judge_n": n, "judge_by_task": {"arithmetic": a},
 *                     "reward_mean": m, "reward_ci95": [lo, hi], "rougeL": r, "bleu": b, "eval_loss": l,
 *                     "response_tokens": t, "distinct_responses": f, "n": n}, ...},
 *  "deltas": {"sft+rlsr - sft": {"judge": {"mean": d, "ci95": [lo, hi], "above_zero": b, "below_zero": b},
 *                                "mean": d, "ci95": [lo, hi], "above_zero": b, "below_zero": b}, ...},
 *  "phases_s": {"pretrain": s, ...}, "total_s": s, "info": {...},
 *  "data": {"skipped_lines": n, "skipped_by_file": {"train.jsonl": {"count": n, "first_lines": [3, 7]}}}}
 * }</pre>
 */
public final class RunReport {
    private final String title;
    private final Map<String, Evaluator.Result> evals = new LinkedHashMap<>();
    private final Map<String, Bootstrap.Interval> deltas = new LinkedHashMap<>();
    private final Map<String, Bootstrap.Interval> judgeDeltas = new LinkedHashMap<>();
    private final Map<String, Double> phases = new LinkedHashMap<>();
    private final Map<String, String> info = new LinkedHashMap<>();
    private final List<String> notes = new ArrayList<>();
    private final Map<String, SkippedLines> skipped = new LinkedHashMap<>();
    private double totalSeconds = Double.NaN;

    public RunReport(String title) {
        this.title = title;
    }

    public RunReport eval(Evaluator.Result r) {
        evals.put(r.stage(), r);
        return this;
    }

    public Map<String, Evaluator.Result> evals() {
        return evals;
    }

    /**
     * Records the paired bootstrap difference {@code a - b} of two evaluated stages' per-prompt rewards and, where
     * both were judged, of their judge verdicts (1 correct, 0 not) over the prompts with a checkable answer.
     *
     * @param a          the stage on the left
     * @param b          the stage subtracted
     * @param resamples  bootstrap resamples
     * @param confidence interval level
     * @param seed       resampling seed
     * @return the reward difference
     */
    public Bootstrap.Interval delta(String a, String b, int resamples, double confidence, long seed) {
        Evaluator.Result ra = evals.get(a), rb = evals.get(b);
        if (ra == null || rb == null) {
            throw new IllegalArgumentException("delta " + a + " - " + b + " needs both stages evaluated");
        }
        Bootstrap.Interval d = Bootstrap.pairedDifference(ra.rewards(), rb.rewards(), resamples, confidence, seed);
        deltas.put(a + " - " + b, d);
        if (ra.judged() && rb.judged()) {
            double[][] v = pairedVerdicts(ra, rb);
            if (v[0].length > 0) {
                judgeDeltas.put(a + " - " + b, Bootstrap.pairedDifference(v[0], v[1], resamples, confidence, seed));
            }
        }
        return d;
    }

    /** The verdicts of the prompts both stages were judged on, in row order (the rows are the same prompts). */
    private static double[][] pairedVerdicts(Evaluator.Result a, Evaluator.Result b) {
        if (a.rows().size() != b.rows().size()) {
            throw new IllegalArgumentException("stages " + a.stage() + " and " + b.stage() + " were evaluated on"
                    + " different prompts (" + a.rows().size() + " vs " + b.rows().size() + ")");
        }
        List<double[]> pairs = new ArrayList<>();
        for (int i = 0; i < a.rows().size(); i++) {
            Boolean x = a.rows().get(i).correct(), y = b.rows().get(i).correct();
            if (x != null && y != null) {
                pairs.add(new double[]{x ? 1 : 0, y ? 1 : 0});
            }
        }
        double[][] out = new double[2][pairs.size()];
        for (int i = 0; i < pairs.size(); i++) {
            out[0][i] = pairs.get(i)[0];
            out[1][i] = pairs.get(i)[1];
        }
        return out;
    }

    /** The paired reward differences, by "a - b". */
    public Map<String, Bootstrap.Interval> deltas() {
        return deltas;
    }

    /** The paired differences of the judge's accuracy (fractions, not points), by "a - b"; empty without answers. */
    public Map<String, Bootstrap.Interval> judgeDeltas() {
        return judgeDeltas;
    }

    /**
     * The judge's accuracy of a stage per task label, in first-seen order (rows without an answer left out).
     *
     * @param r the stage's evaluation
     * @return task to {correct, judged}
     */
    public static Map<String, int[]> judgeByTask(Evaluator.Result r) {
        Map<String, int[]> out = new LinkedHashMap<>();
        for (Evaluator.Row row : r.rows()) {
            if (row.correct() != null) {
                int[] c = out.computeIfAbsent(row.task().isEmpty() ? "(no task)" : row.task(), k -> new int[2]);
                c[0] += row.correct() ? 1 : 0;
                c[1]++;
            }
        }
        return out;
    }

    public RunReport phase(String name, double seconds) {
        phases.merge(name, seconds, Double::sum);
        return this;
    }

    public Map<String, Double> phases() {
        return phases;
    }

    public RunReport info(String key, String value) {
        info.put(key, value);
        return this;
    }

    public RunReport note(String line) {
        notes.add(line);
        return this;
    }

    /** Malformed lines of one data file that {@code data.on_bad_line: skip} left out. */
    public record SkippedLines(long count, List<Long> firstLines) {
        public SkippedLines {
            firstLines = List.copyOf(firstLines);
        }
    }

    /**
     * Records the lines of a data file that were skipped as malformed.
     *
     * @param file       the data file as configured
     * @param count      how many lines were skipped
     * @param firstLines the line numbers (1-based) of the first ones
     * @return this report
     */
    public RunReport skippedLines(String file, long count, List<Long> firstLines) {
        skipped.put(file, new SkippedLines(count, firstLines));
        return this;
    }

    public Map<String, SkippedLines> skippedLines() {
        return skipped;
    }

    public RunReport totalSeconds(double s) {
        totalSeconds = s;
        return this;
    }

    // ------------------------------------------------------------------ summary.json

    public ObjectNode summaryJson() {
        ObjectNode root = RunDir.JSON.createObjectNode();
        ObjectNode st = root.putObject("stages");
        for (Evaluator.Result r : evals.values()) {
            ObjectNode s = st.putObject(r.stage());
            if (r.judged()) {
                num(s, "judge_accuracy", r.judge().mean());
                s.putArray("judge_ci95").add(r.judge().lo()).add(r.judge().hi());
                s.put("judge_n", r.judge().n());
                ObjectNode bt = s.putObject("judge_by_task");
                judgeByTask(r).forEach((task, c) -> num(bt, task, c[0] / (double) c[1]));
            }
            num(s, "reward_mean", r.reward().mean());
            ArrayNode ci = s.putArray("reward_ci95");
            ci.add(r.reward().lo()).add(r.reward().hi());
            num(s, "rougeL", r.rougeL());
            num(s, "bleu", r.bleu());
            num(s, "eval_loss", r.evalLoss());
            num(s, "response_tokens", r.meanResponseTokens());
            num(s, "distinct_responses", r.distinctFraction());
            s.put("n", r.rows().size());
            num(s, "eval_s", r.seconds());
        }
        ObjectNode d = root.putObject("deltas");
        for (Map.Entry<String, Bootstrap.Interval> e : deltas.entrySet()) {
            ObjectNode o = d.putObject(e.getKey());
            Bootstrap.Interval j = judgeDeltas.get(e.getKey());
            if (j != null) {
                ObjectNode jo = o.putObject("judge");
                num(jo, "mean", j.mean());
                jo.putArray("ci95").add(j.lo()).add(j.hi());
                jo.put("above_zero", j.aboveZero());
                jo.put("below_zero", j.belowZero());
            }
            num(o, "mean", e.getValue().mean());
            o.putArray("ci95").add(e.getValue().lo()).add(e.getValue().hi());
            o.put("above_zero", e.getValue().aboveZero());
            o.put("below_zero", e.getValue().belowZero());
        }
        ObjectNode p = root.putObject("phases_s");
        phases.forEach((k, v) -> num(p, k, v));
        if (!Double.isNaN(totalSeconds)) {
            num(root, "total_s", totalSeconds);
        }
        ObjectNode i = root.putObject("info");
        info.forEach(i::put);
        // always present, so that a script can tell "nothing skipped" from an older summary
        ObjectNode data = root.putObject("data");
        data.put("skipped_lines", skipped.values().stream().mapToLong(SkippedLines::count).sum());
        ObjectNode files = data.putObject("skipped_by_file");
        skipped.forEach((f, sk) -> {
            ObjectNode o = files.putObject(f);
            o.put("count", sk.count());
            ArrayNode a = o.putArray("first_lines");
            sk.firstLines().forEach(a::add);
        });
        return root;
    }

    private static void num(ObjectNode n, String k, double v) {
        if (Double.isFinite(v)) {
            n.put(k, v);
        } else {
            n.putNull(k);
        }
    }

    // ------------------------------------------------------------------ console

    /** The evaluation and difference tables as plain text (what the CLI prints at the end). */
    public String consoleTable() {
        StringBuilder sb = new StringBuilder();
        boolean judged = evals.values().stream().anyMatch(Evaluator.Result::judged);
        if (!evals.isEmpty()) {
            if (judged) {
                sb.append(String.format(Locale.ROOT, "%-10s %7s %16s ", "stage", "correct", "95% CI"));
            } else {
                sb.append(String.format(Locale.ROOT, "%-10s ", "stage"));
            }
            sb.append(String.format(Locale.ROOT, "%7s %19s %7s %7s %9s %6s %8s%n", "reward", "95% CI", "rougeL",
                    "bleu", "eval loss", "tokens", "distinct"));
            for (Evaluator.Result r : evals.values()) {
                sb.append(String.format(Locale.ROOT, "%-10s ", r.stage()));
                if (judged) {
                    sb.append(r.judged() ? String.format(Locale.ROOT, "%6.1f%%  [%5.1f%%, %5.1f%%] ",
                            100 * r.judge().mean(), 100 * r.judge().lo(), 100 * r.judge().hi())
                            : String.format(Locale.ROOT, "%7s %16s ", "-", ""));
                }
                sb.append(String.format(Locale.ROOT, "%7.4f  [%7.4f, %7.4f] %7.4f %7.4f %9.4f %6.1f %7.0f%%%n",
                        r.reward().mean(), r.reward().lo(), r.reward().hi(), r.rougeL(), r.bleu(), r.evalLoss(),
                        r.meanResponseTokens(), 100 * r.distinctFraction()));
            }
        }
        if (!deltas.isEmpty()) {
            boolean jd = !judgeDeltas.isEmpty();
            sb.append(String.format(Locale.ROOT, "%n%-17s ", "paired difference"));
            if (jd) {
                sb.append(String.format(Locale.ROOT, "%7s %16s %-8s ", "correct", "95% CI (points)", ""));
            }
            sb.append(String.format(Locale.ROOT, "%8s %20s%n", "reward", "95% CI"));
            for (Map.Entry<String, Bootstrap.Interval> e : deltas.entrySet()) {
                Bootstrap.Interval d = e.getValue();
                sb.append(String.format(Locale.ROOT, "%-17s ", e.getKey()));
                if (jd) {
                    Bootstrap.Interval j = judgeDeltas.get(e.getKey());
                    sb.append(j == null ? String.format(Locale.ROOT, "%7s %16s %-8s ", "-", "", "")
                            : String.format(Locale.ROOT, "%+7.1f  [%+5.1f, %+5.1f]  %-8s ", 100 * j.mean(),
                            100 * j.lo(), 100 * j.hi(), j.verdict()));
                }
                sb.append(String.format(Locale.ROOT, "%+8.4f  [%+8.4f, %+8.4f]  %s%n", d.mean(), d.lo(), d.hi(),
                        d.verdict()));
            }
        }
        if (!phases.isEmpty()) {
            sb.append(String.format(Locale.ROOT, "%nphase times:"));
            phases.forEach((k, v) -> sb.append(String.format(Locale.ROOT, "  %s %.1f s", k, v)));
            if (!Double.isNaN(totalSeconds)) {
                sb.append(String.format(Locale.ROOT, "  | total %.1f s", totalSeconds));
            }
            sb.append(System.lineSeparator());
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------ report.md

    public String markdown(List<String> plotFiles, int samples) {
        StringBuilder md = new StringBuilder("# ").append(title).append("\n\n");
        if (!info.isEmpty()) {
            md.append("| setting | value |\n| --- | --- |\n");
            info.forEach((k, v) -> md.append("| ").append(k).append(" | ").append(cell(v)).append(" |\n"));
            md.append('\n');
        }
        boolean judged = evals.values().stream().anyMatch(Evaluator.Result::judged);
        if (!evals.isEmpty()) {
            md.append("## Evaluation on the held-out split\n\n");
            if (judged) {
                md.append("*correct*: the judge's verdict (does the response state the example's checkable answer;"
                        + " independent of the reward and of ROUGE/BLEU), with its 95% bootstrap interval.\n\n");
            }
            md.append(judged ? "| stage | correct | 95% CI " : "| stage ");
            md.append("| mean reward | 95% CI | ROUGE-L | BLEU | eval loss | response tokens | distinct responses | n |\n");
            md.append(judged ? "| --- | ---: | --- " : "| --- ");
            md.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
            for (Evaluator.Result r : evals.values()) {
                md.append("| ").append(r.stage()).append(' ');
                if (judged) {
                    md.append(r.judged() ? String.format(Locale.ROOT, "| **%.1f%%** | [%.1f%%, %.1f%%] ",
                            100 * r.judge().mean(), 100 * r.judge().lo(), 100 * r.judge().hi()) : "| - | ");
                }
                md.append(String.format(Locale.ROOT, "| %.4f | [%.4f, %.4f] | %.4f | %.4f | %.4f | %.1f | %.0f%% | %d"
                                + " |%n", r.reward().mean(), r.reward().lo(), r.reward().hi(), r.rougeL(), r.bleu(),
                        r.evalLoss(), r.meanResponseTokens(), 100 * r.distinctFraction(), r.rows().size()));
            }
            md.append('\n');
        }
        if (!deltas.isEmpty()) {
            boolean jd = !judgeDeltas.isEmpty();
            md.append("## Paired differences (bootstrap over held-out prompts)\n\n");
            md.append("*higher* / *lower*: the whole 95% interval lies above / below zero; *unclear*: it holds zero.\n\n");
            md.append(jd ? "| difference | correct (points) | 95% CI | | reward | 95% CI | |\n"
                    + "| --- | ---: | --- | --- | ---: | --- | --- |\n"
                    : "| difference | reward | 95% CI | |\n| --- | ---: | --- | --- |\n");
            deltas.forEach((k, d) -> {
                md.append("| ").append(k).append(' ');
                if (jd) {
                    Bootstrap.Interval j = judgeDeltas.get(k);
                    md.append(j == null ? "| - | | " : String.format(Locale.ROOT, "| **%+.1f** | [%+.1f, %+.1f] | %s ",
                            100 * j.mean(), 100 * j.lo(), 100 * j.hi(), j.verdict()));
                }
                md.append(String.format(Locale.ROOT, "| %+.4f | [%+.4f, %+.4f] | %s |%n", d.mean(), d.lo(), d.hi(),
                        d.verdict()));
            });
            md.append('\n');
        }
        if (judged) {
            Map<String, Map<String, int[]>> byStage = new LinkedHashMap<>();
            List<String> tasks = new ArrayList<>();
            for (Evaluator.Result r : evals.values()) {
                if (r.judged()) {
                    Map<String, int[]> t = judgeByTask(r);
                    byStage.put(r.stage(), t);
                    t.keySet().stream().filter(k -> !tasks.contains(k)).forEach(tasks::add);
                }
            }
            if (tasks.size() > 1) {
                md.append("## Correct answers per task\n\n| task | n |");
                byStage.keySet().forEach(st -> md.append(' ').append(st).append(" |"));
                md.append("\n| --- | ---: |");
                byStage.keySet().forEach(st -> md.append(" ---: |"));
                md.append('\n');
                for (String task : tasks) {
                    int n = byStage.values().stream().mapToInt(m -> m.containsKey(task) ? m.get(task)[1] : 0).max()
                            .orElse(0);
                    md.append("| ").append(cell(task)).append(" | ").append(n).append(" |");
                    for (Map<String, int[]> m : byStage.values()) {
                        int[] c = m.get(task);
                        md.append(c == null ? " - |" : String.format(Locale.ROOT, " %.0f%% |", 100.0 * c[0] / c[1]));
                    }
                    md.append('\n');
                }
                md.append('\n');
            }
        }
        if (!phases.isEmpty()) {
            md.append("## Time per phase\n\n| phase | seconds |\n| --- | ---: |\n");
            phases.forEach((k, v) -> md.append(String.format(Locale.ROOT, "| %s | %.1f |%n", k, v)));
            if (!Double.isNaN(totalSeconds)) {
                md.append(String.format(Locale.ROOT, "| **total** | **%.1f** |%n", totalSeconds));
            }
            md.append('\n');
        }
        if (!plotFiles.isEmpty()) {
            md.append("## Curves\n\n");
            for (String p : plotFiles) {
                md.append("![").append(p).append("](").append(p).append(")\n\n");
            }
        }
        if (!evals.isEmpty() && samples > 0) {
            md.append("## Sample generations\n\n");
            Evaluator.Result first = evals.values().iterator().next();
            int n = Math.min(samples, first.rows().size());
            for (int i = 0; i < n; i++) {
                Evaluator.Row row = first.rows().get(i);
                md.append("**Prompt:** ").append(cell(row.prompt())).append("  \n");
                md.append("**Reference:** ").append(cell(row.reference())).append("\n\n");
                md.append("| stage | response | correct | reward |\n| --- | --- | --- | ---: |\n");
                for (Evaluator.Result r : evals.values()) {
                    if (i < r.rows().size()) {
                        Evaluator.Row x = r.rows().get(i);
                        md.append("| ").append(r.stage()).append(" | ").append(cell(x.response())).append(" | ")
                                .append(x.correct() == null ? "-" : x.correct() ? "yes" : "no").append(" | ")
                                .append(String.format(Locale.ROOT, "%.3f", x.reward())).append(" |\n");
                    }
                }
                md.append('\n');
            }
        }
        if (!notes.isEmpty()) {
            md.append("## Notes\n\n");
            notes.forEach(n -> md.append("- ").append(n).append('\n'));
        }
        return md.toString();
    }

    private static String cell(String s) {
        String t = s.replace("|", "\\|").replace("\r", "").replace("\n", " ⏎ ");
        return t.length() > 300 ? t.substring(0, 300) + "…" : t;
    }

    /**
     * Writes summary.json, the per-example eval files, the plots and report.md into the run directory.
     */
    public void write(RunDir run, int samples) {
        try {
            for (Evaluator.Result r : evals.values()) {
                StringBuilder sb = new StringBuilder();
                for (Evaluator.Row row : r.rows()) {
                    sb.append(RunDir.JSON.copy().disable(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
                            .writeValueAsString(row)).append('\n');
                }
                RunDir.writeAtomically(run.resolve(RunDir.EVAL).resolve(Plots.safe(r.stage()) + ".jsonl"),
                        sb.toString());
            }
            List<String> plots = new ArrayList<>();
            Path metrics = run.resolve(RunDir.METRICS);
            if (Files.exists(metrics)) {
                for (Path p : Plots.stageCurves(metrics, run.resolve(RunDir.PLOTS))) {
                    plots.add(run.root().relativize(p).toString());
                }
            }
            if (evals.size() > 1) {
                Map<String, Bootstrap.Interval> bars = new LinkedHashMap<>();
                evals.forEach((k, v) -> bars.put(k, v.reward()));
                Path p = Plots.rewardBars(bars, "held-out mean reward (95% CI)",
                        run.resolve(RunDir.PLOTS).resolve("eval_reward.png"));
                plots.add(run.root().relativize(p).toString());
            }
            RunDir.writeAtomically(run.resolve(RunDir.SUMMARY),
                    RunDir.JSON.writeValueAsString(summaryJson()) + "\n");
            RunDir.writeAtomically(run.resolve(RunDir.REPORT), markdown(plots, samples));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
