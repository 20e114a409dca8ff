package dev.rlsr.trainer.data;

import dev.rlsr.engine.tokenizer.Tokenizer;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * Keeps examples whose token lengths fit: the prompt rendered with the model's chat template and generation
 * prompt, the response as the template renders it after the prompt (end-of-turn token included), and the total.
 * Counts what it drops, for the run's log. Thread-safe.
 */
public final class TokenLengthFilter implements Predicate<Example> {
    private final Tokenizer tokenizer;
    private final int maxPromptTokens;
    private final int maxResponseTokens;
    private final int maxTotalTokens;
    private final AtomicLong kept = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();

    /** Limits must be positive; {@link Integer#MAX_VALUE} means no limit. */
    public TokenLengthFilter(Tokenizer tokenizer, int maxPromptTokens, int maxResponseTokens, int maxTotalTokens) {
        this.tokenizer = java.util.Objects.requireNonNull(tokenizer, "tokenizer");
        if (maxPromptTokens <= 0 || maxResponseTokens <= 0 || maxTotalTokens <= 0) {
            throw new IllegalArgumentException("token length limits must be positive (prompt " + maxPromptTokens
                    + ", response " + maxResponseTokens + ", total " + maxTotalTokens + ")");
        }
        this.maxPromptTokens = maxPromptTokens;
        this.maxResponseTokens = maxResponseTokens;
        this.maxTotalTokens = maxTotalTokens;
    }

    /** Token counts of one example: prompt (with generation prompt), response and their sum. */
    public record Lengths(int prompt, int response, int total) {
    }

    public Lengths lengths(Example e) {
        int prompt = tokenizer.encodeChat(e.prompt(), true).length;
        int total = tokenizer.encodeChat(e.conversation(), false).length;
        return new Lengths(prompt, total - prompt, total);
    }

    @Override
    public boolean test(Example e) {
        Lengths l = lengths(e);
        boolean ok = l.prompt() <= maxPromptTokens && l.response() <= maxResponseTokens && l.total() <= maxTotalTokens;
        (ok ? kept : dropped).incrementAndGet();
        return ok;
    }

    public long kept() {
        return kept.get();
    }

    public long dropped() {
        return dropped.get();
    }
}
