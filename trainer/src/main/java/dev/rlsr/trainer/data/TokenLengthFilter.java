package dev.rlsr.trainer.data;

import dev.rlsr.engine.tokenizer.Tokenizer;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * Keeps examples whose token lengths fit: the prompt rendered with the model's chat template and generation
 * prompt, the response as the template renders it after the prompt (end-of-turn token included), and the total.
 * Counts what it drops, for the run's log. Thread-safe.
 *
 * <p>Texts far too long are dropped without tokenizing them: no token covers more than {@link #maxBytesPerToken}
 * bytes, so a text of b UTF-8 bytes has at least {@code b / maxBytesPerToken} tokens. BPE on one 10 MB line takes
 * about a minute; this bound decides it in microseconds, and never drops a text that would fit.
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
        this.maxBytesPerToken = maxBytesPerToken(tokenizer);
    }

    private final long maxBytesPerToken;

    /**
     * An upper bound on the UTF-8 bytes one token stands for: its vocabulary string has at most 4 bytes per
     * character (byte-level pieces have exactly one byte per character), with a floor of 1024 for tokens that stand
     * for more than their text (an unknown-word token).
     */
    static long maxBytesPerToken(Tokenizer t) {
        int longest = 1;
        for (int id = 0; id < t.vocabSize(); id++) {
            String piece = t.idToToken(id);
            if (piece != null) {
                longest = Math.max(longest, piece.length());
            }
        }
        return Math.max(1024L, 4L * longest);
    }

    /** Fewest tokens any tokenization of {@code text} can have (one less, for a merge across the chat markup). */
    private long minTokens(String text) {
        long bytes = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : Character.isSurrogate(c) ? 2 : 3;
        }
        return bytes / maxBytesPerToken - 1;
    }

    /**
     * True when the example's texts alone already exceed a limit (stripped: some chat templates trim contents, so
     * only what survives any template counts).
     */
    private boolean hopeless(Example e) {
        long prompt = 0;
        for (var m : e.prompt()) {
            prompt += Math.max(0, minTokens(m.content().strip()));
        }
        long response = Math.max(0, minTokens(e.response().strip()));
        return prompt > maxPromptTokens || response > maxResponseTokens || prompt + response > maxTotalTokens;
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
        boolean ok;
        if (hopeless(e)) {
            ok = false;
        } else {
            Lengths l = lengths(e);
            ok = l.prompt() <= maxPromptTokens && l.response() <= maxResponseTokens && l.total() <= maxTotalTokens;
        }
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
