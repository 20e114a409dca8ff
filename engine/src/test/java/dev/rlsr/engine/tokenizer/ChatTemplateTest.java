package dev.rlsr.engine.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Recognition of chat templates and the formats the Qwen3 fixture does not cover. Expected strings are the
 * documented outputs of the respective HF templates (written out by hand from the Jinja source), not output of this
 * code.
 */
class ChatTemplateTest {

    // the part of Qwen2.5's template that matters without tools
    static final String QWEN25 = """
            {%- if tools %}
                {{- '<|im_start|>system\\n' }}
                {%- if messages[0]['role'] == 'system' %}
                    {{- messages[0]['content'] }}
                {%- else %}
                    {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
                {%- endif %}
            {%- else %}
                {%- if messages[0]['role'] == 'system' %}
                    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
                {%- else %}
                    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
                {%- endif %}
            {%- endif %}
            {%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}
            {%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
            """;

    static final String LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
            + "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
            + "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

    static final String LLAMA31_HEAD = "{{- bos_token }}\n{%- if not date_string is defined %}{%- set date_string = "
            + "\"26 Jul 2024\" %}{%- endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
            + "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}"
            + "{{- system_message }}{{- \"<|eot_id|>\" }} ... '<|start_header_id|>' + message['role'] + "
            + "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>'";

    static final List<Message> ONE = List.of(Message.user("Hi"));

    /** The chat_template of the bundled Qwen3 tokenizer_config.json (as published with the Qwen3 models). */
    static String qwen3Template() {
        try (var in = ChatTemplateTest.class.getClassLoader().getResourceAsStream("tokenizer/qwen3/tokenizer_config.json")) {
            return new com.fasterxml.jackson.databind.ObjectMapper().readTree(in).get("chat_template").asText();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void chatMlWithoutDefaultSystem() {
        ChatTemplate t = ChatTemplate.detect(ChatTemplate.CHATML_JINJA, null, "<|im_end|>");
        assertEquals(ChatTemplate.Format.CHATML, t.format());
        assertNull(t.defaultSystem());
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", t.render(ONE, true));
        assertEquals("<|im_start|>user\nHi<|im_end|>\n", t.render(ONE, false));
    }

    @Test
    void qwen25DefaultSystemPromptIsRecognised() {
        ChatTemplate t = ChatTemplate.detect(QWEN25, null, "<|im_end|>");
        assertEquals(ChatTemplate.Format.CHATML, t.format());
        assertEquals("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", t.defaultSystem());
        assertEquals("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", t.render(ONE, true));
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
                t.render(List.of(Message.system("Be brief."), Message.user("Hi")), false));
    }

    @Test
    void qwen3KeepsThinkingOnlyAfterTheLastQuery() {
        ChatTemplate t = ChatTemplate.detect(qwen3Template(), null, "<|im_end|>");
        assertEquals(ChatTemplate.Format.QWEN3, t.format());
        List<Message> chat = List.of(Message.user("Q1"), Message.assistant("<think>\nr1\n</think>\n\nA1"),
                Message.user("Q2"), Message.assistant("<think>\nr2\n</think>\n\nA2"));
        assertEquals("<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                + "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\nA2<|im_end|>\n",
                t.render(chat, false));
        // an answer without reasoning gets the empty thinking block when it is the last turn
        assertEquals("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n",
                t.render(List.of(Message.user("Q"), Message.assistant("A")), false));
    }

    @Test
    void llama3() {
        ChatTemplate t = ChatTemplate.detect(LLAMA3, "<|begin_of_text|>", "<|eot_id|>");
        assertEquals(ChatTemplate.Format.LLAMA3, t.format());
        assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(List.of(Message.user(" Hi\n")), true));
    }

    @Test
    void llama31AlwaysHasTheSystemBlock() {
        ChatTemplate t = ChatTemplate.detect(LLAMA31_HEAD, "<|begin_of_text|>", "<|eot_id|>");
        assertEquals(ChatTemplate.Format.LLAMA31, t.format());
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                + "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n",
                t.render(List.of(Message.system("Be brief."), Message.user("Hi")), true));
        assertTrue(t.render(ONE, true).contains("Today Date: 26 Jul 2024\n\n<|eot_id|>"));
    }

    @Test
    void plainForBaseModels() {
        ChatTemplate t = ChatTemplate.detect(null, null, "<|endoftext|>");
        assertEquals(ChatTemplate.Format.PLAIN, t.format());
        assertEquals("Q\n\n", t.render(ONE.getFirst().content().equals("Hi") ? List.of(Message.user("Q")) : ONE, true));
        assertEquals("Q\n\nA<|endoftext|>", t.render(List.of(Message.user("Q"), Message.assistant("A")), false));
    }

    @Test
    void unknownTemplateIsAnErrorNamingTheSupportedFormats() {
        var e = assertThrows(TokenizerException.class,
                () -> ChatTemplate.detect("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", "<s>", "</s>"));
        assertTrue(e.getMessage().contains("supported: ChatML"), e.getMessage());
        assertTrue(e.getMessage().contains("[INST]"), e.getMessage());
    }

    // Qwen2-Instruct's template (default system prompt inside the loop)
    static final String QWEN2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
            + "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
            + "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    @Test
    void publishedChatMlTemplatesAreStillRecognised() {
        assertEquals(ChatTemplate.Format.QWEN3, ChatTemplate.detect(qwen3Template(), null, "<|im_end|>").format());
        ChatTemplate q2 = ChatTemplate.detect(QWEN2, null, "<|im_end|>");
        assertEquals(ChatTemplate.Format.CHATML, q2.format());
        assertEquals("You are a helpful assistant.", q2.defaultSystem());
        assertEquals(ChatTemplate.Format.CHATML, ChatTemplate.detect(QWEN25, null, "<|im_end|>").format());
        // the same template written with raw text between the tags instead of string literals
        String raw = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        assertEquals(ChatTemplate.Format.CHATML, ChatTemplate.detect(raw, null, "<|im_end|>").format());
    }

    /** A template that uses the ChatML markers but renders something else must not be taken for ChatML. */
    @Test
    void customTemplatesWithChatMlMarkersAreRefused() {
        String extraText = ChatTemplate.CHATML_JINJA.replace("'<|im_start|>assistant\\n'",
                "'<|im_start|>assistant\\nSure! '");
        var e1 = assertThrows(TokenizerException.class, () -> ChatTemplate.detect(extraText, null, "<|im_end|>"));
        assertTrue(e1.getMessage().contains("Sure! "), e1.getMessage());
        String upper = ChatTemplate.CHATML_JINJA.replace("message['content']", "message['content'] | upper");
        var e2 = assertThrows(TokenizerException.class, () -> ChatTemplate.detect(upper, null, "<|im_end|>"));
        assertTrue(e2.getMessage().contains("'upper'"), e2.getMessage());
        String rawExtra = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n### {{ m['content'] }}<|im_end|>\n"
                + "{% endfor %}";
        assertThrows(TokenizerException.class, () -> ChatTemplate.detect(rawExtra, null, "<|im_end|>"));
        String reversed = ChatTemplate.CHATML_JINJA.replace("message['content']", "message['content'][::-1].title()");
        var e3 = assertThrows(TokenizerException.class, () -> ChatTemplate.detect(reversed, null, "<|im_end|>"));
        assertTrue(e3.getMessage().contains("'title'"), e3.getMessage());
    }

    @Test
    void refusalTellsACliUserWhatToDoWithoutJava() {
        var e = assertThrows(TokenizerException.class,
                () -> ChatTemplate.detect("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", "<s>", "</s>"));
        assertFalse(e.getMessage().contains("ChatTemplate.of"), e.getMessage());
        assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
    }

    @Test
    void promptRenderingIsAPrefixOfTheFullChatInEveryFormat() {
        List<Message> prompt = List.of(Message.system("S"), Message.user("Q"));
        List<Message> full = List.of(Message.system("S"), Message.user("Q"), Message.assistant("A"));
        for (ChatTemplate.Format f : ChatTemplate.Format.values()) {
            ChatTemplate t = ChatTemplate.of(f, null, "<s>", "</s>");
            for (Boolean think : new Boolean[]{null, false}) {
                String p = t.render(prompt, true, think);
                String all = t.render(full, false, think);
                assertTrue(all.startsWith(p), f + " think=" + think + ": '" + p + "' is not a prefix of '" + all + "'");
                assertTrue(all.length() > p.length());
            }
        }
    }

    @Test
    void emptyChatIsRejected() {
        ChatTemplate t = ChatTemplate.of(ChatTemplate.Format.CHATML, null, null, null);
        assertThrows(IllegalArgumentException.class, () -> t.render(List.of(), true));
    }
}
