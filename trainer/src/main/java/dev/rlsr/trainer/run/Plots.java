package dev.rlsr.trainer.run;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rlsr.trainer.eval.Bootstrap;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * PNG plots of a run (XChart, headless AWT: no display needed): one image per stage with a small chart for each main
 * metric of {@code metrics.jsonl} (loss, reward mean, KL, entropy, clip fraction, grad norm, lr, ...), and a bar
 * chart of the evaluated stages' mean reward with its bootstrap interval.
 */
public final class Plots {
    /** Metrics plotted when present, in this order. */
    public static final List<String> MAIN_METRICS = List.of("loss", "eval_loss", "reward_mean", "reward_std", "kl",
            "entropy", "clip_fraction", "grad_norm", "lr", "response_length", "tokens_per_s");
    private static final int W = 420, H = 260;

    static {
        System.setProperty("java.awt.headless", "true");
    }

    private Plots() {
    }

    /** Writes {@code <dir>/<stage>.png} for every stage of the metrics file; returns the files written. */
    public static List<Path> stageCurves(Path metricsFile, Path dir) {
        List<JsonNode> lines = MetricsLog.read(metricsFile);
        Set<String> stages = new LinkedHashSet<>();
        lines.forEach(l -> stages.add(l.path("stage").asText()));
        List<Path> out = new ArrayList<>();
        for (String stage : stages) {
            Map<String, List<double[]>> series = new LinkedHashMap<>();
            for (String m : MAIN_METRICS) {
                List<double[]> pts = new ArrayList<>();
                for (JsonNode l : lines) {
                    if (l.path("stage").asText().equals(stage) && l.path(m).isNumber()) {
                        pts.add(new double[]{l.path("step").asDouble(), l.path(m).asDouble()});
                    }
                }
                if (!pts.isEmpty()) {
                    series.put(m, pts);
                }
            }
            if (series.isEmpty()) {
                continue;
            }
            List<BufferedImage> charts = new ArrayList<>();
            for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
                XYChart c = new XYChartBuilder().width(W).height(H).title(stage + ": " + e.getKey())
                        .xAxisTitle("step").build();
                c.getStyler().setLegendVisible(false);
                c.getStyler().setChartBackgroundColor(Color.WHITE);
                c.getStyler().setPlotGridLinesVisible(true);
                // keeps step labels apart when there are hundreds of steps
                c.getStyler().setXAxisTickMarkSpacingHint(70);
                double[] x = e.getValue().stream().mapToDouble(p -> p[0]).toArray();
                double[] y = e.getValue().stream().mapToDouble(p -> p[1]).toArray();
                var s = c.addSeries(e.getKey(), x, y);
                s.setMarker(x.length > 40 ? SeriesMarkers.NONE : SeriesMarkers.CIRCLE);
                double lo = java.util.Arrays.stream(y).min().orElse(0), hi = java.util.Arrays.stream(y).max().orElse(0);
                boolean varies = hi - lo > 1e-9 * Math.max(Math.abs(hi), Math.abs(lo));
                if (x.length > 20 && varies) {
                    // RL curves are noisy step to step: a centred moving average shows the trend
                    s.setLineColor(new Color(150, 170, 230));
                    var avg = c.addSeries(e.getKey() + " (moving average)", x, movingAverage(y, Math.max(5,
                            x.length / 15)));
                    avg.setMarker(SeriesMarkers.NONE);
                    avg.setLineColor(new Color(20, 50, 170));
                }
                charts.add(BitmapEncoder.getBufferedImage(c));
            }
            Path file = dir.resolve(safe(stage) + ".png");
            writeGrid(charts, 2, file);
            out.add(file);
        }
        return out;
    }

    /** Centred moving average over {@code w} points (shorter windows at the ends). */
    static double[] movingAverage(double[] y, int w) {
        double[] out = new double[y.length];
        for (int i = 0; i < y.length; i++) {
            int a = Math.max(0, i - w / 2), b = Math.min(y.length, i + w / 2 + 1);
            double sum = 0;
            for (int k = a; k < b; k++) {
                sum += y[k];
            }
            out[i] = sum / (b - a);
        }
        return out;
    }

    /** A bar chart of each stage's mean reward with its interval as error bars. */
    public static Path rewardBars(Map<String, Bootstrap.Interval> stages, String title, Path file) {
        CategoryChart c = new CategoryChartBuilder().width(560).height(340).title(title).yAxisTitle("mean reward")
                .build();
        c.getStyler().setLegendVisible(false);
        c.getStyler().setChartBackgroundColor(Color.WHITE);
        c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        List<String> names = new ArrayList<>(stages.keySet());
        List<Double> means = new ArrayList<>(), errs = new ArrayList<>();
        for (Bootstrap.Interval i : stages.values()) {
            means.add(i.mean());
            errs.add(Math.max(i.hi() - i.mean(), i.mean() - i.lo()));
        }
        c.addSeries("reward", names, means, errs);
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            ImageIO.write(BitmapEncoder.getBufferedImage(c), "png", file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
        return file;
    }

    private static void writeGrid(List<BufferedImage> charts, int cols, Path file) {
        int rows = (charts.size() + cols - 1) / cols;
        int c = Math.min(cols, charts.size());
        BufferedImage img = new BufferedImage(c * W, rows * H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, img.getWidth(), img.getHeight());
        for (int i = 0; i < charts.size(); i++) {
            g.drawImage(charts.get(i), (i % cols) * W, (i / cols) * H, null);
        }
        g.dispose();
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            ImageIO.write(img, "png", file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** A file name for a stage ("sft+rlsr" stays readable). */
    static String safe(String stage) {
        return stage.replaceAll("[^A-Za-z0-9+_.-]", "_");
    }
}
