package dev.rlsr.trainer.run;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rlsr.trainer.eval.Bootstrap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** metrics.jsonl, progress bars and plots. */
class RunFilesTest {

    @TempDir
    Path tmp;

    private static Map<String, Object> m(double loss) {
        Map<String, Object> x = new LinkedHashMap<>();
        x.put("loss", loss);
        x.put("lr", 1e-3);
        return x;
    }

    @Test
    void metricsTruncateAfterACheckpoint() throws Exception {
        Path f = tmp.resolve(RunDir.METRICS);
        try (MetricsLog log = new MetricsLog(f)) {
            for (int s = 1; s <= 5; s++) {
                log.append("sft", s, m(s));
            }
            for (int s = 1; s <= 3; s++) {
                log.append("rl", s, m(10 + s));
            }
            log.truncateAfter("rl", 2);
            assertEquals(7, MetricsLog.read(f).size());
            assertEquals(2, MetricsLog.read(f).getLast().path("step").asInt());
            log.append("rl", 3, m(99));
        }
        List<JsonNode> lines = MetricsLog.read(f);
        assertEquals(8, lines.size(), "appending after a truncate continues the file");
        assertEquals(99.0, lines.getLast().path("loss").asDouble());
        // a kill in the middle of a write leaves a partial line: it is dropped, the rest kept
        Files.writeString(f, Files.readString(f) + "{\"stage\":\"rl\",\"ste", StandardCharsets.UTF_8);
        assertEquals(8, MetricsLog.read(f).size());
        try (MetricsLog log = new MetricsLog(f)) {
            log.dropStage("rl");
        }
        assertEquals(5, MetricsLog.read(f).size());
        assertTrue(MetricsLog.read(f).stream().allMatch(n -> n.path("stage").asText().equals("sft")));
    }

    @Test
    void nonFiniteValuesBecomeNull() {
        Path f = tmp.resolve(RunDir.METRICS);
        try (MetricsLog log = new MetricsLog(f)) {
            log.append("sft", 1, Map.of("loss", Double.NaN, "eval_loss", 2.5f));
        }
        JsonNode n = MetricsLog.read(f).getFirst();
        assertTrue(n.path("loss").isNull());
        assertEquals(2.5, n.path("eval_loss").asDouble());
    }

    @Test
    void progressBarShowsRateAndEta() {
        AtomicLong now = new AtomicLong(0);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(bytes, true, StandardCharsets.UTF_8), false, now::get);
        bar.start("rl", 100, "step");
        now.set(10_000_000_000L); // 10 s for 25 steps: 2.5 steps/s, 75 left: 30 s
        bar.update(25, Map.of("reward", 0.5));
        String line = bar.line();
        assertTrue(line.contains("25/100 step"), line);
        assertTrue(line.contains("2.50 step/s"), line);
        assertTrue(line.contains("ETA 0:30"), line);
        assertTrue(line.contains("reward 0.5000"), line);
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(1, out.lines().count(), "a log gets a line per tenth passed, not per update: " + out);
        bar.finish();
        assertEquals("1:01:01", ProgressBar.clock(3661));
    }

    @Test
    void quietListenerPrintsPlainLines() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (RunListener l = new RunListener(null, new PrintStream(bytes, true, StandardCharsets.UTF_8), true, false,
                tmp.resolve("run.log"))) {
            l.phaseStarted("sft epoch 1", 20, "step");
            for (int s = 1; s <= 20; s++) {
                l.progress(s, Map.of("loss", 1.0));
            }
            l.phaseFinished("sft epoch 1");
        }
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("sft epoch 1: started (20 step)"), out);
        assertTrue(out.contains("sft epoch 1: 20/20"), out);
        assertTrue(out.contains("sft epoch 1: done in"), out);
        assertTrue(out.chars().noneMatch(c -> c == '\r'), "no carriage returns in quiet mode");
    }

    @Test
    void plotsRenderHeadless() throws Exception {
        Path f = tmp.resolve(RunDir.METRICS);
        try (MetricsLog log = new MetricsLog(f)) {
            for (int s = 1; s <= 30; s++) {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("loss", 1.0 / s);
                x.put("reward_mean", 0.5 + s / 100.0);
                x.put("kl", 0.001 * s);
                log.append("rl", s, x);
            }
        }
        List<Path> files = Plots.stageCurves(f, tmp.resolve("plots"));
        assertEquals(List.of(tmp.resolve("plots").resolve("rl.png")), files);
        BufferedImage img = ImageIO.read(files.getFirst().toFile());
        assertEquals(2 * 420, img.getWidth(), "three charts in two columns");
        assertEquals(2 * 260, img.getHeight());
        Map<String, Bootstrap.Interval> bars = new LinkedHashMap<>();
        bars.put("sft", new Bootstrap.Interval(0.6, 0.55, 0.65, 0.95, 10));
        bars.put("sft+rlsr", new Bootstrap.Interval(0.7, 0.66, 0.74, 0.95, 10));
        Path p = Plots.rewardBars(bars, "t", tmp.resolve("plots").resolve("bars.png"));
        assertTrue(ImageIO.read(p.toFile()).getWidth() > 0);
    }
}
