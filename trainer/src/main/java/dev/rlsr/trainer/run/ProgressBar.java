package dev.rlsr.trainer.run;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * A one-line progress bar with rate and ETA, e.g.
 * {@code rl          [#########>          ]  45/100 steps  0.52 steps/s  ETA 1:45  reward 0.41}.
 * On a terminal the line is redrawn in place (carriage return) at most every 150 ms; elsewhere (a log file, CI) it
 * prints a plain line at every 10% instead, so logs stay readable. The clock is injectable for tests.
 */
public final class ProgressBar {
    private static final int WIDTH = 24;
    private final PrintStream out;
    private final boolean interactive;
    private final LongSupplier nanoClock;
    private String phase;
    private long total;
    private String unit;
    private long startNanos;
    private long lastDrawNanos;
    private int lastDecile;
    private long done;
    private Map<String, Double> stats = Map.of();
    private int lastWidth;

    public ProgressBar(PrintStream out, boolean interactive) {
        this(out, interactive, System::nanoTime);
    }

    ProgressBar(PrintStream out, boolean interactive, LongSupplier nanoClock) {
        this.out = out;
        this.interactive = interactive;
        this.nanoClock = nanoClock;
    }

    public void start(String phase, long total, String unit) {
        this.phase = phase;
        this.total = total;
        this.unit = unit == null || unit.isBlank() ? "it" : unit;
        this.startNanos = nanoClock.getAsLong();
        this.lastDrawNanos = 0;
        this.lastDecile = 0;
        this.done = 0;
        this.stats = Map.of();
        this.lastWidth = 0;
        if (interactive) {
            draw(false);
        }
    }

    public void update(long done, Map<String, Double> stats) {
        if (phase == null) {
            return;
        }
        this.done = done;
        this.stats = stats == null ? Map.of() : stats;
        long now = nanoClock.getAsLong();
        if (interactive) {
            if (now - lastDrawNanos >= 150_000_000L || (total > 0 && done >= total)) {
                draw(false);
                lastDrawNanos = now;
            }
        } else if (total > 0) {
            int decile = (int) Math.min(10, done * 10 / total);
            if (decile > lastDecile) {
                lastDecile = decile;
                out.println(line());
            }
        }
    }

    /** Ends the phase: the bar's last state stays on screen as a finished line. */
    public void finish() {
        finish(true);
    }

    /** Ends the phase; {@code keep = false} erases a bar drawn in place (a nested phase such as one rollout). */
    public void finish(boolean keep) {
        if (phase == null) {
            return;
        }
        if (interactive) {
            if (keep) {
                draw(true);
            } else {
                out.print("\r" + " ".repeat(lastWidth) + "\r");
                out.flush();
            }
        } else if (keep && (total <= 0 || lastDecile < 10)) {
            out.println(line());
        }
        phase = null;
    }

    /** Redraws the bar (after a nested bar used the line). */
    public void redraw() {
        if (interactive && phase != null) {
            draw(false);
        }
    }

    public boolean active() {
        return phase != null;
    }

    public String phase() {
        return phase;
    }

    public long total() {
        return total;
    }

    /** Prints a log line without breaking a bar drawn in place (the bar is redrawn under it). */
    public void println(String message) {
        if (interactive && phase != null) {
            out.print("\r" + " ".repeat(lastWidth) + "\r");
            out.println(message);
            draw(false);
        } else {
            out.println(message);
        }
    }

    private void draw(boolean end) {
        String l = line();
        int pad = Math.max(0, lastWidth - l.length());
        out.print("\r" + l + " ".repeat(pad) + (end ? "\n" : ""));
        out.flush();
        lastWidth = l.length();
    }

    /** The bar as text (no carriage return). */
    String line() {
        double elapsed = (nanoClock.getAsLong() - startNanos) / 1e9;
        double rate = elapsed > 0 ? done / elapsed : 0;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-14s", phase));
        if (total > 0) {
            double f = Math.min(1.0, (double) done / total);
            int filled = (int) Math.round(f * WIDTH);
            sb.append(" [").append("#".repeat(filled));
            if (filled < WIDTH) {
                sb.append('>').append(" ".repeat(WIDTH - filled - 1));
            }
            sb.append("] ").append(String.format(Locale.ROOT, "%d/%d %s", done, total, unit));
        } else {
            sb.append(String.format(Locale.ROOT, " %d %s", done, unit));
        }
        sb.append(String.format(Locale.ROOT, "  %s %s/s", fmtRate(rate), unit));
        if (total > 0 && done < total && rate > 0) {
            sb.append("  ETA ").append(clock((total - done) / rate));
        } else {
            sb.append("  ").append(clock(elapsed));
        }
        for (Map.Entry<String, Double> e : stats.entrySet()) {
            sb.append("  ").append(e.getKey()).append(' ').append(fmtStat(e.getValue()));
        }
        return sb.toString();
    }

    static String fmtRate(double r) {
        return r >= 100 ? String.format(Locale.ROOT, "%.0f", r) : r >= 10 ? String.format(Locale.ROOT, "%.1f", r)
                : String.format(Locale.ROOT, "%.2f", r);
    }

    static String fmtStat(Double v) {
        if (v == null || !Double.isFinite(v)) {
            return String.valueOf(v);
        }
        double a = Math.abs(v);
        return a != 0 && (a < 1e-3 || a >= 1e5) ? String.format(Locale.ROOT, "%.2e", v)
                : String.format(Locale.ROOT, "%.4g", v);
    }

    /** Seconds as m:ss or h:mm:ss. */
    public static String clock(double seconds) {
        long s = Math.round(Math.max(0, seconds));
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
