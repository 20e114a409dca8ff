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
 * @param answers  the checkable answer of the line's {@code "answer"} field (one string, or several accepted ones):
 *                 what {@link dev.rlsr.trainer.eval.AnswerJudge} looks for in a response; empty when the line has
 *                 none
 * @param task     the line's {@code "task"} label (accuracy is broken down by it), "" when it has none
 */
public record Example(String id, List<Message> prompt, String response, List<String> answers, String task) {
    public Example {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(response, "response");
        prompt = List.copyOf(prompt);
        answers = answers == null ? List.of() : List.copyOf(answers);
        task = task == null ? "" : task;
        if (prompt.isEmpty()) {
            throw new IllegalArgumentException("example " + id + " has an empty prompt");
        }
        for (String a : answers) {
            if (a.isBlank()) {
                throw new IllegalArgumentException("example " + id + " has an empty answer");
            }
        }
    }

    /**
     * An example without a checkable answer or task label.
     *
     * @param id       the example's id
     * @param prompt   the messages before the reference answer
     * @param response the reference answer
     */
    public Example(String id, List<Message> prompt, String response) {
        this(id, prompt, response, List.of(), "");
    }

    /** A single-turn example: the prompt is one user message. */
    public static Example of(String id, String prompt, String response) {
        return new Example(id, List.of(Message.user(prompt)), response);
    }

    /**
     * This example with a checkable answer and a task label.
     *
     * @param newAnswers the accepted answers (empty: none)
     * @param newTask    the task label ("" for none)
     * @return the example with them
     */
    public Example withAnswers(List<String> newAnswers, String newTask) {
        return new Example(id, prompt, response, newAnswers, newTask);
    }

    /** Whether the example carries a checkable answer. */
    public boolean hasAnswer() {
        return !answers.isEmpty();
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
