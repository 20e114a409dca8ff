package dev.rlsr.engine.tokenizer;

import java.util.Objects;

/**
 * One chat turn as the Hugging Face chat templates see it: {@code {"role": ..., "content": ...}}. Roles are
 * free text ({@code system}, {@code user}, {@code assistant}, {@code tool}); the template decides what it renders.
 *
 * @param role    who speaks, not blank
 * @param content the text ("" for an empty turn)
 */
public record Message(String role, String content) {
    public static final String SYSTEM = "system";
    public static final String USER = "user";
    public static final String ASSISTANT = "assistant";

    /** Checks that role and content are given and the role is not blank. */
    public Message {
        Objects.requireNonNull(role, "a chat message needs a role (system, user, assistant)");
        Objects.requireNonNull(content, "a chat message needs a content (use \"\" for an empty one)");
        if (role.isBlank()) {
            throw new IllegalArgumentException("a chat message needs a role (system, user, assistant), got a blank one");
        }
    }

    /**
     * A system turn.
     *
     * @param content the text
     * @return the message
     */
    public static Message system(String content) {
        return new Message(SYSTEM, content);
    }

    /**
     * A user turn.
     *
     * @param content the text
     * @return the message
     */
    public static Message user(String content) {
        return new Message(USER, content);
    }

    /**
     * An assistant turn.
     *
     * @param content the text
     * @return the message
     */
    public static Message assistant(String content) {
        return new Message(ASSISTANT, content);
    }
}
