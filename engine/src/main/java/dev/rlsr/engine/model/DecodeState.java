package dev.rlsr.engine.model;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

/**
 * What changes from one decode step to the next, kept in device memory so that one recorded step
 * ({@link Backend#capture}) serves every step: the token each row feeds next, its position, and the cache length.
 * {@link DecoderModel#decodeStep} reads them and advances positions and lengths on the device; sampling writes the
 * next tokens into {@link #ids()}.
 */
public final class DecodeState implements AutoCloseable {
    private final Backend backend;
    private final int batch;
    private final Tensor ids;
    private final Tensor positions;
    private final Tensor lens;
    private final Tensor ones;

    /**
     * State for {@code batch} rows.
     *
     * @param backend where it lives (the model's)
     * @param batch   rows
     */
    public DecodeState(Backend backend, int batch) {
        if (batch < 1) {
            throw new IllegalArgumentException("a decode state needs at least one row, got " + batch);
        }
        this.backend = backend;
        this.batch = batch;
        this.ids = backend.zeros(DType.I32, batch);
        this.positions = backend.zeros(DType.I32, batch);
        this.lens = backend.zeros(DType.I32, 2);
        this.ones = backend.zeros(DType.I32, batch, 1);
        backend.fill(ones, 1f);
    }

    /** {@return the rows} */
    public int batch() {
        return batch;
    }

    /** {@return I32 (B): the token each row feeds to the next step (sampling writes here)} */
    public Tensor ids() {
        return ids;
    }

    /** {@return I32 (B): the position of each row's next token} */
    public Tensor positions() {
        return positions;
    }

    /** I32 (1): rows already in the cache before the next step (where its keys are appended). */
    Tensor row() {
        return lens.view(0, 1);
    }

    /** I32 (1): rows in the cache during the next step's attention (row + 1). */
    Tensor cacheLen() {
        return lens.view(1, 1);
    }

    Tensor ones() {
        return ones;
    }

    /**
     * Sets the state from the host (outside a recorded step): the next tokens, their positions and the cache length.
     *
     * @param nextIds     (B) tokens to feed, or null to keep what sampling wrote
     * @param nextPos     (B) their positions
     * @param cacheLength rows already in the KV cache
     */
    public void set(int[] nextIds, int[] nextPos, int cacheLength) {
        if (nextIds != null) {
            backend.upload(nextIds, ids);
        }
        backend.upload(nextPos, positions);
        backend.upload(new int[]{cacheLength, cacheLength + 1}, lens);
    }

    @Override
    public void close() {
        ids.close();
        positions.close();
        lens.close();
        ones.close();
    }
}
