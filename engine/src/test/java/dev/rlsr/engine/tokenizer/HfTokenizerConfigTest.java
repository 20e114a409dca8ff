package dev.rlsr.engine.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** tokenizer_config.json values that are not what they claim to be are refused, naming the file. */
class HfTokenizerConfigTest {

    @TempDir
    Path tmp;

    private Path tokenizerWith(String key, Object value) throws Exception {
        ByteLevelTokenizer.writeByteLevel(tmp);
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(tmp.resolve("tokenizer_config.json").toFile());
        cfg.set(key, json.valueToTree(value));
        json.writeValue(tmp.resolve("tokenizer_config.json").toFile(), cfg);
        return tmp;
    }

    @Test
    void chatTemplateThatIsNotTextIsRefused() throws Exception {
        Path dir = tokenizerWith("chat_template", 12345);
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir).close());
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("12345"),
                e.getMessage());
    }

    @Test
    void unrecognisedTemplateNamesItsFile() throws Exception {
        Path dir = tokenizerWith("chat_template", "{% for m in messages %}<|im_start|>{{ m.role }}\\n"
                + "Answer politely: {{ m.content }}<|im_end|>\\n{% endfor %}");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir).close());
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer_config.json").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("Answer politely"), e.getMessage());
    }
}
