package dev.rlsr.trainer.encoder;

import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.function.IntUnaryOperator;
import java.util.stream.IntStream;

/** The input checks and the batching order every {@link Encoder} implementation shares. */
final class EncoderInputs {
    private EncoderInputs() {
    }

    /** The {@link Encoder#embed} contract: not closed, no null list, no null text (named by its index). */
    static void check(List<String> texts, String encoder, boolean closed) {
        Objects.requireNonNull(texts, "texts");
        if (closed) {
            throw new IllegalStateException(encoder + " encoder is closed");
        }
        for (int i = 0; i < texts.size(); i++) {
            if (texts.get(i) == null) {
                throw new NullPointerException("text " + i + " of " + texts.size() + " passed to " + encoder + " is null");
            }
        }
    }

    /**
     * Row indices {@code 0..n-1} ordered longest first ({@code length} gives a row's token count): consecutive
     * batches then hold rows of similar length and waste little compute on padding, and each batch's first row is
     * its longest.
     */
    static Integer[] longestFirst(int n, IntUnaryOperator length) {
        Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingInt((Integer i) -> length.applyAsInt(i)).reversed());
        return order;
    }
}
