package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

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

    /** {@link DeviceEncoder#embedOnDevice} has no empty tensor to return. */
    static void checkNotEmpty(List<String> texts, String encoder) {
        if (texts.isEmpty()) {
            throw new IllegalArgumentException("no texts passed to " + encoder + ".embedOnDevice (an embedding tensor"
                    + " needs at least one row)");
        }
    }

    /**
     * {@code out (N,D)} with {@code out[i] = sorted[k]} where {@code order[k] = i}: the rows of a longest-first batch
     * run back in input order, by one row gather on the backend (the inverse permutation is the gather's index).
     */
    static Tensor inInputOrder(Backend be, Tensor sorted, Integer[] order) {
        int n = order.length;
        int[] where = new int[n];          // I32 (N): input row i is sorted row where[i]
        for (int k = 0; k < n; k++) {
            where[order[k]] = k;
        }
        Tensor out = be.alloc(sorted.dtype(), sorted.shape());
        try (Tensor rows = be.upload(where, n)) {
            be.gatherRows(sorted, rows, out);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /** A host copy of {@code (N,D)} embeddings as N rows. */
    static float[][] rows(float[] flat, int n, int d) {
        float[][] out = new float[n][];
        for (int i = 0; i < n; i++) {
            out[i] = Arrays.copyOfRange(flat, i * d, (i + 1) * d);
        }
        return out;
    }
}
