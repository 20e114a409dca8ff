package dev.rlsr.trainer.data;

/** The JSONL layouts an SFT file may have, one JSON object per line. */
public enum DatasetFormat {
    /** Decide from the first record of each file. */
    AUTO,
    /** {@code {"prompt": ..., "response": ...}} ({@code "completion"} is accepted for {@code "response"}). */
    PROMPT_RESPONSE,
    /** Alpaca: {@code {"instruction": ..., "input": ..., "output": ...}}; the input may be empty or missing. */
    ALPACA,
    /**
     * {@code {"messages": [{"role": ..., "content": ...}, ...]}}: the last message, which must be the assistant's,
     * is the reference; everything before it is the prompt.
     */
    CHAT
}
