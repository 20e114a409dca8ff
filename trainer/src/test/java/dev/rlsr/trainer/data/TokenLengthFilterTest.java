package dev.rlsr.trainer.data;

import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.engine.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenLengthFilterTest {

    @Test
    void countsChatTokensWithTheByteLevelTokenizer(@TempDir Path dir) {
        ByteLevelTokenizer.writeByteLevel(dir);
        try (Tokenizer tok = Tokenizer.load(dir)) {
            Example e = Example.of("x", "Hi", "Hello");
            // "<|im_start|>" "user\nHi" "<|im_end|>" "\n" "<|im_start|>" "assistant\n": 3 specials + 7 + 1 + 10 bytes
            // "Hello" "<|im_end|>" "\n": 5 + 1 + 1
            assertEquals(new TokenLengthFilter.Lengths(21, 7, 28),
                    new TokenLengthFilter(tok, 100, 100, 100).lengths(e));
            Example longer = Example.of("y", "Hi", "Hello there");
            TokenLengthFilter f = new TokenLengthFilter(tok, 21, 7, 1000);
            assertEquals(List.of(e), List.of(e, longer).stream().filter(f).toList());
            assertEquals(1, f.kept());
            assertEquals(1, f.dropped());
            assertEquals(List.of(), List.of(e).stream().filter(new TokenLengthFilter(tok, 20, 100, 100)).toList());
            assertEquals(List.of(), List.of(e).stream().filter(new TokenLengthFilter(tok, 100, 100, 27)).toList());
            assertThrows(IllegalArgumentException.class, () -> new TokenLengthFilter(tok, 0, 1, 1));
        }
    }

    /** Counts the texts a tokenizer is asked to encode (and their total length). */
    static final class CountingTokenizer implements Tokenizer {
        final Tokenizer inner;
        long encodedChars;

        CountingTokenizer(Tokenizer inner) {
            this.inner = inner;
        }

        @Override public int vocabSize() { return inner.vocabSize(); }
        @Override public int[] encode(String text, boolean add) { encodedChars += text.length(); return inner.encode(text, add); }
        @Override public List<int[]> encodeBatch(List<String> t, boolean add) { t.forEach(x -> encodedChars += x.length()); return inner.encodeBatch(t, add); }
        @Override public String decode(int[] ids, boolean skip) { return inner.decode(ids, skip); }
        @Override public List<String> decodeBatch(List<int[]> ids, boolean skip) { return inner.decodeBatch(ids, skip); }
        @Override public java.util.OptionalInt tokenId(String token) { return inner.tokenId(token); }
        @Override public String idToToken(int id) { return inner.idToToken(id); }
        @Override public dev.rlsr.engine.tokenizer.SpecialTokens specialTokens() { return inner.specialTokens(); }
        @Override public dev.rlsr.engine.tokenizer.ChatTemplate chatTemplate() { return inner.chatTemplate(); }
        @Override public Path directory() { return inner.directory(); }
        @Override public void close() { inner.close(); }
    }

    /**
     * A multi-megabyte line cannot fit a limit of a few hundred tokens: no token stands for more than a bounded
     * number of bytes, so the filter drops it without running BPE over megabytes (which took about a minute).
     */
    @Test
    void hugeTextsAreDroppedWithoutTokenizingThem(@TempDir Path dir) {
        ByteLevelTokenizer.writeByteLevel(dir);
        try (CountingTokenizer tok = new CountingTokenizer(Tokenizer.load(dir))) {
            String huge = "word ".repeat(2_000_000); // 10 MB
            TokenLengthFilter f = new TokenLengthFilter(tok, 512, 512, Integer.MAX_VALUE);
            assertFalse(f.test(Example.of("a", huge, "short answer")));
            assertFalse(f.test(Example.of("b", "short question", huge)));
            assertEquals(0, tok.encodedChars, "the huge texts were never tokenized");
            assertEquals(2, f.dropped());
            // near the limit the filter still tokenizes and decides exactly: 512 bytes of prompt text alone
            // exceed 512 prompt tokens once the chat markup is added
            assertFalse(f.test(Example.of("c", "x".repeat(512), "y")));
            assertTrue(f.test(Example.of("d", "x".repeat(400), "y")));
            assertTrue(tok.encodedChars > 0);
        }
    }
}
