package dev.rlsr.trainer.data;

import dev.rlsr.engine.tokenizer.Message;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonlReaderTest {

    @TempDir
    Path dir;

    Path write(String name, String... lines) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
        return f;
    }

    static DatasetException failure(Path f) {
        return assertThrows(DatasetException.class, () -> JsonlReader.readAll(f, JsonlReader.Options.DEFAULT));
    }

    @Test
    void promptResponse() throws IOException {
        Path f = write("pr.jsonl",
                "{\"prompt\": \"What is 2+2?\", \"response\": \"2+2 is 4.\"}",
                "",
                "{\"id\": 7, \"prompt\": \"Say hi\", \"completion\": \"Hi!\", \"extra\": [1, 2]}");
        try (JsonlReader r = JsonlReader.open(f, JsonlReader.Options.DEFAULT)) {
            assertEquals(DatasetFormat.AUTO, r.format());
            Example a = r.next();
            assertEquals(DatasetFormat.PROMPT_RESPONSE, r.format());
            assertEquals(new Example("pr.jsonl:1", List.of(Message.user("What is 2+2?")), "2+2 is 4."), a);
            Example b = r.next();
            assertEquals("7", b.id());
            assertEquals("Hi!", b.response());
            assertFalse(r.hasNext());
            assertEquals(3, r.lineNumber());
            assertEquals(2, r.examples());
        }
    }

    @Test
    void alpaca() throws IOException {
        Path f = write("alpaca.jsonl",
                "{\"instruction\": \"Give three tips for staying healthy.\", \"input\": \"\", \"output\": \"Eat, sleep, move.\"}",
                "{\"instruction\": \"Translate to French.\", \"input\": \"cat\", \"output\": \"chat\"}",
                "{\"instruction\": \"Name a colour.\", \"output\": \"Blue.\"}");
        List<Example> xs = JsonlReader.readAll(f, JsonlReader.Options.DEFAULT);
        assertEquals(3, xs.size());
        assertEquals(List.of(Message.user("Give three tips for staying healthy.")), xs.get(0).prompt());
        assertEquals(List.of(Message.user("Translate to French.\n\ncat")), xs.get(1).prompt());
        assertEquals("chat", xs.get(1).response());
        assertEquals("Name a colour.", xs.get(2).lastUserContent());
    }

    @Test
    void chatTakesTheLastAssistantTurnAsReference() throws IOException {
        Path f = write("chat.jsonl",
                "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"2+2?\"},"
                        + " {\"role\": \"assistant\", \"content\": \"4\"}, {\"role\": \"user\", \"content\": \"3+3?\"},"
                        + " {\"role\": \"assistant\", \"content\": \"6\"}]}");
        Example e = JsonlReader.readAll(f, JsonlReader.Options.DEFAULT).getFirst();
        assertEquals(List.of(Message.system("Be brief."), Message.user("2+2?"), Message.assistant("4"),
                Message.user("3+3?")), e.prompt());
        assertEquals("6", e.response());
        assertEquals("3+3?", e.lastUserContent());
        assertEquals(Message.assistant("6"), e.conversation().getLast());
    }

    @Test
    void severalFilesEachDetectTheirFormat() throws IOException {
        Path a = write("a.jsonl", "{\"instruction\": \"i\", \"output\": \"o\"}");
        Path b = write("b.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"u\"}, "
                + "{\"role\": \"assistant\", \"content\": \"a\"}]}");
        try (Stream<Example> s = JsonlReader.stream(List.of(a, b), JsonlReader.Options.DEFAULT)) {
            assertEquals(List.of(Example.of("a.jsonl:1", "i", "o"), Example.of("b.jsonl:1", "u", "a")), s.toList());
        }
    }

    @Test
    void forcedFormatIsEnforced() throws IOException {
        Path f = write("f.jsonl", "{\"prompt\": \"p\", \"response\": \"r\"}");
        var e = assertThrows(DatasetException.class, () -> JsonlReader.readAll(f,
                new JsonlReader.Options(DatasetFormat.ALPACA, JsonlReader.OnBadLine.FAIL)));
        assertEquals(f + ":1: \"instruction\" is missing (Alpaca format)", e.getMessage());
    }

    @Test
    void badLinesNameFileAndLine() throws IOException {
        String ok = "{\"prompt\": \"p\", \"response\": \"r\"}";
        assertEquals(":2: not valid JSON", tail(failure(write("a.jsonl", ok, "{\"prompt\": \"p\", \"response\": }")))
                .substring(0, ":2: not valid JSON".length()));
        assertEquals(":3: \"response\" is missing (prompt/response format)",
                tail(failure(write("b.jsonl", ok, "", "{\"prompt\": \"p\"}"))));
        assertEquals(":1: \"prompt\" must be a string, found a number",
                tail(failure(write("c.jsonl", "{\"prompt\": 3, \"response\": \"r\"}"))));
        assertEquals(":1: expected a JSON object, found an array", tail(failure(write("d.jsonl", "[1, 2]"))));
        assertTrue(tail(failure(write("e.jsonl", "{\"question\": \"q\", \"answer\": \"a\"}")))
                .startsWith(":1: cannot tell the format from the keys [answer, question]"));
        assertEquals(":2: the last message must be the assistant's reference answer, found role \"user\"",
                tail(failure(write("f.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, "
                                + "{\"role\": \"assistant\", \"content\": \"b\"}]}",
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}"))));
        assertEquals(":1: the chat has no prompt before the assistant's answer",
                tail(failure(write("g.jsonl", "{\"messages\": [{\"role\": \"assistant\", \"content\": \"b\"}]}"))));
        assertEquals(":1: message 1 needs a \"content\" string",
                tail(failure(write("h.jsonl", "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}"))));
        assertEquals(":1: the response is empty", tail(failure(write("i.jsonl", "{\"prompt\": \"p\", \"response\": \" \"}"))));
        String trailing = tail(failure(write("j.jsonl", ok + " \"x\"")));
        assertTrue(trailing.startsWith(":1: not valid JSON: Trailing token"), trailing);
        // a file in one format with a line of another
        assertEquals(":2: \"prompt\" is missing (prompt/response format)",
                tail(failure(write("k.jsonl", ok, "{\"instruction\": \"i\", \"output\": \"o\"}"))));
    }

    @Test
    void checkableAnswersAndTaskLabelsInEveryFormat() throws IOException {
        List<Example> pr = JsonlReader.readAll(write("pr.jsonl",
                "{\"prompt\": \"2+2?\", \"response\": \"2+2 is 4.\", \"answer\": \"is 4\", \"task\": \"sum\"}",
                "{\"prompt\": \"3+3?\", \"response\": \"6\", \"answer\": [\"6\", \"six\"], \"task\": 7}",
                "{\"prompt\": \"Hi\", \"response\": \"Hello.\", \"task\": {\"x\": 1}}"), JsonlReader.Options.DEFAULT);
        assertEquals(List.of("is 4"), pr.get(0).answers());
        assertEquals("sum", pr.get(0).task());
        assertEquals(List.of("6", "six"), pr.get(1).answers());
        assertEquals("7", pr.get(1).task());
        assertFalse(pr.get(2).hasAnswer());
        assertEquals("", pr.get(2).task(), "a task label that is not a string or a number is ignored");
        Example alpaca = JsonlReader.readAll(write("a.jsonl",
                "{\"instruction\": \"Name a colour.\", \"output\": \"Blue.\", \"answer\": \"Blue\"}"),
                JsonlReader.Options.DEFAULT).getFirst();
        assertEquals(List.of("Blue"), alpaca.answers());
        Example chat = JsonlReader.readAll(write("c.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"},"
                + " {\"role\": \"assistant\", \"content\": \"4\"}], \"answer\": \"4\"}"), JsonlReader.Options.DEFAULT)
                .getFirst();
        assertEquals(List.of("4"), chat.answers());
    }

    @Test
    void aMalformedAnswerIsABadLine() throws IOException {
        String ok = "{\"prompt\": \"p\", \"response\": \"r\"";
        assertEquals(":1: \"answer\" must be a string or a non-empty array of strings, found a number",
                tail(failure(write("a.jsonl", ok + ", \"answer\": 4}"))));
        assertEquals(":1: \"answer\" must be a string or a non-empty array of strings, found an array",
                tail(failure(write("b.jsonl", ok + ", \"answer\": []}"))));
        assertEquals(":1: \"answer\" must be a string or an array of strings, found an array with a number",
                tail(failure(write("c.jsonl", ok + ", \"answer\": [\"4\", 4]}"))));
        assertEquals(":1: \"answer\" is empty (a checkable answer is text a correct response contains)",
                tail(failure(write("d.jsonl", ok + ", \"answer\": \" \"}"))));
    }

    /** The message without the file name, which is a temporary path. */
    private String tail(DatasetException e) {
        String prefix = e.file();
        assertTrue(e.getMessage().startsWith(prefix + ":" + e.line() + ": "), e.getMessage());
        assertEquals(0, e.getStackTrace().length, "a DatasetException carries no stack trace");
        return e.getMessage().substring(prefix.length());
    }

    @Test
    void skipModeCountsBadLines() throws IOException {
        Path f = write("s.jsonl",
                "not json",
                "{\"prompt\": \"p1\", \"response\": \"r1\"}",
                "{\"prompt\": \"p2\"}",
                "{\"prompt\": \"p3\", \"response\": \"r3\"}");
        try (JsonlReader r = JsonlReader.open(f, new JsonlReader.Options(DatasetFormat.AUTO, JsonlReader.OnBadLine.SKIP))) {
            List<String> responses = new java.util.ArrayList<>();
            r.forEachRemaining(e -> responses.add(e.response()));
            assertEquals(List.of("r1", "r3"), responses);
            assertEquals(2, r.skipped());
            assertEquals(2, r.skipReasons().size());
            assertTrue(r.skipReasons().get(0).startsWith(f + ":1: not valid JSON"), r.skipReasons().get(0));
            assertTrue(r.skipReasons().get(1).startsWith(f + ":3: \"response\" is missing"), r.skipReasons().get(1));
        }
    }

    @Test
    void readsLazilyLineByLine() throws IOException {
        // line 3 is bad: the first two examples must come out before the reader ever looks at it
        Path f = write("lazy.jsonl",
                "{\"prompt\": \"p1\", \"response\": \"r1\"}",
                "{\"prompt\": \"p2\", \"response\": \"r2\"}",
                "{broken");
        try (Stream<Example> s = JsonlReader.stream(f)) {
            Iterator<Example> it = s.iterator();
            assertEquals("r1", it.next().response());
            assertEquals("r2", it.next().response());
            var e = assertThrows(DatasetException.class, it::hasNext);
            assertEquals(3, e.line());
        }
    }

    @Test
    void notUtf8IsReported() throws IOException {
        Path f = dir.resolve("latin1.jsonl");
        Files.write(f, "{\"prompt\": \"caf\u00e9\", \"response\": \"r\"}\n".getBytes(StandardCharsets.ISO_8859_1));
        var e = failure(f);
        assertEquals(1, e.line());
        // the byte is 0xE9 ('e' with acute accent in Latin-1), the 16th byte of the line
        assertTrue(e.getMessage().contains(":1: not valid UTF-8 text: byte 0xE9 at byte 16"), e.getMessage());
    }

    /**
     * A decoding reader decodes ahead in blocks and fails on an earlier line; the line of the bad byte must be named,
     * also deep into a file with long lines.
     */
    @Test
    void invalidUtf8IsReportedAtItsOwnLine() throws IOException {
        for (int badLine : new int[]{10, 150}) {
            java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
            String filler = "x".repeat(300);
            for (int line = 1; line <= 200; line++) {
                String text = "{\"prompt\": \"p" + line + " " + filler + "\", \"response\": \"r\"}\n";
                byte[] b = text.getBytes(StandardCharsets.UTF_8);
                if (line == badLine) {
                    b[14] = (byte) 0xFF; // never valid in UTF-8
                }
                bytes.writeBytes(b);
            }
            Path f = dir.resolve("bad" + badLine + ".jsonl");
            Files.write(f, bytes.toByteArray());
            DatasetException e = failure(f);
            assertEquals(badLine, e.line(), e.getMessage());
            assertTrue(e.getMessage().contains("byte 0xFF at byte 15"), e.getMessage());
            // skipped like any other malformed line, and counted at its line
            try (JsonlReader r = JsonlReader.open(f, new JsonlReader.Options(DatasetFormat.AUTO,
                    JsonlReader.OnBadLine.SKIP))) {
                int n = 0;
                while (r.hasNext()) {
                    r.next();
                    n++;
                }
                assertEquals(199, n);
                assertEquals(List.of((long) badLine), r.skippedLines());
            }
        }
    }

    @Test
    void windowsLineEndingsAndNoFinalNewline() throws IOException {
        Path f = dir.resolve("crlf.jsonl");
        Files.write(f, ("{\"prompt\": \"a\", \"response\": \"b\"}\r\n{\"prompt\": \"c\", \"response\": \"d\u00e9\"}")
                .getBytes(StandardCharsets.UTF_8));
        List<Example> all = JsonlReader.readAll(f, JsonlReader.Options.DEFAULT);
        assertEquals(List.of("b", "d\u00e9"), all.stream().map(Example::response).toList());
    }

    @Test
    void missingFile() {
        var e = assertThrows(DatasetException.class, () -> JsonlReader.stream(dir.resolve("nope.jsonl")));
        assertTrue(e.getMessage().contains("nope.jsonl: cannot open"), e.getMessage());
    }
}
