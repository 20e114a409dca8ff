package dev.rlsr.trainer.encoder;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.io.SafeTensors;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Qwen-EM encoder against sentence-transformers on a tiny random Qwen3 embedding model: the token ids (the
 * instruction format of queries, the appended {@code <|endoftext|>}, truncation) and the pooled, normalised
 * embeddings of queries and documents in mixed-length batches. The fixture is made outside this project by
 * {@code trainer/src/test/python/make_qwen3_embedding_fixture.py} (sentence-transformers, checked there against the
 * model card's transformers recipe); every case folder of {@code RLSR_FIXTURES} whose fixture.json says
 * {@code "kind": "qwen3_embedding"} is tested, and always the bundled case ({@code fixtures/qwen3_embedding_tiny} in
 * the test resources, made by that script with torch 2.13 (CPU), transformers 5.18 and sentence-transformers 6.0.1),
 * so the test never skips.
 */
class QwenEmbeddingFixtureTest {
    /*
     * fp32 on both sides through 2 layers of width 64; HF gives left-padded rows positions shifted by the padding
     * (RoPE attention is invariant to the shift, up to rounding), the engine counts real tokens. Components of the
     * unit vectors are ~0.12 (an fp32 ulp there is 7.5e-9): measured on the bundled case (2026-11-27) max |diff|
     * 1.5e-7 and min cosine 0.99999987, so every component within 1e-6 and every cosine within 1e-6 of 1.
     */
    static final double MAX_ABS = 1e-6;
    static final double MIN_COSINE = 1 - 1e-6;
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path bundled() {
        try {
            return Path.of(QwenEmbeddingFixtureTest.class.getClassLoader().getResource("fixtures").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The Qwen3-Embedding cases of RLSR_FIXTURES (when set) and of the bundled fixtures. */
    static List<Path> cases() {
        List<Path> out = new ArrayList<>();
        String env = System.getenv("RLSR_FIXTURES");
        if (env != null && !env.isBlank()) {
            out.addAll(cases(Path.of(env)));
        }
        out.addAll(cases(bundled()));
        return out;
    }

    static List<Path> cases(Path root) {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(root)) {
            for (Path p : s.sorted().toList()) {
                Path f = p.resolve("fixture.json");
                if (Files.isRegularFile(f) && JSON.readTree(f.toFile()).path("kind").asText().equals("qwen3_embedding")) {
                    out.add(p);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** A plain test (not a factory), so that a missing fixture shows up as one skipped test in the reports. */
    @Test
    void matchesSentenceTransformers() throws IOException {
        List<Path> cases = cases();
        assertFalse(cases.isEmpty(), "no Qwen3-Embedding fixture (fixture.json kind qwen3_embedding) under "
                + bundled() + "; make one with python3 trainer/src/test/python/make_qwen3_embedding_fixture.py DIR");
        for (Path dir : cases) {
            check(dir, true);
            check(dir, false);
        }
    }

    private static void check(Path dir, boolean queries) throws IOException {
        JsonNode fx = JSON.readTree(dir.resolve("fixture.json").toFile());
        List<String> texts = new ArrayList<>();
        fx.path(queries ? "queries" : "documents").forEach(t -> texts.add(t.asText()));
        JsonNode ids = fx.path(queries ? "query_input_ids" : "document_input_ids");
        float[] expected;
        long[] shape;
        try (SafeTensors st = SafeTensors.open(dir.resolve("expected.safetensors"))) {
            String name = queries ? "query_embeddings" : "document_embeddings";
            expected = st.floats(name);
            shape = st.info(name).shape();
        }
        assertEquals(texts.size(), shape[0]);
        var cfg = new QwenEmbeddingEncoder.Config(fx.path("batch_size").asInt(), fx.path("max_seq_length").asInt(),
                queries ? fx.path("task").asText() : null);
        try (QwenEmbeddingEncoder enc = QwenEmbeddingEncoder.load(dir, cfg, CpuBackend.INSTANCE)) {
            int dim = enc.dimension();
            assertEquals(shape[1], dim);
            float[][] got = enc.embed(texts);
            double worst = 0, worstCosine = 1;
            for (int i = 0; i < texts.size(); i++) {
                int[] want = new int[ids.get(i).size()];
                for (int j = 0; j < want.length; j++) {
                    want[j] = ids.get(i).get(j).asInt();
                }
                assertArrayEquals(want, enc.tokenIds(texts.get(i)), dir + ": token ids of text " + i);
                double dot = 0;
                for (int c = 0; c < dim; c++) {
                    float e = expected[i * dim + c];
                    assertEquals(e, got[i][c], MAX_ABS, dir + ": text " + i + " dim " + c);
                    dot += (double) e * got[i][c];
                }
                assertTrue(dot >= MIN_COSINE, "text " + i + ": cosine " + dot);
                for (int c = 0; c < dim; c++) {
                    worst = Math.max(worst, Math.abs((double) expected[i * dim + c] - got[i][c]));
                }
                worstCosine = Math.min(worstCosine, dot);
            }
            System.out.printf("Qwen-EM %s %s: max |diff| %.3g, min cosine %.9f%n", dir.getFileName(),
                    queries ? "queries" : "documents", worst, worstCosine);
        }
    }
}
