package dev.rlsr.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The HF fixture cases (test resources {@code fixtures/<case>/}, or the folder named by {@code RLSR_FIXTURES}; any case
 * names, any shapes),
 * and a deliberately naive safetensors decoder (whole file into a ByteBuffer) that the FFM reader is checked
 * against.
 */
public final class CheckpointFixtures {
    private CheckpointFixtures() {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The folder the data-driven tests iterate over: {@code RLSR_FIXTURES} if set, else the bundled copy. Tests that
     * need one particular case (its name, its shapes) use {@link #bundled(String)} instead, so that pointing
     * {@code RLSR_FIXTURES} at other cases never breaks them.
     */
    public static Path root() {
        String env = System.getenv("RLSR_FIXTURES");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        return bundled();
    }

    /** The bundled copy of the fixtures in test resources (qwen2_tiny, qwen3_tiny, llama_tiny, bert_tiny). */
    public static Path bundled() {
        URL url = CheckpointFixtures.class.getClassLoader().getResource("fixtures");
        if (url == null) {
            throw new IllegalStateException("no fixtures folder in test resources and RLSR_FIXTURES is unset");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One bundled case by name, whatever {@code RLSR_FIXTURES} says. */
    public static Path bundled(String name) {
        Path p = bundled().resolve(name);
        if (!Files.isDirectory(p)) {
            throw new IllegalStateException("bundled fixture case " + name + " is missing from test resources");
        }
        return p;
    }

    /** Every case folder holding a model.safetensors. */
    public static List<Path> modelCases() {
        try (Stream<Path> s = Files.list(root())) {
            return s.filter(p -> Files.isRegularFile(p.resolve("model.safetensors"))).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A sentence-embedding case (fixture.json {@code "kind": "qwen3_embedding"}): a decoder backbone with embedding
     * expectations instead of logits, tested by the trainer's QwenEmbeddingFixtureTest, not by the decoder tests.
     */
    public static boolean isEmbeddingCase(Path dir) {
        Path f = dir.resolve("fixture.json");
        try {
            return Files.isRegularFile(f) && JSON.readTree(f.toFile()).path("kind").asText().equals("qwen3_embedding");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Case folders whose config.json is one of the decoders the engine supports (embedding cases excluded). */
    public static List<Path> decoderCases() {
        return modelCases().stream().filter(p -> !isEmbeddingCase(p)).filter(p -> {
            try {
                String type = JSON.readTree(p.resolve("config.json").toFile()).path("model_type").asText();
                return type.equals("qwen2") || type.equals("qwen3") || type.equals("llama");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).toList();
    }

    /** One tensor as decoded by the naive reader. */
    public record Naive(String dtype, long[] shape, ByteBuffer data) {
        public float[] f32() {
            float[] out = new float[data.remaining() / 4];
            data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
            return out;
        }

        public long[] i64() {
            long[] out = new long[data.remaining() / 8];
            data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
            return out;
        }
    }

    /** Header order preserved; {@code __metadata__} skipped. */
    public static Map<String, Naive> naiveRead(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) b.getLong(0);
        JsonNode header = JSON.readTree(new String(all, 8, n, StandardCharsets.UTF_8));
        Map<String, Naive> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : header.properties()) {
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            JsonNode v = e.getValue();
            long[] shape = new long[v.get("shape").size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = v.get("shape").get(i).asLong();
            }
            int begin = v.get("data_offsets").get(0).asInt();
            int end = v.get("data_offsets").get(1).asInt();
            out.put(e.getKey(), new Naive(v.get("dtype").asText(), shape, ByteBuffer.wrap(all, 8 + n + begin, end - begin).slice()));
        }
        return out;
    }

    public static JsonNode json(Path file) throws IOException {
        return JSON.readTree(file.toFile());
    }
}
