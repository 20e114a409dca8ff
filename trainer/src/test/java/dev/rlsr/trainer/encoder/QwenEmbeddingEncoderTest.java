package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Properties of the Qwen-EM encoder on the bundled qwen3_tiny HF fixture (test resources {@code fixtures/qwen3_tiny})
 * with the engine's byte-level tokenizer (259 ids, {@code <|endoftext|>} = 256, within the
 * fixture's 448-row embedding). That the pooled hidden state itself is HF's is checked in the engine
 * ({@code DecoderEmbeddingParityTest}: hidden state at the last position times the tied embedding = HF logits).
 */
class QwenEmbeddingEncoderTest {
    static Path dir;
    static QwenEmbeddingEncoder enc;

    static final List<String> TEXTS = List.of("hello world", "a", "The policy samples G responses per prompt.",
            "", "RLSR rewards by cosine similarity of sentence embeddings; longer texts get left padding.");

    @BeforeAll
    static void setUp() throws IOException, URISyntaxException {
        // this particular case (its 448-row embedding holds the byte-level ids): the bundled copy, never the folder
        // of RLSR_FIXTURES, whose cases may have other names and shapes
        Path fixture = Path.of(QwenEmbeddingEncoderTest.class.getClassLoader().getResource("fixtures/qwen3_tiny")
                .toURI());
        dir = Files.createTempDirectory("qwen-em-test");
        Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        ByteLevelTokenizer.writeByteLevel(dir);
        enc = QwenEmbeddingEncoder.load(dir, new QwenEmbeddingEncoder.Config(3, 0, null), CpuBackend.INSTANCE);
    }

    @AfterAll
    static void tearDown() throws IOException {
        enc.close();
        try (var s = Files.walk(dir)) {
            s.sorted((a, b) -> b.compareTo(a)).forEach(p -> p.toFile().delete());
        }
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    @Test
    void unitNormRowsOfTheModelWidth() {
        float[][] e = enc.embed(TEXTS);
        assertEquals(TEXTS.size(), e.length);
        for (float[] row : e) {
            assertEquals(64, row.length);
            assertEquals(1.0, dot(row, row), 1e-5);
        }
        assertEquals(64, enc.dimension());
        assertEquals(256, enc.maxTokens(), "max_position_embeddings of the fixture");
    }

    @Test
    void appendsEndOfTextAndPoolsTheLastToken() {
        String text = "hello world";
        int[] ids = enc.tokenIds(text);
        assertEquals(ByteLevelTokenizer.ENDOFTEXT_ID, ids[ids.length - 1]);
        assertEquals(text.length() + 1, ids.length, "byte-level: one id per ASCII byte, then <|endoftext|>");
        // independently: the ordinary loader, hidden states of the unpadded row, its last position, normalised
        try (DecoderModel m = DecoderModel.load(dir, CpuBackend.INSTANCE)) {
            float[] h = CpuBackend.INSTANCE.download(m.hiddenStates(1, ids, null, null));
            float[] last = Arrays.copyOfRange(h, h.length - 64, h.length);
            double n = Math.sqrt(dot(last, last));
            float[] e = enc.embed(List.of(text))[0];
            for (int c = 0; c < 64; c++) {
                assertEquals(last[c] / n, e[c], 1e-6, "dim " + c);
            }
        }
    }

    @Test
    void leftPaddedBatchEqualsSingleRows() {
        float[][] batched = enc.embed(TEXTS); // batch size 3: rows of different lengths share a left-padded batch
        for (int i = 0; i < TEXTS.size(); i++) {
            float[] alone = enc.embed(List.of(TEXTS.get(i)))[0];
            for (int c = 0; c < alone.length; c++) {
                assertEquals(alone[c], batched[i][c], 1e-5, "text " + i + " dim " + c);
            }
        }
    }

    @Test
    void instructionPrefixChangesTheEmbedding() {
        String task = "Given a web search query, retrieve relevant passages that answer the query";
        try (QwenEmbeddingEncoder withTask = new QwenEmbeddingEncoder("q", DecoderModel.loadBackbone(dir,
                CpuBackend.INSTANCE), dev.rlsr.engine.tokenizer.HfTokenizer.load(dir), QwenEmbeddingEncoder.Config.defaults()
                .withInstruction(task), true)) {
            String q = "what is RLSR?";
            float[] plain = enc.embed(List.of(q))[0];
            float[] instructed = withTask.embed(List.of(q))[0];
            assertTrue(dot(plain, instructed) < 0.999, "the instruction must change the embedding: cos "
                    + dot(plain, instructed));
            float[] manual = enc.embed(List.of("Instruct: " + task + "\nQuery:" + q))[0];
            assertArrayEquals(manual, instructed, 1e-5f, "the prefix is 'Instruct: {task}\\nQuery:{text}'");
        }
    }

    @Test
    void truncatesKeepingEndOfText() {
        try (QwenEmbeddingEncoder shortEnc = QwenEmbeddingEncoder.load(dir, new QwenEmbeddingEncoder.Config(2, 8, null),
                CpuBackend.INSTANCE)) {
            int[] ids = shortEnc.tokenIds("a rather long sentence");
            assertEquals(8, ids.length);
            assertEquals(ByteLevelTokenizer.ENDOFTEXT_ID, ids[7]);
            assertArrayEquals(shortEnc.embed(List.of("a rather long sentence"))[0],
                    shortEnc.embed(List.of("a rathe"))[0], 1e-6f, "only the first 7 tokens count");
            shortEnc.close();
            assertThrows(IllegalStateException.class, () -> shortEnc.embed(List.of("x")));
        }
    }
}
