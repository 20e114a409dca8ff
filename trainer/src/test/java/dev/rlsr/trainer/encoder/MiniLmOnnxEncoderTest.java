package dev.rlsr.trainer.encoder;

import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The real all-MiniLM-L6-v2 from the Maven Central jar, on ONNX Runtime CPU. */
class MiniLmOnnxEncoderTest {
    static MiniLmOnnxEncoder encoder;

    @BeforeAll
    static void load() {
        // a small batch size so that the batch-vs-single tests cross batch boundaries
        encoder = MiniLmOnnxEncoder.create(new MiniLmOnnxEncoder.Config(4, MiniLmOnnxEncoder.DEFAULT_MAX_TOKENS, 2));
    }

    @AfterAll
    static void close() {
        encoder.close();
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    static String words(Random rnd, int n) {
        String[] vocab = {"model", "reward", "policy", "gradient", "the", "of", "river", "mountain", "quickly", "blue",
                "compute", "token", "sentence", "embedding", "and", "with", "cat", "green", "dataset", "learning"};
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                sb.append(' ');
            }
            sb.append(vocab[rnd.nextInt(vocab.length)]);
        }
        return sb.toString();
    }

    @Test
    void describesItself() {
        assertEquals("all-MiniLM-L6-v2", encoder.name());
        assertEquals(384, encoder.dimension());
        assertEquals(256, encoder.maxTokens());
        assertEquals(4, encoder.batchSize());
    }

    @Test
    void identicalTextsHaveCosineOne() {
        String t = "The capital of France is Paris.";
        float[][] e = encoder.embed(List.of(t, t, "something else entirely", t));
        assertEquals(1.0, dot(e[0], e[1]), 1e-6);
        assertEquals(1.0, dot(e[0], e[3]), 1e-6);
    }

    @Test
    void paraphraseIsCloserThanUnrelatedText() {
        float[][] e = encoder.embed(List.of(
                "A man is playing a guitar on stage.",
                "Someone performs a song with a guitar in front of an audience.",
                "The stock market fell sharply after the interest rate decision."));
        double para = dot(e[0], e[1]);
        double unrelated = dot(e[0], e[2]);
        assertTrue(para > unrelated + 0.2, "paraphrase " + para + " vs unrelated " + unrelated);
    }

    @Test
    void embeddingsAreFiniteAndUnitLength() {
        Random rnd = new Random(7);
        List<String> texts = new ArrayList<>(List.of("", " ", "Ünïcödé text, café!", "12 plus 7 is 19.", "日本語のテキスト"));
        for (int i = 0; i < 6; i++) {
            texts.add(words(rnd, 1 + rnd.nextInt(300)));
        }
        float[][] e = encoder.embed(texts);
        assertEquals(texts.size(), e.length);
        for (int i = 0; i < e.length; i++) {
            assertEquals(384, e[i].length);
            for (float x : e[i]) {
                assertTrue(Float.isFinite(x), "row " + i + " has a non-finite value");
            }
            assertEquals(1.0, Math.sqrt(dot(e[i], e[i])), 1e-5, "norm of row " + i);
        }
    }

    @Test
    void batchResultEqualsOneByOne() {
        Random rnd = new Random(11);
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 11; i++) { // 11 texts, batches of 4: padded batches of very different lengths
            texts.add(words(rnd, 1 + rnd.nextInt(i % 3 == 0 ? 200 : 20)));
        }
        float[][] batched = encoder.embed(texts);
        for (int i = 0; i < texts.size(); i++) {
            float[] single = encoder.embed(List.of(texts.get(i)))[0];
            assertArrayEquals(single, batched[i], 1e-5f, "row " + i);
        }
    }

    @Test
    void truncatesAt256TokensLikeSentenceTransformers() {
        Random rnd = new Random(3);
        String longText = words(rnd, 400); // at least 402 tokens with [CLS]/[SEP]
        assertEquals(256, encoder.tokenCount(longText));
        String shortText = words(rnd, 100);
        int shortTokens = encoder.tokenCount(shortText);
        assertTrue(shortTokens >= 102 && shortTokens < 200, "100 words gave " + shortTokens + " tokens");
        float[][] e = encoder.embed(List.of(longText, longText + " river mountain cat", shortText, shortText + " river mountain cat"));
        assertArrayEquals(e[0], e[1], 1e-6f, "words past token 256 must not change the embedding");
        assertTrue(dot(e[2], e[3]) < 1 - 1e-4, "words before token 256 must change the embedding");
    }

    @Test
    void matchesLangchain4jPoolingOnShortTexts() {
        // langchain4j's own pipeline (one text at a time, mean over all tokens, L2 norm) is independent code on the
        // same ONNX graph; for texts under its 128-token truncation the two must agree
        List<String> texts = List.of("The cat sat on the mat.", "RLSR rewards responses by sentence similarity.",
                "I don't know.", "Photosynthesis converts light energy into chemical energy.");
        float[][] ours = encoder.embed(texts);
        AllMiniLmL6V2EmbeddingModel theirs = new AllMiniLmL6V2EmbeddingModel();
        for (int i = 0; i < texts.size(); i++) {
            Embedding ref = theirs.embed(texts.get(i)).content();
            assertArrayEquals(ref.vector(), ours[i], 2e-5f, "text " + i);
        }
    }

    @Test
    void emptyInputAndClose() {
        assertEquals(0, encoder.embed(List.of()).length);
        MiniLmOnnxEncoder other = MiniLmOnnxEncoder.create(MiniLmOnnxEncoder.Config.defaults());
        other.close();
        assertDoesNotThrow(other::close);
        assertThrows(IllegalStateException.class, () -> other.embed(List.of("x")));
        List<String> withNull = new ArrayList<>();
        withNull.add("a");
        withNull.add(null);
        NullPointerException npe = assertThrows(NullPointerException.class, () -> encoder.embed(withNull));
        assertTrue(npe.getMessage().contains("text 1"), npe.getMessage());
    }

    @Test
    void configIsValidated() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new MiniLmOnnxEncoder.Config(0, 256, 0));
        assertTrue(e.getMessage().contains("batchSize"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new MiniLmOnnxEncoder.Config(8, 600, 0));
        assertTrue(e.getMessage().contains("512"), e.getMessage());
    }
}
