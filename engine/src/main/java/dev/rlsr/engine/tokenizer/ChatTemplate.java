package dev.rlsr.engine.tokenizer;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Renders chats in a model's format, byte for byte as transformers' {@code apply_chat_template} does.
 *
 * <p><b>Why not a Jinja engine.</b> The templates are Jinja programs written against Python semantics
 * ({@code messages[::-1]}, {@code namespace(...)}, {@code str.startswith}, {@code split}, {@code lstrip}); the Java
 * Jinja engine on Maven Central (Jinjava 2.8) fails on the Qwen3 template (no {@code [::-1]} slicing, no
 * {@code namespace()}) and trims whitespace differently, so it does not reproduce transformers. Instead the formats
 * in use are built in and chosen by recognising the template ({@link #detect}); a template that is not recognised is
 * an error naming the supported formats, never a silent guess. The parity test renders the fixture chats produced by
 * transformers and compares text and ids.
 *
 * <p>Every format keeps the property an SFT trainer relies on: the rendering of a prompt with
 * {@code addGenerationPrompt} is a prefix of the rendering of the same prompt followed by the assistant's answer,
 * so the prompt tokens can be masked out of the loss by length.
 */
public final class ChatTemplate {

    /** The chat formats this engine renders. */
    public enum Format {
        /** {@code <|im_start|>role\ncontent<|im_end|>\n}; Qwen2 and Qwen2.5 add a default system prompt. */
        CHATML,
        /** ChatML with Qwen3's thinking blocks ({@code enable_thinking}, {@code <think>...</think>}). */
        QWEN3,
        /** Llama 3 / 3.0: {@code <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>}, contents trimmed. */
        LLAMA3,
        /** Llama 3.1+: Llama 3 plus a system block that always carries the knowledge-cutoff and date lines. */
        LLAMA31,
        /**
         * Base models without a template: each non-assistant content followed by a blank line ("\n\n"), each
         * assistant content followed by the eos token text (and a blank line if more turns follow).
         */
        PLAIN
    }

    /** The standard ChatML template (no default system prompt), written into byte-level tokenizers. */
    public static final String CHATML_JINJA = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' "
            + "+ message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** The date Llama 3.1 templates print when transformers gives them none ({@code date_string} default). */
    static final String LLAMA31_DEFAULT_DATE = "26 Jul 2024";

    // A literal default system turn inside a ChatML template, e.g. Qwen2.5's
    // '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n'
    private static final Pattern CHATML_DEFAULT_SYSTEM =
            Pattern.compile("<\\|im_start\\|>system\\\\n((?:[^'\"{}<\\\\]|\\\\[^n])*)<\\|im_end\\|>");

    private final Format format;
    private final String source;
    private final String defaultSystem;
    private final String bosToken;
    private final String eosToken;
    private final boolean llamaDateIsToday;

    private ChatTemplate(Format format, String source, String defaultSystem, String bosToken, String eosToken,
                         boolean llamaDateIsToday) {
        this.format = Objects.requireNonNull(format, "format");
        this.source = source;
        this.defaultSystem = defaultSystem;
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        this.llamaDateIsToday = llamaDateIsToday;
    }

    /**
     * A built-in format, for a model whose template is missing or not recognised.
     *
     * @param format        the format
     * @param defaultSystem CHATML only: system prompt rendered when the chat has none (null for none)
     * @param bosToken      text of the bos token (Llama formats start with it), or null
     * @param eosToken      text of the eos token (PLAIN ends answers with it), or null
     * @return the template
     * @throws IllegalArgumentException for a default system prompt with a format other than CHATML
     */
    public static ChatTemplate of(Format format, String defaultSystem, String bosToken, String eosToken) {
        if (defaultSystem != null && format != Format.CHATML) {
            throw new IllegalArgumentException("a default system prompt is a ChatML option, not one of " + format);
        }
        return new ChatTemplate(format, null, defaultSystem, bosToken, eosToken, false);
    }

    /**
     * Recognises a Hugging Face {@code chat_template}.
     *
     * @param jinja    the template text, or null/blank for a base model without one (then {@link Format#PLAIN})
     * @param bosToken text of the bos token, or null
     * @param eosToken text of the eos token, or null
     * @return the template
     * @throws TokenizerException for a template that is none of the built-in formats
     */
    public static ChatTemplate detect(String jinja, String bosToken, String eosToken) {
        if (jinja == null || jinja.isBlank()) {
            return new ChatTemplate(Format.PLAIN, null, null, bosToken, eosToken, false);
        }
        if (jinja.contains("<|start_header_id|>") && jinja.contains("<|eot_id|>")) {
            if (jinja.contains("Cutting Knowledge Date")) {
                // Llama 3.2/3.3 templates ask for strftime_now("%d %b %Y"), which transformers provides: today.
                return new ChatTemplate(Format.LLAMA31, jinja, null, bosToken, eosToken, jinja.contains("strftime_now"));
            }
            return new ChatTemplate(Format.LLAMA3, jinja, null, bosToken, eosToken, false);
        }
        if (jinja.contains("<|im_start|>") && jinja.contains("<|im_end|>")) {
            if (jinja.contains("enable_thinking") && jinja.contains("</think>")) {
                requireOnlyChatMlText(jinja, null);
                return new ChatTemplate(Format.QWEN3, jinja, null, bosToken, eosToken, false);
            }
            if (jinja.contains("<think>") || jinja.contains("</think>")) {
                throw unknown(jinja, "a ChatML template with reasoning blocks other than Qwen3's");
            }
            Matcher m = CHATML_DEFAULT_SYSTEM.matcher(jinja);
            String defaultSystem = m.find() ? unescapeJinjaString(m.group(1)) : null;
            requireOnlyChatMlText(jinja, defaultSystem);
            return new ChatTemplate(Format.CHATML, jinja, defaultSystem, bosToken, eosToken, false);
        }
        throw unknown(jinja, "a chat template of no supported family");
    }

    private static TokenizerException unknown(String jinja, String what) {
        String head = jinja.strip().replace("\n", "\\n");
        if (head.length() > 120) {
            head = head.substring(0, 120) + "...";
        }
        return new TokenizerException("the tokenizer's chat_template is " + what + " and cannot be rendered exactly"
                + " (supported: ChatML as in Qwen2/Qwen2.5, Qwen3 with thinking, Llama 3, Llama 3.1+, and the plain"
                + " format of models without a template). Chats are rendered by built-in code that reproduces those"
                + " templates byte for byte; another template is refused rather than guessed. To use this model, put"
                + " the chat template of a supported family into its tokenizer_config.json (or chat_template.jinja),"
                + " or remove chat_template to train it as a base model. Template starts: " + head);
    }

    // ---------------------------------------------------------------- exact recognition of ChatML templates

    /**
     * Text a ChatML-family template may output without changing what the built-in ChatML/Qwen3 rendering produces
     * for chats without tools: the literals of Qwen3's, Qwen2/2.5's and the standard ChatML template, plus the names
     * they compare roles and keys with.
     */
    private static final java.util.Set<String> CHATML_TEXT = java.util.Set.of("", "\n", "\n\n", "<|im_start|>",
            "<|im_end|>", "<|im_end|>\n", "<|im_start|>assistant\n", "<|im_start|>system\n", "<|im_start|>user",
            "<think>", "</think>", "<think>\n\n</think>\n\n", "\n</think>\n\n", "\n<think>\n",
            "system", "user", "assistant", "tool", "tools", "role", "content", "reasoning_content", "tool_calls",
            "function", "name", "arguments", "type", "default");

    /** Filters and methods of the supported templates (anything else may change the output: upper, replace, ...). */
    private static final java.util.Set<String> CHATML_FILTERS = java.util.Set.of("length", "tojson");
    private static final java.util.Set<String> CHATML_METHODS = java.util.Set.of("split", "strip", "lstrip", "rstrip",
            "startswith", "endswith", "items", "get");

    /**
     * Refuses a template with ChatML markers that outputs text, or transforms contents, in ways the built-in
     * rendering does not: every string literal and every piece of text outside the Jinja tags must be one the
     * supported templates use (the default system prompt and the tool-call texts included), and only their
     * filters and methods may appear. The ChatML markers alone are not enough to call a template ChatML.
     *
     * @param defaultSystem the default system prompt found in the template (allowed as text), or null
     */
    private static void requireOnlyChatMlText(String jinja, String defaultSystem) {
        JinjaScan scan = JinjaScan.of(jinja);
        for (String t : scan.texts()) {
            if (CHATML_TEXT.contains(t) || isToolText(t)) {
                continue;
            }
            if (defaultSystem != null && (t.equals(defaultSystem)
                    || t.equals("<|im_start|>system\n" + defaultSystem + "<|im_end|>\n"))) {
                continue;
            }
            throw unknown(jinja, "a ChatML-like template that also writes the text \"" + shorten(t)
                    + "\" (not part of the ChatML or Qwen templates)");
        }
        java.util.Set<String> stripped = new java.util.HashSet<>();
        CHATML_TEXT.forEach(x -> stripped.add(x.strip()));
        if (defaultSystem != null) {
            stripped.add(defaultSystem.strip());
        }
        for (String t : scan.rawTexts()) {
            if (!stripped.contains(t) && !isToolText(t)) {
                throw unknown(jinja, "a ChatML-like template that also writes the text \"" + shorten(t)
                        + "\" (not part of the ChatML or Qwen templates)");
            }
        }
        for (String f : scan.filters()) {
            if (!CHATML_FILTERS.contains(f)) {
                throw unknown(jinja, "a ChatML-like template that applies the filter '" + f + "'");
            }
        }
        for (String f : scan.methods()) {
            if (!CHATML_METHODS.contains(f)) {
                throw unknown(jinja, "a ChatML-like template that calls the method '" + f + "'");
            }
        }
    }

    /** Texts of the tool-call branches (never rendered here: chats are rendered without tools). */
    private static boolean isToolText(String t) {
        String l = t.toLowerCase(Locale.ROOT);
        return l.contains("tool") || l.contains("\"arguments\"") || l.contains("\"name\"");
    }

    private static String shorten(String t) {
        String x = t.replace("\n", "\\n");
        return x.length() > 60 ? x.substring(0, 60) + "..." : x;
    }

    /** The string literals, raw text, filters and method calls of a Jinja template (comments skipped). */
    record JinjaScan(java.util.List<String> texts, java.util.List<String> rawTexts, java.util.Set<String> filters,
                     java.util.Set<String> methods) {
        private static final Pattern FILTER = Pattern.compile("\\|\\s*([A-Za-z_][A-Za-z_0-9]*)");
        private static final Pattern METHOD = Pattern.compile("\\.\\s*([A-Za-z_][A-Za-z_0-9]*)\\s*\\(");

        static JinjaScan of(String t) {
            java.util.List<String> texts = new java.util.ArrayList<>();
            java.util.List<String> rawTexts = new java.util.ArrayList<>();
            java.util.Set<String> filters = new java.util.LinkedHashSet<>();
            java.util.Set<String> methods = new java.util.LinkedHashSet<>();
            StringBuilder raw = new StringBuilder();
            int i = 0, n = t.length();
            while (i < n) {
                if (t.startsWith("{#", i)) {
                    int e = t.indexOf("#}", i + 2);
                    i = e < 0 ? n : e + 2;
                } else if (t.startsWith("{{", i) || t.startsWith("{%", i)) {
                    flushRaw(raw, rawTexts);
                    String close = t.startsWith("{{", i) ? "}}" : "%}";
                    StringBuilder code = new StringBuilder();
                    int j = i + 2;
                    while (j < n && !t.startsWith(close, j)) {
                        char c = t.charAt(j);
                        if (c == '\'' || c == '"') {
                            StringBuilder lit = new StringBuilder();
                            int k = j + 1;
                            while (k < n && t.charAt(k) != c) {
                                if (t.charAt(k) == '\\' && k + 1 < n) {
                                    char e = t.charAt(++k);
                                    lit.append(switch (e) {
                                        case 'n' -> '\n';
                                        case 't' -> '\t';
                                        case 'r' -> '\r';
                                        default -> e;
                                    });
                                } else {
                                    lit.append(t.charAt(k));
                                }
                                k++;
                            }
                            texts.add(lit.toString());
                            code.append("S");
                            j = k + 1;
                        } else {
                            code.append(c);
                            j++;
                        }
                    }
                    Matcher f = FILTER.matcher(code);
                    while (f.find()) {
                        filters.add(f.group(1));
                    }
                    Matcher m = METHOD.matcher(code);
                    while (m.find()) {
                        methods.add(m.group(1));
                    }
                    i = Math.min(n, j + 2);
                } else {
                    raw.append(t.charAt(i++));
                }
            }
            flushRaw(raw, rawTexts);
            return new JinjaScan(texts, rawTexts, filters, methods);
        }

        // text between tags is output too (compared without its surrounding whitespace, which the block options
        // trim in most templates)
        private static void flushRaw(StringBuilder raw, java.util.List<String> texts) {
            if (!raw.toString().isBlank()) {
                texts.add(raw.toString().strip());
            }
            raw.setLength(0);
        }
    }

    private static String unescapeJinjaString(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                b.append(switch (n) {
                    case 'n' -> '\n';
                    case 't' -> '\t';
                    default -> n;
                });
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    /** {@return the chat format} */
    public Format format() {
        return format;
    }

    /** {@return the Jinja text this was recognised from, or null for a format chosen with {@link #of}} */
    public String source() {
        return source;
    }

    /** {@return CHATML's default system prompt (Qwen2: "You are a helpful assistant."), or null} */
    public String defaultSystem() {
        return defaultSystem;
    }

    /**
     * Renders with {@code enable_thinking} left undefined.
     *
     * @param messages            the conversation
     * @param addGenerationPrompt end with the assistant header, ready for generation
     * @return the rendered text
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, null);
    }

    /**
     * Renders {@code messages} as {@code apply_chat_template(messages, tokenize=False, add_generation_prompt=...,
     * enable_thinking=...)}.
     *
     * @param messages            the conversation
     * @param addGenerationPrompt end with the assistant header, ready for generation
     * @param enableThinking      Qwen3 only: null leaves it undefined (the model may think), FALSE appends the empty
     *                            thinking block to the generation prompt; other formats ignore it
     * @return the rendered text
     */
    public String render(List<Message> messages, boolean addGenerationPrompt, Boolean enableThinking) {
        Objects.requireNonNull(messages, "messages");
        if (messages.isEmpty()) {
            throw new IllegalArgumentException("cannot render an empty chat: give at least one message");
        }
        for (Message m : messages) {
            Objects.requireNonNull(m, "messages must not contain null");
        }
        StringBuilder out = new StringBuilder(64 + messages.size() * 64);
        switch (format) {
            case CHATML -> renderChatMl(messages, addGenerationPrompt, out);
            case QWEN3 -> renderQwen3(messages, addGenerationPrompt, enableThinking, out);
            case LLAMA3 -> renderLlama3(messages, addGenerationPrompt, out);
            case LLAMA31 -> renderLlama31(messages, addGenerationPrompt, out);
            case PLAIN -> renderPlain(messages, out);
        }
        return out.toString();
    }

    private void renderChatMl(List<Message> messages, boolean gen, StringBuilder out) {
        if (defaultSystem != null && !messages.getFirst().role().equals(Message.SYSTEM)) {
            out.append("<|im_start|>system\n").append(defaultSystem).append("<|im_end|>\n");
        }
        for (Message m : messages) {
            out.append("<|im_start|>").append(m.role()).append('\n').append(m.content()).append("<|im_end|>\n");
        }
        if (gen) {
            out.append("<|im_start|>assistant\n");
        }
    }

    /** Qwen3's template without tools, statement for statement (see tokenizer_config.json of Qwen3). */
    private static void renderQwen3(List<Message> messages, boolean gen, Boolean enableThinking, StringBuilder out) {
        int n = messages.size();
        if (messages.getFirst().role().equals(Message.SYSTEM)) {
            out.append("<|im_start|>system\n").append(messages.getFirst().content()).append("<|im_end|>\n");
        }
        // the last user turn that is not a tool response: thinking blocks are kept only after it
        boolean multiStepTool = true;
        int lastQueryIndex = n - 1;
        for (int index = n - 1; index >= 0; index--) {
            Message m = messages.get(index);
            String c = m.content();
            if (multiStepTool && m.role().equals(Message.USER)
                    && !(c.startsWith("<tool_response>") && c.endsWith("</tool_response>"))) {
                multiStepTool = false;
                lastQueryIndex = index;
            }
        }
        for (int i = 0; i < n; i++) {
            Message m = messages.get(i);
            String role = m.role();
            if (role.equals(Message.USER) || (role.equals(Message.SYSTEM) && i != 0)) {
                out.append("<|im_start|>").append(role).append('\n').append(m.content()).append("<|im_end|>\n");
            } else if (role.equals(Message.ASSISTANT)) {
                String content = m.content();
                String reasoning = "";
                if (content.contains("</think>")) {
                    String whole = content;
                    content = lstrip(whole.substring(whole.lastIndexOf("</think>") + "</think>".length()), '\n');
                    String before = rstrip(whole.substring(0, whole.indexOf("</think>")), '\n');
                    int open = before.lastIndexOf("<think>");
                    reasoning = lstrip(open < 0 ? before : before.substring(open + "<think>".length()), '\n');
                }
                if (i > lastQueryIndex && (i == n - 1 || !reasoning.isEmpty())) {
                    out.append("<|im_start|>").append(role).append("\n<think>\n")
                            .append(rstrip(lstrip(reasoning, '\n'), '\n')).append("\n</think>\n\n")
                            .append(lstrip(content, '\n'));
                } else {
                    out.append("<|im_start|>").append(role).append('\n').append(content);
                }
                out.append("<|im_end|>\n");
            } else if (role.equals("tool")) {
                if (i == 0 || !messages.get(i - 1).role().equals("tool")) {
                    out.append("<|im_start|>user");
                }
                out.append("\n<tool_response>\n").append(m.content()).append("\n</tool_response>");
                if (i == n - 1 || !messages.get(i + 1).role().equals("tool")) {
                    out.append("<|im_end|>\n");
                }
            }
            // any other role renders nothing, as in the template
        }
        if (gen) {
            out.append("<|im_start|>assistant\n");
            if (Boolean.FALSE.equals(enableThinking)) {
                out.append("<think>\n\n</think>\n\n");
            }
        }
    }

    private void renderLlama3(List<Message> messages, boolean gen, StringBuilder out) {
        out.append(bosToken);
        for (Message m : messages) {
            llamaTurn(m, out);
        }
        if (gen) {
            out.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        }
    }

    private void renderLlama31(List<Message> messages, boolean gen, StringBuilder out) {
        out.append(bosToken);
        List<Message> rest = messages;
        String system = "";
        if (messages.getFirst().role().equals(Message.SYSTEM)) {
            system = messages.getFirst().content().strip();
            rest = messages.subList(1, messages.size());
        }
        String date = llamaDateIsToday
                ? LocalDate.now().format(DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH))
                : LLAMA31_DEFAULT_DATE;
        out.append("<|start_header_id|>system<|end_header_id|>\n\n")
                .append("Cutting Knowledge Date: December 2023\n")
                .append("Today Date: ").append(date).append("\n\n")
                .append(system).append("<|eot_id|>");
        for (Message m : rest) {
            llamaTurn(m, out);
        }
        if (gen) {
            out.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        }
    }

    private static void llamaTurn(Message m, StringBuilder out) {
        out.append("<|start_header_id|>").append(m.role()).append("<|end_header_id|>\n\n")
                .append(m.content().strip()).append("<|eot_id|>");
    }

    private void renderPlain(List<Message> messages, StringBuilder out) {
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            out.append(m.content());
            if (m.role().equals(Message.ASSISTANT)) {
                out.append(eosToken);
                if (i < messages.size() - 1) {
                    out.append("\n\n");
                }
            } else {
                out.append("\n\n");
            }
        }
    }

    private static String lstrip(String s, char c) {
        int i = 0;
        while (i < s.length() && s.charAt(i) == c) {
            i++;
        }
        return s.substring(i);
    }

    private static String rstrip(String s, char c) {
        int j = s.length();
        while (j > 0 && s.charAt(j - 1) == c) {
            j--;
        }
        return s.substring(0, j);
    }

    @Override
    public String toString() {
        return "ChatTemplate[" + format + (defaultSystem != null ? ", default system: " + defaultSystem : "") + "]";
    }
}
