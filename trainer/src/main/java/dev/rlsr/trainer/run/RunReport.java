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
 * <p>summary.json:
 * <pre>{@code
 * {"stages": {"sft": {"reward_mean": m, "reward_ci95": [lo, hi], "rougeL": r, "bleu": b, "eval_loss": l,
 *                     "response_tokens": t, "n": n}, ...},
 *  "deltas": {"sft+rlsr - sft": {"mean": d, "ci95": [lo, hi]}, ...},
 *  "phases_s": {"pretrain": s, ...}, "total_s": s, "info": {...},
 *  "data": {"skipped_lines": n, "skipped_by_file": {"train.jsonl": {"count": n, "first_lines": [3, 7]}}}}
 * }</pre>
 */
public final class RunReport {
    private final String title;
    private final Map<String, Evaluator.Result> evals = new LinkedHashMap<>();
    private final Map<String, Bootstrap.Interval> deltas = new LinkedHashMap<>();
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

    /** Records the paired bootstrap difference {@code a - b} of two evaluated stages' per-prompt rewards. */
    public Bootstrap.Interval delta(String a, String b, int resamples, double confidence, long seed) {
        Evaluator.Result ra = evals.get(a), rb = evals.get(b);
        if (ra == null || rb == null) {
            throw new IllegalArgumentException("delta " + a + " - " + b + " needs both stages evaluated");
        }
        Bootstrap.Interval d = Bootstrap.pairedDifference(ra.rewards(), rb.rewards(), resamples, confidence, seed);
        deltas.put(a + " - " + b, d);
        return d;
    }

    public Map<String, Bootstrap.Interval> deltas() {
        return deltas;
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
            num(o, "mean", e.getValue().mean());
            o.putArray("ci95").add(e.getValue().lo()).add(e.getValue().hi());
            o.put("above_zero", e.getValue().aboveZero());
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
        if (!evals.isEmpty()) {
            sb.append(String.format(Locale.ROOT, "%-10s %8s %19s %8s %8s %9s %7s %8s%n", "stage", "reward", "95% CI",
                    "rougeL", "bleu", "eval loss", "tokens", "distinct"));
            for (Evaluator.Result r : evals.values()) {
                sb.append(String.format(Locale.ROOT, "%-10s %8.4f  [%7.4f, %7.4f] %8.4f %8.4f %9.4f %7.1f %7.0f%%%n",
                        r.stage(), r.reward().mean(), r.reward().lo(), r.reward().hi(), r.rougeL(), r.bleu(),
                        r.evalLoss(), r.meanResponseTokens(), 100 * r.distinctFraction()));
            }
        }
        if (!deltas.isEmpty()) {
            sb.append(String.format(Locale.ROOT, "%n%-18s %9s %21s  %s%n", "paired difference", "mean", "95% CI",
                    "CI above 0"));
            for (Map.Entry<String, Bootstrap.Interval> e : deltas.entrySet()) {
                Bootstrap.Interval d = e.getValue();
                sb.append(String.format(Locale.ROOT, "%-18s %+9.4f  [%+8.4f, %+8.4f]  %s%n", e.getKey(), d.mean(),
                        d.lo(), d.hi(), d.aboveZero() ? "yes" : "no"));
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
        if (!evals.isEmpty()) {
            md.append("## Evaluation on the held-out split\n\n");
            md.append("| stage | mean reward | 95% CI | ROUGE-L | BLEU | eval loss | response tokens | distinct"
                    + " responses | n |\n");
            md.append("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
            for (Evaluator.Result r : evals.values()) {
                md.append(String.format(Locale.ROOT, "| %s | %.4f | [%.4f, %.4f] | %.4f | %.4f | %.4f | %.1f | %.0f%% | %d"
                                + " |%n", r.stage(), r.reward().mean(), r.reward().lo(), r.reward().hi(), r.rougeL(),
                        r.bleu(), r.evalLoss(), r.meanResponseTokens(), 100 * r.distinctFraction(), r.rows().size()));
            }
            md.append('\n');
        }
        if (!deltas.isEmpty()) {
            md.append("## Paired differences (bootstrap over held-out prompts)\n\n");
            md.append("| difference | mean | 95% CI | CI above 0 |\n| --- | ---: | --- | --- |\n");
            deltas.forEach((k, d) -> md.append(String.format(Locale.ROOT, "| %s | %+.4f | [%+.4f, %+.4f] | %s |%n",
                    k, d.mean(), d.lo(), d.hi(), d.aboveZero() ? "yes" : "no")));
            md.append('\n');
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
                md.append("| stage | response | reward |\n| --- | --- | ---: |\n");
                for (Evaluator.Result r : evals.values()) {
                    if (i < r.rows().size()) {
                        Evaluator.Row x = r.rows().get(i);
                        md.append("| ").append(r.stage()).append(" | ").append(cell(x.response())).append(" | ")
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
