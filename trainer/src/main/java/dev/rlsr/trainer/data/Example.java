package dev.rlsr.trainer.data;

import dev.rlsr.engine.tokenizer.Message;

import java.util.List;
import java.util.Objects;

/**
 * One SFT / RLSR example: the prompt x as chat messages and the reference response y* (the human answer the
 * SFT loss imitates and the RLSR reward compares samples against).
 *
 * @param id       the example's {@code "id"} field, or {@code <file name>:<line>} where it has none
 * @param prompt   the messages before the reference answer (system and user turns, earlier assistant turns)
 * @param response the reference answer y*
 */
public record Example(String id, List<Message> prompt, String response) {
    public Example {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(response, "response");
        prompt = List.copyOf(prompt);
        if (prompt.isEmpty()) {
            throw new IllegalArgumentException("example " + id + " has an empty prompt");
        }
    }

    /** A single-turn example: the prompt is one user message. */
    public static Example of(String id, String prompt, String response) {
        return new Example(id, List.of(Message.user(prompt)), response);
    }

    /** The prompt followed by the reference answer as an assistant turn: what SFT renders and trains on. */
    public List<Message> conversation() {
        return java.util.stream.Stream.concat(prompt.stream(), java.util.stream.Stream.of(Message.assistant(response)))
                .toList();
    }

    /** Content of the last user turn (the question itself, without system prompt or history). */
    public String lastUserContent() {
        for (int i = prompt.size() - 1; i >= 0; i--) {
            if (prompt.get(i).role().equals(Message.USER)) {
                return prompt.get(i).content();
            }
        }
        return prompt.getLast().content();
    }
}
