package dev.rlsr.trainer.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rlsr.engine.tokenizer.Message;

import dev.rlsr.engine.io.IoMessages;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.TreeSet;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * Streams SFT examples from a JSONL file, one line at a time (never the whole file in memory), in any of the
 * {@link DatasetFormat}s. Blank lines are ignored. With {@link OnBadLine#FAIL} (the default) the first bad line
 * stops the read with a {@link DatasetException} {@code <file>:<line>: <what is wrong>}; with {@link OnBadLine#SKIP}
 * bad lines are counted ({@link #skipped()}) and the first reasons kept for the log. In every format a line may
 * carry a checkable {@code "answer"} (a string or an array of accepted strings, used by the evaluation's
 * {@link dev.rlsr.trainer.eval.AnswerJudge}) and a {@code "task"} label; other unknown keys are ignored, so files
 * may carry extra fields ({@code "source"}).
 */
public final class JsonlReader implements Iterator<Example>, AutoCloseable {

    /** What to do with a line that is not a valid example. */
    public enum OnBadLine { FAIL, SKIP }

    /** How to read a file: its format ({@link DatasetFormat#AUTO} to detect) and what to do with bad lines. */
    public record Options(DatasetFormat format, OnBadLine onBadLine) {
        public static final Options DEFAULT = new Options(DatasetFormat.AUTO, OnBadLine.FAIL);

        public Options {
            Objects.requireNonNull(format, "format (use AUTO to detect it)");
            Objects.requireNonNull(onBadLine, "onBadLine");
        }
    }

    /** How many skip reasons are kept (the count is exact, the list is for the log). */
    public static final int MAX_REASONS = 20;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final String name;
    private final String idPrefix;
    private final LineSource in;
    private final Options options;
    private DatasetFormat format;
    private long lineNumber;
    private long examples;
    private long skipped;
    private final List<String> skipReasons = new ArrayList<>();
    private final List<Long> skippedLines = new ArrayList<>();
    private Example next;
    private boolean eof;
    private boolean closed;

    /** One line at a time, without its terminator; null at the end. */
    private interface LineSource extends AutoCloseable {
        String readLine() throws IOException, BadLine;

        @Override
        void close() throws IOException;
    }

    /**
     * Lines of a file split on bytes and decoded one by one, so that invalid UTF-8 is reported at its own line: a
     * decoding reader decodes ahead in blocks and fails lines (or dozens of lines) before the bad byte.
     */
    private static final class Utf8Lines implements LineSource {
        private final InputStream in;
        private final byte[] buf = new byte[1 << 16];
        private int pos, end;
        private byte[] line = new byte[256];
        private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);

        Utf8Lines(InputStream in) {
            this.in = in;
        }

        @Override
        public String readLine() throws IOException, BadLine {
            int len = 0;
            boolean any = false;
            while (true) {
                if (pos == end) {
                    end = in.read(buf);
                    pos = 0;
                    if (end <= 0) {
                        end = 0;
                        if (!any) {
                            return null;
                        }
                        break;
                    }
                }
                any = true;
                int nl = -1;
                for (int i = pos; i < end; i++) {
                    if (buf[i] == '\n') {
                        nl = i;
                        break;
                    }
                }
                int stop = nl < 0 ? end : nl;
                int n = stop - pos;
                if (len + n > line.length) {
                    line = Arrays.copyOf(line, Math.max(len + n, line.length * 2));
                }
                System.arraycopy(buf, pos, line, len, n);
                len += n;
                pos = stop;
                if (nl >= 0) {
                    pos++;
                    break;
                }
            }
            if (len > 0 && line[len - 1] == '\r') {
                len--;
            }
            ByteBuffer bytes = ByteBuffer.wrap(line, 0, len);
            try {
                return decoder.reset().decode(bytes).toString();
            } catch (CharacterCodingException e) {
                int at = bytes.position();
                throw new BadLine(String.format(Locale.ROOT, "not valid UTF-8 text: byte 0x%02X at byte %d of the"
                        + " line (the file is not UTF-8 text there; save it as UTF-8)", line[at] & 0xFF, at + 1), true);
            }
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }

    private static LineSource lines(BufferedReader r) {
        return new LineSource() {
            @Override
            public String readLine() throws IOException {
                return r.readLine();
            }

            @Override
            public void close() throws IOException {
                r.close();
            }
        };
    }

    private JsonlReader(String name, String idPrefix, LineSource in, Options options) {
        this.name = name;
        this.idPrefix = idPrefix;
        this.in = in;
        this.options = Objects.requireNonNull(options, "options");
        this.format = options.format();
    }

    /** Opens {@code file}; errors name it as given. */
    public static JsonlReader open(Path file, Options options) {
        try {
            LineSource r = new Utf8Lines(Files.newInputStream(file));
            Path fileName = file.getFileName();
            return new JsonlReader(file.toString(), fileName == null ? file.toString() : fileName.toString(), r, options);
        } catch (IOException e) {
            throw new DatasetException(file.toString(), "cannot open: " + IoMessages.describe(e), e);
        }
    }

    /** Reads from {@code reader} (a class path resource, a decompressing stream); {@code name} appears in errors. */
    public static JsonlReader open(Reader reader, String name, Options options) {
        BufferedReader r = reader instanceof BufferedReader b ? b : new BufferedReader(reader);
        return new JsonlReader(name, name, lines(r), options);
    }

    /** A lazy stream over {@code file}; close it (try-with-resources) to close the file. */
    public static Stream<Example> stream(Path file, Options options) {
        JsonlReader r = open(file, options);
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(r, Spliterator.ORDERED | Spliterator.NONNULL),
                false).onClose(r::close);
    }

    public static Stream<Example> stream(Path file) {
        return stream(file, Options.DEFAULT);
    }

    /**
     * The examples of several files, one after the other; each file detects its own format (unless forced), so
     * Alpaca and chat files can be mixed. Files are opened one at a time, when the stream reaches them.
     */
    public static Stream<Example> stream(List<Path> files, Options options) {
        return files.stream().flatMap(f -> stream(f, options));
    }

    /** Reads a whole (small) file into a list, e.g. an eval set. */
    public static List<Example> readAll(Path file, Options options) {
        try (Stream<Example> s = stream(file, options)) {
            return s.toList();
        }
    }

    @Override
    public boolean hasNext() {
        if (next == null && !eof) {
            next = advance();
        }
        return next != null;
    }

    @Override
    public Example next() {
        if (!hasNext()) {
            throw new NoSuchElementException("no more examples in " + name);
        }
        Example e = next;
        next = null;
        return e;
    }

    private Example advance() {
        if (closed) {
            throw new IllegalStateException(name + " is closed");
        }
        while (true) {
            String line;
            try {
                try {
                    line = in.readLine();
                } catch (CharacterCodingException e) {
                    // a Reader source (not a file): its decoder cannot tell the line
                    throw new DatasetException(name, lineNumber + 1, "the text is not valid UTF-8 (" + e + ")");
                } catch (IOException e) {
                    throw new DatasetException(name, lineNumber + 1, "cannot read: " + IoMessages.describe(e));
                }
                if (line == null) {
                    eof = true;
                    return null;
                }
                lineNumber++;
                if (lineNumber == 1 && line.startsWith("\uFEFF")) {
                    line = line.substring(1);
                }
                if (line.isBlank()) {
                    continue;
                }
                Example e = parse(line);
                examples++;
                return e;
            } catch (BadLine bad) {
                if (bad.beforeCount) {
                    lineNumber++;
                }
                if (options.onBadLine() == OnBadLine.FAIL) {
                    throw new DatasetException(name, lineNumber, bad.getMessage());
                }
                skipped++;
                if (skipReasons.size() < MAX_REASONS) {
                    skipReasons.add(name + ":" + lineNumber + ": " + bad.getMessage());
                    skippedLines.add(lineNumber);
                }
            }
        }
    }

    /** What is wrong with one line; becomes a DatasetException or a skip. */
    private static final class BadLine extends Exception {
        /** Thrown while reading the line (bad UTF-8), before it was counted. */
        final boolean beforeCount;

        BadLine(String what) {
            this(what, false);
        }

        BadLine(String what, boolean beforeCount) {
            super(what, null, false, false);
            this.beforeCount = beforeCount;
        }
    }

    private Example parse(String line) throws BadLine {
        JsonNode root;
        try {
            root = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new BadLine("not valid JSON: " + e.getOriginalMessage().lines().findFirst().orElse(""));
        }
        if (!root.isObject()) {
            throw new BadLine("expected a JSON object, found " + kind(root));
        }
        DatasetFormat f = format == DatasetFormat.AUTO ? detect(root) : format;
        String id = id(root);
        Example e = switch (f) {
            case PROMPT_RESPONSE -> promptResponse(root, id);
            case ALPACA -> alpaca(root, id);
            case CHAT -> chat(root, id);
            case AUTO -> throw new IllegalStateException("unreachable");
        };
        if (e.response().isBlank()) {
            throw new BadLine("the response is empty");
        }
        e = e.withAnswers(answers(root), label(root));
        // the first good record decides an AUTO file's format; later lines must follow it
        format = f;
        return e;
    }

    private static DatasetFormat detect(JsonNode root) throws BadLine {
        if (root.has("messages")) {
            return DatasetFormat.CHAT;
        }
        if (root.has("instruction")) {
            return DatasetFormat.ALPACA;
        }
        if (root.has("prompt")) {
            return DatasetFormat.PROMPT_RESPONSE;
        }
        TreeSet<String> keys = new TreeSet<>();
        root.fieldNames().forEachRemaining(keys::add);
        throw new BadLine("cannot tell the format from the keys " + keys + ": expected \"prompt\" and \"response\", "
                + "\"instruction\" and \"output\" (Alpaca), or \"messages\" (chat)");
    }

    private String id(JsonNode root) throws BadLine {
        JsonNode id = root.get("id");
        if (id == null || id.isNull()) {
            return idPrefix + ":" + lineNumber;
        }
        if (!id.isTextual() && !id.isIntegralNumber()) {
            throw new BadLine("\"id\" must be a string or an integer, found " + kind(id));
        }
        return id.asText();
    }

    /**
     * The optional {@code "answer"} field: a string, or an array of strings any one of which a correct response
     * contains (see {@link dev.rlsr.trainer.eval.AnswerJudge}).
     */
    private static List<String> answers(JsonNode root) throws BadLine {
        JsonNode n = root.get("answer");
        if (n == null || n.isNull()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (n.isTextual()) {
            out.add(n.asText());
        } else if (n.isArray() && !n.isEmpty()) {
            for (JsonNode a : n) {
                if (!a.isTextual()) {
                    throw new BadLine("\"answer\" must be a string or an array of strings, found an array with "
                            + kind(a));
                }
                out.add(a.asText());
            }
        } else {
            throw new BadLine("\"answer\" must be a string or a non-empty array of strings, found " + kind(n));
        }
        for (String a : out) {
            if (a.isBlank()) {
                throw new BadLine("\"answer\" is empty (a checkable answer is text a correct response contains)");
            }
        }
        return out;
    }

    /** The optional {@code "task"} label; a value that is not a string or a number is ignored, as before it had a use. */
    private static String label(JsonNode root) {
        JsonNode n = root.get("task");
        return n != null && (n.isTextual() || n.isNumber()) ? n.asText() : "";
    }

    private static String text(JsonNode root, String field, String format) throws BadLine {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            throw new BadLine("\"" + field + "\" is missing (" + format + " format)");
        }
        if (!n.isTextual()) {
            throw new BadLine("\"" + field + "\" must be a string, found " + kind(n));
        }
        return n.asText();
    }

    private static Example promptResponse(JsonNode root, String id) throws BadLine {
        String prompt = text(root, "prompt", "prompt/response");
        String response = root.has("response") || !root.has("completion")
                ? text(root, "response", "prompt/response")
                : text(root, "completion", "prompt/completion");
        if (prompt.isBlank()) {
            throw new BadLine("the prompt is empty");
        }
        return Example.of(id, prompt, response);
    }

    private static Example alpaca(JsonNode root, String id) throws BadLine {
        String instruction = text(root, "instruction", "Alpaca");
        String input = "";
        JsonNode in = root.get("input");
        if (in != null && !in.isNull()) {
            if (!in.isTextual()) {
                throw new BadLine("\"input\" must be a string, found " + kind(in));
            }
            input = in.asText();
        }
        String output = text(root, "output", "Alpaca");
        if (instruction.isBlank()) {
            throw new BadLine("the instruction is empty");
        }
        // the Alpaca recipe: instruction, a blank line, then the input when there is one
        String prompt = input.isBlank() ? instruction : instruction + "\n\n" + input;
        return Example.of(id, prompt, output);
    }

    private static Example chat(JsonNode root, String id) throws BadLine {
        JsonNode msgs = root.get("messages");
        if (msgs == null || !msgs.isArray() || msgs.isEmpty()) {
            throw new BadLine("\"messages\" must be a non-empty array of {\"role\", \"content\"} objects, found "
                    + (msgs == null ? "nothing" : kind(msgs)));
        }
        List<Message> all = new ArrayList<>(msgs.size());
        for (int i = 0; i < msgs.size(); i++) {
            JsonNode m = msgs.get(i);
            if (!m.isObject()) {
                throw new BadLine("message " + (i + 1) + " must be an object, found " + kind(m));
            }
            JsonNode role = m.get("role");
            JsonNode content = m.get("content");
            if (role == null || !role.isTextual() || role.asText().isBlank()) {
                throw new BadLine("message " + (i + 1) + " needs a \"role\" string");
            }
            if (content == null || !content.isTextual()) {
                throw new BadLine("message " + (i + 1) + " needs a \"content\" string"
                        + (content != null && content.isArray() ? " (multimodal content lists are not supported)" : ""));
            }
            all.add(new Message(role.asText(), content.asText()));
        }
        Message last = all.getLast();
        if (!last.role().equals(Message.ASSISTANT)) {
            throw new BadLine("the last message must be the assistant's reference answer, found role \""
                    + last.role() + "\"");
        }
        if (all.size() == 1) {
            throw new BadLine("the chat has no prompt before the assistant's answer");
        }
        return new Example(id, all.subList(0, all.size() - 1), last.content());
    }

    private static String kind(JsonNode n) {
        return switch (n.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            case STRING -> "a string";
            default -> n.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
        };
    }

    /** The file's format: the forced one, or what the first good record showed (AUTO before that). */
    public DatasetFormat format() {
        return format;
    }

    /** Lines read so far, blank and bad ones included. */
    public long lineNumber() {
        return lineNumber;
    }

    public long examples() {
        return examples;
    }

    public long skipped() {
        return skipped;
    }

    /** The line numbers (1-based) of the first {@link #MAX_REASONS} skipped lines. */
    public List<Long> skippedLines() {
        return List.copyOf(skippedLines);
    }

    /** The first {@link #MAX_REASONS} skipped lines as {@code <file>:<line>: <what is wrong>}. */
    public List<String> skipReasons() {
        return List.copyOf(skipReasons);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                in.close();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot close " + name, e);
            }
        }
    }
}
