package dev.rlsr.engine.model;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

/**
 * Keys and values of every layer for incremental decoding, on the model's backend: per layer K and V of shape
 * (B, capacity, Hkv*D) in the compute dtype, keys stored after RoPE. All rows advance together (prompts are
 * left-padded), so one {@code length} describes the batch; the I32 key mask (B, capacity) marks padding (0) so it is
 * never attended to. Create with {@link DecoderModel#newKvCache(int, int)}.
 */
public final class KvCache implements AutoCloseable {
    final int batch;
    final int capacity;
    final Tensor[] k;
    final Tensor[] v;
    /** I32 (B, capacity): 1 where a real token was written, 0 for padding or unwritten slots. */
    final Tensor keyMask;
    final int width;
    int length;
    private final Backend backend;

    KvCache(Backend backend, DType act, int layers, int batch, int capacity, int kvWidth) {
        if (batch < 1 || capacity < 1) {
            throw new IllegalArgumentException("KV cache needs batch >= 1 and capacity >= 1, got " + batch + ", "
                    + capacity);
        }
        this.backend = backend;
        this.batch = batch;
        this.capacity = capacity;
        this.width = kvWidth;
        this.k = new Tensor[layers];
        this.v = new Tensor[layers];
        for (int l = 0; l < layers; l++) {
            k[l] = backend.zeros(act, batch, capacity, kvWidth);
            v[l] = backend.zeros(act, batch, capacity, kvWidth);
        }
        this.keyMask = backend.zeros(DType.I32, batch, capacity);
    }

    /** {@return rows} */
    public int batch() {
        return batch;
    }

    /** {@return positions each row can hold} */
    public int capacity() {
        return capacity;
    }

    /** {@return positions written so far (the same for every row)} */
    public int length() {
        return length;
    }

    /**
     * Makes this cache hold {@code copies} consecutive copies of every row of {@code src}: row {@code b*copies + c}
     * gets src row b's keys, values and key mask, and the length becomes src's. This is how a prompt is prefilled
     * once and shared by the G samples of its group: the model's arithmetic is unchanged, the copied rows are
     * bit-identical to a prefill of each copy. Needs {@code batch == src.batch * copies} and room for src's length.
     *
     * @param src    the prefilled cache
     * @param copies copies of each row
     */
    public void replicateFrom(KvCache src, int copies) {
        if (copies < 1 || batch != src.batch * copies) {
            throw new IllegalArgumentException("cannot replicate " + src.batch + " rows " + copies + " times into a "
                    + "cache of " + batch + " rows");
        }
        if (src.k.length != k.length || src.length > capacity || src.width != width) {
            throw new IllegalArgumentException("KV caches differ in layers or width, or the source's " + src.length
                    + " positions exceed this cache's capacity " + capacity);
        }
        backend.fill(keyMask, 0f);
        if (src.length == 0) {
            length = 0;
            return;
        }
        for (int c = 0; c < copies; c++) {
            // viewing dst as src.batch blocks of `copies * capacity` rows, copy c of row b starts at c * capacity
            for (int l = 0; l < k.length; l++) {
                backend.copyRows(src.k[l], src.capacity, 0, k[l], copies * capacity, c * capacity, src.batch,
                        src.length, width);
                backend.copyRows(src.v[l], src.capacity, 0, v[l], copies * capacity, c * capacity, src.batch,
                        src.length, width);
            }
            backend.copyRows(src.keyMask, src.capacity, 0, keyMask, copies * capacity, c * capacity, src.batch,
                    src.length, 1);
        }
        length = src.length;
    }

    /**
     * Records on the host that {@code steps} tokens per row were appended on the device (by
     * {@link DecoderModel#decodeStep}, which advances the device-side length itself).
     *
     * @param steps tokens per row appended
     */
    public void advance(int steps) {
        if (steps < 0 || length + steps > capacity) {
            throw new IllegalArgumentException("cannot advance a KV cache of " + length + " positions by " + steps
                    + " (capacity " + capacity + ")");
        }
        length += steps;
    }

    /** Forgets the contents so the cache can serve another batch of the same size. */
    public void reset() {
        length = 0;
        backend.fill(keyMask, 0f);
    }

    @Override
    public void close() {
        for (int l = 0; l < k.length; l++) {
            if (k[l] != null) {
                k[l].close();
                v[l].close();
            }
        }
        keyMask.close();
    }
}
