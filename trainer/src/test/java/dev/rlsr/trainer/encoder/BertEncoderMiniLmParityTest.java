package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.io.SafeTensorsWriter;
import dev.rlsr.engine.model.BertModel;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine BERT with the weights read out of the bundled all-MiniLM-L6-v2 ONNX graph against ONNX Runtime
 * running that same graph ({@link MiniLmOnnxEncoder}): nothing here is computed twice by the same code, so
 * agreement checks the ONNX weight mapping (names, transposes, head count), the engine's BERT forward and the
 * truncation.
 */
class BertEncoderMiniLmParityTest {
    /*
     * fp32 on both sides, the same weights, different summation orders (ONNX Runtime's MLAS kernels against the
     * engine's GEMM) through 6 layers: measured min cosine 0.999999893 and max |diff| 2.2e-7 per component of the unit
     * vectors (components are ~0.05). Rewards of one group differ by ~1e-3, so the bounds must sit far below that:
     * cosine within 1e-6 of 1, every component within 1e-6.
     */
    static final double MIN_COSINE = 1 - 1e-6;
    static final double MAX_ABS = 1e-6;

    static BertEncoder engine;
    static MiniLmOnnxEncoder onnx;

    @BeforeAll
    static void load() {
        engine = BertEncoder.bundledMiniLm(new BertEncoder.Config(8, 0), dev.rlsr.engine.cpu.CpuBackend.INSTANCE);
        onnx = MiniLmOnnxEncoder.create(new MiniLmOnnxEncoder.Config(8, MiniLmOnnxEncoder.DEFAULT_MAX_TOKENS, 2));
    }

    @AfterAll
    static void close() {
        engine.close();
        onnx.close();
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
            sb.append(i > 0 ? " " : "").append(vocab[rnd.nextInt(vocab.length)]);
        }
        return sb.toString();
    }

    /** 50 varied inputs: short, long (past the 256-piece truncation), punctuation, digits, accents, CJK, code, empty. */
    static List<String> sentences() {
        List<String> s = new ArrayList<>(List.of(
                "The cat sat on the mat.",
                "A man is playing a guitar on stage.",
                "Reinforcement learning with supervised reward uses sentence embeddings.",
                "What is the capital of France?",
                "Paris is the capital and most populous city of France.",
                "I don't think that's a good idea, honestly...",
                "The quick brown fox jumps over the lazy dog!",
                "Stock prices fell sharply on Tuesday after the announcement.",
                "She sells sea shells by the sea shore.",
                "def add(a, b):\n    return a + b",
                "SELECT name, age FROM users WHERE age > 30 ORDER BY name;",
                "E = mc^2 relates energy and mass.",
                "In 1969, Apollo 11 landed on the Moon; 600 million people watched.",
                "Café, naïve, résumé and jalapeño carry accents.",
                "東京は日本の首都です。",
                "Ünïcödé ßtrèss tëst with émojis 🙂🚀",
                "",
                "   ",
                "ok",
                "Yes.",
                "No!!!",
                "1 2 3 4 5 6 7 8 9 10",
                "https://example.com/path?query=1&lang=en",
                "user@example.org wrote: please reply ASAP.",
                "The mitochondria is the powerhouse of the cell.",
                "Photosynthesis converts light energy into chemical energy.",
                "Translate to German: Good morning, how are you?",
                "Write a haiku about autumn leaves falling softly.",
                "The committee will reconvene after the holiday recess.",
                "GPUs accelerate matrix multiplication dramatically.",
                "To be, or not to be, that is the question.",
                "Heavy rain is expected throughout the weekend in the north.",
                "Please summarize the following article in three sentences.",
                "The recipe calls for two cups of flour and one egg.",
                "Quantum entanglement links the states of two particles.",
                "He scored a hat-trick in the final ten minutes.",
                "UPPERCASE TEXT SHOULD BE LOWERCASED BY THE TOKENIZER",
                "tabs\tand\nnewlines\r\nmixed together",
                "[CLS] [SEP] [PAD] [MASK] literal special tokens",
                "A very very very very very very very very very very repetitive sentence."));
        Random rnd = new Random(7);
        for (int i = s.size(); i < 50; i++) {
            // 10 random word salads from 5 to ~400 words; the longest go past the 256 word-piece truncation
            s.add(words(rnd, 5 + rnd.nextInt(400)));
        }
        return s;
    }

    @Test
    void matchesOnnxRuntimeOnFiftySentences() {
        List<String> texts = sentences();
        assertEquals(50, texts.size());
        float[][] a = engine.embed(texts);
        float[][] b = onnx.embed(texts);
        double worstCos = 1, worstAbs = 0;
        int truncated = 0;
        for (int i = 0; i < texts.size(); i++) {
            assertEquals(onnx.tokenCount(texts.get(i)), engine.tokenCount(texts.get(i)), "token count of text " + i);
            if (engine.tokenCount(texts.get(i)) == 256) {
                truncated++;
            }
            double cos = dot(a[i], b[i]);
            worstCos = Math.min(worstCos, cos);
            double abs = 0;
            for (int c = 0; c < a[i].length; c++) {
                abs = Math.max(abs, Math.abs(a[i][c] - b[i][c]));
            }
            worstAbs = Math.max(worstAbs, abs);
            assertTrue(cos >= MIN_COSINE, "text " + i + " '" + texts.get(i) + "': cosine(engine, ONNX Runtime) = "
                    + cos);
            assertTrue(abs <= MAX_ABS, "text " + i + " '" + texts.get(i) + "': max |engine - ONNX Runtime| = " + abs);
            assertEquals(1.0, dot(a[i], a[i]), 1e-5, "unit norm, text " + i);
        }
        assertTrue(truncated >= 2, "the set must exercise truncation, " + truncated + " texts reached 256 pieces");
        System.out.printf("engine BERT vs ONNX Runtime, 50 texts (%d truncated): min cosine %.9f, max |diff| %.3g%n",
                truncated, worstCos, worstAbs);
    }

    @Test
    void batchingDoesNotChangeTheResult() {
        List<String> texts = sentences().subList(0, 20);
        float[][] batched = engine.embed(texts);
        for (int i = 0; i < texts.size(); i++) {
            float[] alone = engine.embed(List.of(texts.get(i)))[0];
            for (int c = 0; c < alone.length; c++) {
                assertEquals(alone[c], batched[i][c], 1e-5, "text " + i + " dim " + c);
            }
        }
    }

    @Test
    void describesItselfAndCloses() {
        assertEquals("all-MiniLM-L6-v2", engine.name());
        assertEquals(384, engine.dimension());
        assertEquals(256, engine.maxTokens());
        BertEncoder e = BertEncoder.bundledMiniLm(new BertEncoder.Config(2, 16), dev.rlsr.engine.cpu.CpuBackend.INSTANCE);
        assertEquals(16, e.tokenCount(words(new Random(1), 100)));
        e.close();
        e.close();
        assertThrows(IllegalStateException.class, () -> e.embed(List.of("x")));
    }

    /**
     * A sentence-transformers directory written from the bundled weights (safetensors with the 'bert.' prefix,
     * config.json, tokenizer.json, modules.json with Normalize, 1_Pooling, sentence_bert_config.json) loads through
     * {@link BertEncoder#load} and embeds like ONNX Runtime.
     */
    @Test
    void loadsASentenceTransformersDirectory(@TempDir Path dir) throws IOException {
        BertModel m = engine.model();
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (Map.Entry<String, Tensor> e : m.parameters().entrySet()) {
            w.putF32("bert." + e.getKey(), e.getValue().shape(), m.backend().download(e.getValue()));
        }
        w.write(dir.resolve("model.safetensors"));
        Files.writeString(dir.resolve("config.json"), """
                {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 30522, "hidden_size": 384,
                 "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
                 "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
                """);
        try (InputStream in = getClass().getClassLoader().getResourceAsStream(MiniLmOnnxEncoder.TOKENIZER_RESOURCE)) {
            Files.write(dir.resolve("tokenizer.json"), in.readAllBytes());
        }
        Files.writeString(dir.resolve("modules.json"), """
                [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                 {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
                """);
        Files.createDirectories(dir.resolve("1_Pooling"));
        Files.writeString(dir.resolve("1_Pooling/config.json"), """
                {"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true,
                 "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}
                """);
        Files.writeString(dir.resolve("sentence_bert_config.json"), """
                {"max_seq_length": 256, "do_lower_case": false}
                """);
        List<String> texts = sentences().subList(40, 50);
        try (BertEncoder fromDir = BertEncoder.load(dir)) {
            assertEquals(256, fromDir.maxTokens());
            float[][] a = fromDir.embed(texts);
            float[][] b = onnx.embed(texts);
            for (int i = 0; i < texts.size(); i++) {
                double cos = dot(a[i], b[i]);
                assertTrue(cos >= MIN_COSINE, "text " + i + ": cosine " + cos);
                for (int c = 0; c < a[i].length; c++) {
                    assertEquals(b[i][c], a[i][c], MAX_ABS, "text " + i + " dim " + c);
                }
            }
        }
    }
}
