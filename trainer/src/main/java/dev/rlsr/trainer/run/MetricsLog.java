package dev.rlsr.trainer.run;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code metrics.jsonl}: one JSON object per optimizer step, {@code {"stage": "rl", "step": 12, "loss": ..., ...}},
 * appended and flushed line by line so that a killed run keeps every finished step. Non-finite numbers are written
 * as null (JSON has no NaN).
 *
 * <p>Resuming from a checkpoint at step k of a stage drops every line written after that step's line
 * ({@link #truncateAfter}): those steps are recomputed, so the file ends up as an uninterrupted run's.
 */
public final class MetricsLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private BufferedWriter out;

    public MetricsLog(Path file) {
        this.file = file;
    }

    public Path file() {
        return file;
    }

    public synchronized void append(String stage, long step, Map<String, ?> metrics) {
        ObjectNode n = JSON.createObjectNode();
        n.put("stage", stage);
        n.put("step", step);
        for (Map.Entry<String, ?> e : metrics.entrySet()) {
            if (e.getKey().equals("stage") || e.getKey().equals("step")) {
                continue;
            }
            Object v = e.getValue();
            switch (v) {
                case null -> n.putNull(e.getKey());
                case Double d -> putNumber(n, e.getKey(), d);
                case Float f -> putNumber(n, e.getKey(), f.doubleValue());
                case Integer i -> n.put(e.getKey(), i);
                case Long l -> n.put(e.getKey(), l);
                case Number num -> putNumber(n, e.getKey(), num.doubleValue());
                case Boolean b -> n.put(e.getKey(), b);
                default -> n.set(e.getKey(), JSON.valueToTree(v));
            }
        }
        try {
            if (out == null) {
                Files.createDirectories(file.toAbsolutePath().getParent());
                out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            }
            out.write(JSON.writeValueAsString(n));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + file, e);
        }
    }

    private static void putNumber(ObjectNode n, String k, double d) {
        if (Double.isFinite(d)) {
            n.put(k, d);
        } else {
            n.putNull(k);
        }
    }

    /**
     * Keeps the lines up to and including the last line of {@code stage} with a step {@code <= step}; with no such
     * line, keeps the lines before the first line of {@code stage} (a stage that restarts from its beginning). A trailing partial line
     * (a write the kill interrupted) is dropped in either case. The file is replaced atomically.
     */
    public synchronized void truncateAfter(String stage, long step) {
        closeWriter();
        if (!Files.exists(file)) {
            return;
        }
        List<String> lines = readLines(file);
        int keepUpTo = -1;
        int firstOfStage = -1;
        for (int i = 0; i < lines.size(); i++) {
            JsonNode n = parse(lines.get(i));
            if (n == null) {
                continue;
            }
            if (stage.equals(n.path("stage").asText())) {
                if (firstOfStage < 0) {
                    firstOfStage = i;
                }
                if (n.path("step").asLong(Long.MAX_VALUE) <= step) {
                    keepUpTo = i;
                }
            }
        }
        int end = keepUpTo >= 0 ? keepUpTo + 1 : (firstOfStage >= 0 ? firstOfStage : lines.size());
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < end; i++) {
            if (parse(lines.get(i)) != null) {
                sb.append(lines.get(i)).append('\n');
            }
        }
        RunDir.writeAtomically(file, sb.toString());
    }

    /** Drops every line of {@code stage} (a stage restarted from scratch). */
    public synchronized void dropStage(String stage) {
        truncateAfter(stage, -1);
    }

    /** Every complete line as JSON, in file order. */
    public static List<JsonNode> read(Path file) {
        List<JsonNode> out = new ArrayList<>();
        if (!Files.exists(file)) {
            return out;
        }
        for (String l : readLines(file)) {
            JsonNode n = parse(l);
            if (n != null) {
                out.add(n);
            }
        }
        return out;
    }

    private static List<String> readLines(Path file) {
        try {
            return Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static JsonNode parse(String line) {
        if (line.isBlank()) {
            return null;
        }
        try {
            JsonNode n = JSON.readTree(line);
            return n != null && n.isObject() ? n : null;
        } catch (JsonProcessingException e) {
            return null; // a line cut by a kill
        }
    }

    private void closeWriter() {
        if (out != null) {
            try {
                out.close();
            } catch (IOException ignored) {
                // closing a flushed appender
            }
            out = null;
        }
    }

    @Override
    public synchronized void close() {
        closeWriter();
    }
}
