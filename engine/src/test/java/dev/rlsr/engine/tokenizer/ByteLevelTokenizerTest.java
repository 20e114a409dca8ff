package dev.rlsr.engine.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ByteLevelTokenizerTest {

    static final long SEED = 20251126L;

    /** Random text over ASCII, Latin-1, CJK, and astral code points (emoji), never lone surrogates. */
    static String randomText(Random r, int codePoints) {
        StringBuilder b = new StringBuilder();
        int[][] ranges = {{0x00, 0x7F}, {0x80, 0x7FF}, {0x4E00, 0x9FFF}, {0x1F300, 0x1FAFF}, {0x10000, 0x10FFFF}};
        for (int i = 0; i < codePoints; i++) {
            int[] range = ranges[r.nextInt(ranges.length)];
            int cp = range[0] + r.nextInt(range[1] - range[0] + 1);
            b.appendCodePoint(cp);
        }
        return b.toString();
    }

    @Test
    void roundTripsArbitraryUtf8ThroughTheWrittenFiles(@TempDir Path dir) {
        ByteLevelTokenizer.writeByteLevel(dir);
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            assertEquals(ByteLevelTokenizer.VOCAB_SIZE, tok.vocabSize());
            Random r = new Random(SEED);
            List<String> texts = new ArrayList<>(List.of("", "Hello, world!", "  two  spaces\n\ttab",
                    "Emoji 😀👍🏽 and 🇫🇷", "日本語のテキスト", "naïve café", "\u0000\u0001\u007f"));
            for (int i = 0; i < 200; i++) {
                texts.add(randomText(r, 1 + r.nextInt(40)));
            }
            for (String text : texts) {
                int[] ids = tok.encode(text);
                byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
                // one token per byte, and the token id is the byte value
                int[] bytes = new int[utf8.length];
                for (int i = 0; i < utf8.length; i++) {
                    bytes[i] = utf8[i] & 0xFF;
                }
                assertArrayEquals(bytes, ids, () -> "seed " + SEED + ", text " + text);
                assertEquals(text, tok.decode(ids), () -> "seed " + SEED);
            }
            List<int[]> batch = tok.encodeBatch(texts, true);
            assertEquals(texts, tok.decodeBatch(batch, false));
        }
    }

    @Test
    void specialTokensAndChatFormat(@TempDir Path dir) {
        ByteLevelTokenizer.writeByteLevel(dir);
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            SpecialTokens s = tok.specialTokens();
            assertEquals(ByteLevelTokenizer.IM_END_ID, s.eosId());
            assertEquals(ByteLevelTokenizer.ENDOFTEXT_ID, s.padId());
            assertFalse(s.hasBos());
            assertEquals(ChatTemplate.Format.CHATML, tok.chatTemplate().format());
            String chat = tok.chatTemplate().render(List.of(Message.user("2+2?"), Message.assistant("Four.")), false);
            assertEquals("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\nFour.<|im_end|>\n", chat);
            int[] ids = tok.encode(chat, false);
            assertEquals(ByteLevelTokenizer.IM_START_ID, ids[0]);
            assertEquals(ByteLevelTokenizer.IM_END_ID, ids[ids.length - 2]);
            assertEquals('\n', ids[ids.length - 1]);
            // 2 x (<|im_start|> + <|im_end|>) specials, every other byte one token
            String plain = chat.replace("<|im_start|>", "").replace("<|im_end|>", "");
            assertEquals(plain.getBytes(StandardCharsets.UTF_8).length + 4, ids.length);
            assertEquals(chat, tok.decode(ids));
            assertEquals(plain, tok.decode(ids, true));
            assertTrue(tok.isSpecial(ByteLevelTokenizer.IM_START_ID));
        }
    }

    @Test
    void saveToCopiesTheFilesAndGenerationConfigAddsStopIds(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("src");
        ByteLevelTokenizer.writeByteLevel(src);
        Files.writeString(src.resolve("generation_config.json"), "{\"eos_token_id\": [258, 256]}");
        Path dst = dir.resolve("checkpoint-10");
        try (Tokenizer tok = Tokenizer.load(src)) {
            assertArrayEquals(new int[]{258, 256}, tok.specialTokens().stopIds());
            tok.saveTo(dst);
        }
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "generation_config.json")) {
            assertArrayEquals(Files.readAllBytes(src.resolve(f)), Files.readAllBytes(dst.resolve(f)), f);
        }
        try (Tokenizer a = Tokenizer.load(src); Tokenizer b = Tokenizer.load(dst.resolve("tokenizer.json"))) {
            assertArrayEquals(a.encode("copy ✓"), b.encode("copy ✓"));
            assertEquals(a.specialTokens(), b.specialTokens());
        }
    }

    @Test
    void tokenizerConfigTokensMayBeAddedTokenObjects(@TempDir Path dir) throws Exception {
        ByteLevelTokenizer.writeByteLevel(dir);
        Path cfg = dir.resolve("tokenizer_config.json");
        String text = Files.readString(cfg).replace("\"eos_token\" : \"<|im_end|>\"",
                "\"eos_token\" : {\"__type\": \"AddedToken\", \"content\": \"<|endoftext|>\", \"special\": true}");
        assertTrue(text.contains("AddedToken"), "the test did not rewrite eos_token");
        Files.writeString(cfg, text);
        try (Tokenizer tok = Tokenizer.load(dir)) {
            assertEquals("<|endoftext|>", tok.specialTokens().eosToken());
            assertEquals(ByteLevelTokenizer.ENDOFTEXT_ID, tok.specialTokens().eosId());
        }
    }

    @Test
    void errorsNameTheFile(@TempDir Path dir) throws Exception {
        var missing = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(missing.getMessage().contains("no tokenizer.json in " + dir), missing.getMessage());
        ByteLevelTokenizer.writeByteLevel(dir);
        Path cfg = dir.resolve("tokenizer_config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"<|im_end|>\",", "\"<|nope|>\","));
        var bad = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(bad.getMessage().contains("tokenizer_config.json: eos_token '<|nope|>'"), bad.getMessage());
    }

    @Test
    void closeIsIdempotentAndUseAfterCloseFails(@TempDir Path dir) {
        ByteLevelTokenizer.writeByteLevel(dir);
        Tokenizer tok = Tokenizer.load(dir);
        tok.close();
        tok.close();
        assertThrows(IllegalStateException.class, () -> tok.encode("x"));
    }
}
