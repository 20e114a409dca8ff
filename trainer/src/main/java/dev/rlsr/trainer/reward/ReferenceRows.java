package dev.rlsr.trainer.reward;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.util.ArrayDeque;

/**
 * Slots of reference embeddings on a backend: one {@code (capacity, D)} buffer whose rows are handed out and taken
 * back by index, so that the references of a whole batch are gathered from one tensor in one launch. The buffer
 * grows by doubling (the old rows copied over on the device) when every slot is taken; it never shrinks, so a
 * steady training loop stops allocating after its first steps. Not thread-safe (the reward serialises calls).
 */
final class ReferenceRows implements AutoCloseable {
    private static final int FIRST_CAPACITY = 64;

    private final Backend backend;
    private final DType dtype;
    private final int d;
    /** Free slots; after a growth the lowest index is on top, so fresh references fill consecutive rows. */
    private final ArrayDeque<Integer> free = new ArrayDeque<>();
    private Tensor rows;       // (capacity, D), null until the first slot is taken
    private int capacity;

    ReferenceRows(Backend backend, DType dtype, int d) {
        this.backend = backend;
        this.dtype = dtype;
        this.d = d;
    }

    /** A free slot, growing the buffer when there is none. */
    int take() {
        if (free.isEmpty()) {
            grow(Math.max(FIRST_CAPACITY, 2 * capacity));
        }
        return free.pop();
    }

    /** Gives a slot back (its row keeps stale values until it is handed out again). */
    void release(int slot) {
        free.push(slot);
    }

    /** {@return the buffer, (capacity, D); replaced when it grows, so read it after the last take() of a step} */
    Tensor tensor() {
        return rows;
    }

    /** {@return the rows of the buffer} */
    int capacity() {
        return capacity;
    }

    /** {@return the slots in use} */
    int used() {
        return capacity - free.size();
    }

    private void grow(int newCapacity) {
        Tensor bigger = backend.alloc(dtype, newCapacity, d);
        if (rows != null) {
            try {
                backend.copy(rows, bigger.view(0, capacity, d));
            } catch (RuntimeException e) {
                bigger.close();
                throw e;
            }
            rows.close();
        }
        for (int s = newCapacity - 1; s >= capacity; s--) {
            free.push(s);
        }
        rows = bigger;
        capacity = newCapacity;
    }

    @Override
    public void close() {
        if (rows != null) {
            rows.close();
            rows = null;
        }
        free.clear();
        capacity = 0;
    }
}
