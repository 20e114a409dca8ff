package dev.rlsr.trainer.data;

import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.engine.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
