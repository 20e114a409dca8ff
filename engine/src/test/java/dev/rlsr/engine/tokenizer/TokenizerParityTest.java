package dev.rlsr.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parity with HF tokenizers and transformers' apply_chat_template on the fixture cases (Qwen3 tokenizer). The cases
 * file is {@code RLSR_TOKENIZER_CASES} if set, else the copy in test resources; the tokenizer directory is
 * {@code RLSR_TOKENIZER_DIR} if set, else {@code tokenizer/qwen3} in test resources.
 */
class TokenizerParityTest {

    private static HfTokenizer tok;
    private static JsonNode fixture;
    // the bundled Qwen3 tokenizer and its cases, for the tests about that tokenizer in particular (its special
    // tokens, one case looked up by its text): RLSR_TOKENIZER_CASES / _DIR may point at another tokenizer
    private static HfTokenizer bundledTok;
    private static JsonNode bundledFixture;

    static Path resource(String name) {
        try {
            return Path.of(TokenizerParityTest.class.getResource("/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @BeforeAll
    static void load() throws Exception {
        String casesEnv = System.getenv("RLSR_TOKENIZER_CASES");
        String dirEnv = System.getenv("RLSR_TOKENIZER_DIR");
        Path cases = casesEnv != null ? Path.of(casesEnv) : resource("tokenizer/tokenizer_cases.json");
        Path dir = dirEnv != null ? Path.of(dirEnv) : resource("tokenizer/qwen3");
        fixture = new ObjectMapper().readTree(Files.readString(cases));
        tok = HfTokenizer.load(dir);
        bundledFixture = new ObjectMapper().readTree(Files.readString(resource("tokenizer/tokenizer_cases.json")));
        bundledTok = HfTokenizer.load(resource("tokenizer/qwen3"));
    }

    @AfterAll
    static void close() {
        tok.close();
        tok.close(); // idempotent
        bundledTok.close();
    }

    static int[] ints(JsonNode arr) {
        int[] out = new int[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).asInt();
        }
        return out;
    }

    static List<Message> messages(JsonNode arr) {
        List<Message> out = new ArrayList<>();
        arr.forEach(m -> out.add(new Message(m.get("role").asText(), m.get("content").asText())));
        return out;
    }

    static String show(String s) {
        return s.length() > 40 ? s.substring(0, 40).replace("\n", "\\n") + "..." : s.replace("\n", "\\n");
    }

    @TestFactory
    Stream<DynamicTest> encodeAndDecodeEveryCase() {
        assertTrue(fixture.get("cases").size() > 0, "no cases in the fixture");
        List<DynamicTest> tests = new ArrayList<>();
        int i = 0;
        for (JsonNode c : fixture.get("cases")) {
            String text = c.get("text").asText();
            tests.add(DynamicTest.dynamicTest("case " + i++ + ": " + show(text), () -> {
                int[] expected = ints(c.get("ids"));
                int[] ids = tok.encode(text);
                assertArrayEquals(expected, ids, () -> "ids of '" + text + "': expected " + Arrays.toString(expected)
                        + " got " + Arrays.toString(ids));
                assertEquals(c.get("decoded").asText(), tok.decode(expected));
            }));
        }
        return tests.stream();
    }

    @Test
    void batchesGiveTheSameAsSingleCalls() {
        List<String> texts = new ArrayList<>();
        List<int[]> expected = new ArrayList<>();
        for (JsonNode c : fixture.get("cases")) {
            texts.add(c.get("text").asText());
            expected.add(ints(c.get("ids")));
        }
        List<int[]> got = tok.encodeBatch(texts, true);
        assertEquals(texts.size(), got.size());
        for (int i = 0; i < texts.size(); i++) {
            assertArrayEquals(expected.get(i), got.get(i), "batch row " + i + ": " + show(texts.get(i)));
        }
        List<String> decoded = tok.decodeBatch(expected, false);
        int i = 0;
        for (JsonNode c : fixture.get("cases")) {
            assertEquals(c.get("decoded").asText(), decoded.get(i++));
        }
    }

    @TestFactory
    Stream<DynamicTest> chatTemplateRendersLikeTransformers() {
        assertTrue(fixture.get("chat").size() > 0, "no chat cases in the fixture");
        List<DynamicTest> tests = new ArrayList<>();
        int i = 0;
        for (JsonNode c : fixture.get("chat")) {
            JsonNode think = c.get("enable_thinking");
            Boolean enableThinking = think == null || think.isNull() ? null : think.asBoolean();
            tests.add(DynamicTest.dynamicTest("chat " + i++ + " enable_thinking=" + enableThinking, () -> {
                List<Message> msgs = messages(c.get("messages"));
                String text = tok.chatTemplate().render(msgs, true, enableThinking);
                assertEquals(c.get("text").asText(), text);
                assertArrayEquals(ints(c.get("ids")), tok.encode(text, false));
                assertArrayEquals(ints(c.get("ids")), tok.encodeChat(msgs, true, enableThinking));
                if (enableThinking == null) {
                    assertArrayEquals(ints(c.get("ids")), tok.encodeChat(msgs, true));
                }
            }));
        }
        return tests.stream();
    }

    /** The ids of a case text that is a single special token, as HF tokenizers gave them. */
    static int idOfSingleTokenCase(String text) {
        for (JsonNode c : bundledFixture.get("cases")) {
            if (c.get("text").asText().equals(text) && c.get("ids").size() == 1) {
                return c.get("ids").get(0).asInt();
            }
        }
        throw new AssertionError("the fixture has no single-token case for " + text);
    }

    @Test
    void specialTokensComeFromTokenizerConfig() {
        SpecialTokens s = bundledTok.specialTokens();
        assertEquals(ChatTemplate.Format.QWEN3, bundledTok.chatTemplate().format());
        // tokenizer_config.json: eos <|im_end|>, pad <|endoftext|>, no bos
        assertEquals("<|im_end|>", s.eosToken());
        assertEquals(bundledTok.encode("<|im_end|>", false)[0], s.eosId());
        assertEquals("<|endoftext|>", s.padToken());
        assertEquals(idOfSingleTokenCase("<|endoftext|>"), s.padId());
        assertFalse(s.hasBos());
        assertArrayEquals(new int[]{s.eosId()}, s.stopIds());
        assertTrue(bundledTok.isSpecial(s.eosId()));
        assertEquals("<|endoftext|>", bundledTok.idToToken(s.padId()));
    }

    /** Every id of every case (from RLSR_TOKENIZER_CASES, or the bundled file) is a token of the tokenizer. */
    @Test
    void everyCaseIdIsAToken() {
        int maxId = 0;
        for (JsonNode group : List.of(fixture.get("cases"), fixture.get("chat"))) {
            for (JsonNode c : group) {
                for (int id : ints(c.get("ids"))) {
                    maxId = Math.max(maxId, id);
                    assertTrue(tok.idToToken(id) != null, "no token text for id " + id);
                }
            }
        }
        assertTrue(tok.vocabSize() > maxId);
    }

    @Test
    void skipSpecialTokensDropsThemOnDecode() {
        for (JsonNode c : bundledFixture.get("cases")) {
            if (c.get("text").asText().equals("<|im_start|>user\nHi<|im_end|>")) {
                assertEquals("user\nHi", bundledTok.decode(ints(c.get("ids")), true));
                return;
            }
        }
        throw new AssertionError("fixture case with <|im_start|> not found");
    }

    @Test
    void idsOutsideTheVocabularyAreRejected() {
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> tok.decode(new int[]{1, tok.vocabSize()}));
        assertTrue(e.getMessage().contains("outside the vocabulary"), e.getMessage());
    }
}
