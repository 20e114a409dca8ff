package dev.rlsr.engine.model;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

import java.util.Arrays;

/**
 * Keys and values of every layer for incremental decoding: per layer K and V of shape (B, capacity, Hkv*D), keys
 * stored after RoPE. All rows advance together (prompts are left-padded), so one {@code length} describes the batch;
 * the key mask (B, capacity) marks padding (0) so it is never attended to. Create with
 * {@link DecoderModel#newKvCache(int, int)}.
 */
public final class KvCache implements AutoCloseable {
    final int batch;
    final int capacity;
    final Tensor[] k;
    final Tensor[] v;
    /** (B, capacity): 1 where a real token was written, 0 for padding or unwritten slots. */
    final int[] keyMask;
    int length;

    KvCache(Backend backend, int layers, int batch, int capacity, int kvWidth) {
        if (batch < 1 || capacity < 1) {
            throw new IllegalArgumentException("KV cache needs batch >= 1 and capacity >= 1, got " + batch + ", "
                    + capacity);
        }
        this.batch = batch;
        this.capacity = capacity;
        this.k = new Tensor[layers];
        this.v = new Tensor[layers];
        for (int l = 0; l < layers; l++) {
            k[l] = backend.zeros(batch, capacity, kvWidth);
            v[l] = backend.zeros(batch, capacity, kvWidth);
        }
        this.keyMask = new int[batch * capacity];
    }

    /** {@return the rows (sequences)} */
    public int batch() {
        return batch;
    }

    /** {@return the positions each row can hold} */
    public int capacity() {
        return capacity;
    }

    /** {@return the positions written so far (the same for every row)} */
    public int length() {
        return length;
    }

    /**
     * Makes this cache hold {@code copies} consecutive copies of every row of {@code src}: row {@code b*copies + c}
     * gets src row b's keys, values and key mask, and the length becomes src's. This is how a prompt is prefilled
     * once and shared by the G samples of its group: the model's arithmetic is unchanged, the copied rows are
     * bit-identical to a prefill of each copy. Needs {@code batch == src.batch * copies} and room for src's length.
     *
     * @param src    a prefilled cache
     * @param copies copies of each row
     */
    public void replicateFrom(KvCache src, int copies) {
        if (copies < 1 || batch != src.batch * copies) {
            throw new IllegalArgumentException("cannot replicate " + src.batch + " rows " + copies + " times into a "
                    + "cache of " + batch + " rows");
        }
        if (src.k.length != k.length || src.length > capacity || src.k[0].numel() / ((long) src.batch * src.capacity)
                != k[0].numel() / ((long) batch * capacity)) {
            throw new IllegalArgumentException("KV caches differ in layers or width, or the source's " + src.length
                    + " positions exceed this cache's capacity " + capacity);
        }
        int width = Math.toIntExact(k[0].numel() / ((long) batch * capacity));
        Backend backend = k[0].backend();
        for (int l = 0; l < k.length; l++) {
            for (int c = 0; c < copies; c++) {
                // viewing dst as src.batch blocks of `copies * capacity` rows, copy c of row b starts at c * capacity
                backend.copyRows(src.k[l], src.capacity, 0, k[l], copies * capacity, c * capacity, src.batch,
                        src.length, width);
                backend.copyRows(src.v[l], src.capacity, 0, v[l], copies * capacity, c * capacity, src.batch,
                        src.length, width);
            }
        }
        Arrays.fill(keyMask, 0);
        for (int b = 0; b < src.batch; b++) {
            for (int c = 0; c < copies; c++) {
                System.arraycopy(src.keyMask, b * src.capacity, keyMask, (b * copies + c) * capacity, src.length);
            }
        }
        length = src.length;
    }

    /** Forgets the contents so the cache can serve another batch of the same size. */
    public void reset() {
        length = 0;
        Arrays.fill(keyMask, 0);
    }

    @Override
    public void close() {
        for (int l = 0; l < k.length; l++) {
            if (k[l] != null) {
                k[l].close();
                v[l].close();
            }
        }
    }
}
