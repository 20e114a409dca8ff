package dev.rlsr.trainer.run;

import dev.rlsr.trainer.train.TrainListener;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The run's {@link TrainListener}: step metrics go to {@code metrics.jsonl}, phases drive progress bars (rate, ETA)
 * on the console, log lines go to the console and {@code run.log}.
 *
 * <p>Phases nest (an "rl" phase contains "rollout" phases): the innermost bar is drawn; when it ends it is erased
 * and the outer bar comes back. With {@code quiet} there are no bars: a plain timestamped line at each phase start
 * and end and for every tenth of a phase's steps. Timing keys ({@link #TIMING_KEYS}) are recorded but compared by
 * nobody: they are the only values that differ between two runs of the same config.
 */
public final class RunListener implements TrainListener, AutoCloseable {
    /** Metrics that measure time, not training; excluded when comparing runs. */
    public static final java.util.Set<String> TIMING_KEYS = java.util.Set.of("time_s", "rollout_s", "reward_s",
            "update_s", "step_s", "tokens_per_s", "elapsed_s", "wall_s");
    private static final DateTimeFormatter HMS = DateTimeFormatter.ofPattern("HH:mm:ss");

    private final MetricsLog metrics;
    private final PrintStream console;
    private final boolean quiet;
    private final boolean interactive;
    private final BufferedWriter logFile;
    private final Deque<ProgressBar> bars = new ArrayDeque<>();
    private final Deque<Long> phaseStart = new ArrayDeque<>();
    private final Map<String, Long> quietEvery = new LinkedHashMap<>();
    private final java.util.List<StepObserver> observers = new java.util.concurrent.CopyOnWriteArrayList<>();
    private StepProfiler profiler;

    /** Sees each step after it was recorded; may throw to stop the run (early stopping, a simulated kill in tests). */
    @FunctionalInterface
    public interface StepObserver {
        void step(String stage, long step, Map<String, Object> metrics);
    }

    /**
     * @param metrics     metrics.jsonl, or null to record nothing
     * @param console     where bars and log lines go (stderr in the CLI, so stdout keeps results)
     * @param quiet       no bars, plain log lines
     * @param interactive the console is a terminal (bars redraw in place)
     * @param logFile     run.log, or null
     */
    public RunListener(MetricsLog metrics, PrintStream console, boolean quiet, boolean interactive, Path logFile) {
        this.metrics = metrics;
        this.console = console;
        this.quiet = quiet;
        this.interactive = interactive && !quiet;
        BufferedWriter w = null;
        if (logFile != null) {
            try {
                Files.createDirectories(logFile.toAbsolutePath().getParent());
                w = Files.newBufferedWriter(logFile, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            } catch (IOException e) {
                console.println("warning: cannot write " + logFile + ": " + dev.rlsr.engine.io.IoMessages.describe(e));
            }
        }
        this.logFile = w;
    }

    public MetricsLog metrics() {
        return metrics;
    }

    public void addStepObserver(StepObserver o) {
        observers.add(o);
    }

    @Override
    public synchronized void phaseStarted(String phase, long totalUnits, String unit) {
        phaseStart.push(System.nanoTime());
        if (quiet) {
            if (bars.isEmpty()) {
                line(phase + ": started" + (totalUnits > 0 ? " (" + totalUnits + " " + unit + ")" : ""));
            }
            ProgressBar b = new ProgressBar(console, false);
            bars.push(b);
            b.start(phase, totalUnits, unit);
            quietEvery.put(phase, Math.max(1, totalUnits / 10));
            return;
        }
        ProgressBar b = new ProgressBar(console, interactive);
        if (!bars.isEmpty() && !interactive) {
            // nested phases print no 10% lines in a log; the outer phase does
            b = new ProgressBar(new PrintStream(java.io.OutputStream.nullOutputStream()), false);
        }
        bars.push(b);
        b.start(phase, totalUnits, unit);
    }

    @Override
    public synchronized void progress(long doneUnits, Map<String, Double> liveStats) {
        ProgressBar b = bars.peek();
        if (b == null) {
            return;
        }
        if (quiet) {
            if (bars.size() == 1) {
                long every = quietEvery.getOrDefault(b.phase(), 1L);
                if (doneUnits % every == 0 || doneUnits == b.total()) {
                    StringBuilder sb = new StringBuilder(b.phase() + ": " + doneUnits
                            + (b.total() > 0 ? "/" + b.total() : ""));
                    if (liveStats != null) {
                        liveStats.forEach((k, v) -> sb.append("  ").append(k).append(' ')
                                .append(ProgressBar.fmtStat(v)));
                    }
                    line(sb.toString());
                }
            }
            return;
        }
        b.update(doneUnits, liveStats);
    }

    @Override
    public synchronized void phaseFinished(String phase) {
        ProgressBar b = bars.poll();
        Long t0 = phaseStart.poll();
        double secs = t0 == null ? 0 : (System.nanoTime() - t0) / 1e9;
        if (b == null) {
            return;
        }
        boolean outer = bars.isEmpty();
        if (quiet) {
            if (outer) {
                line(phase + ": done in " + ProgressBar.clock(secs));
            }
            return;
        }
        b.finish(outer);
        ProgressBar parent = bars.peek();
        if (parent != null) {
            parent.redraw();
        }
        writeLog(phase + ": done in " + ProgressBar.clock(secs));
    }

    /**
     * Profiles optimizer step {@code step} of each training stage ({@link StepProfiler}); call it before training.
     *
     * @param step the step, from 1
     * @param dir  where each stage's table is written
     */
    public synchronized void profileStep(long step, Path dir) {
        profiler = new StepProfiler(step, dir, this::log);
    }

    @Override
    public synchronized void stepStarting(String stage, long step) {
        if (profiler != null) {
            profiler.starting(stage, step);
        }
    }

    @Override
    public synchronized void step(String stage, long step, Map<String, Object> m) {
        if (profiler != null) {
            profiler.finished(stage, step);
        }
        if (metrics != null) {
            metrics.append(stage, step, m);
        }
        for (StepObserver o : observers) {
            o.step(stage, step, m);
        }
    }

    @Override
    public synchronized void log(String message) {
        line(message);
    }

    private void line(String message) {
        String stamped = "[" + LocalTime.now().format(HMS) + "] " + message;
        ProgressBar b = bars.peek();
        if (b != null && interactive) {
            b.println(stamped);
        } else {
            console.println(stamped);
        }
        writeLog(stamped);
    }

    private void writeLog(String s) {
        if (logFile != null) {
            try {
                logFile.write(s.startsWith("[") ? s : "[" + LocalTime.now().format(HMS) + "] " + s);
                logFile.newLine();
                logFile.flush();
            } catch (IOException ignored) {
                // the console has the line
            }
        }
    }

    /** Formats seconds for the per-phase time table. */
    public static String seconds(double s) {
        return String.format(Locale.ROOT, "%.1f s", s);
    }

    @Override
    public synchronized void close() {
        if (profiler != null) {
            profiler.close(); // a step that failed under the profiler
        }
        // phases still open here were cut short by an error; quiet mode draws no bars, not even then
        while (!bars.isEmpty()) {
            ProgressBar b = bars.poll();
            if (!quiet) {
                b.finish(bars.isEmpty());
            }
        }
        if (metrics != null) {
            metrics.close();
        }
        if (logFile != null) {
            try {
                logFile.close();
            } catch (IOException ignored) {
                // nothing to do
            }
        }
    }
}
