package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Builds the {@code void** kernelParams} array of {@code cuLaunchKernel}: one 8-byte native slot per argument
 * (holding the value) and an array of pointers to the slots, in the kernel's parameter order.
 *
 * <pre>{@code
 * CudaDriver.launchKernel(fn, blocks, 1, 1, 256, 1, 1, 0, stream, KernelArgs.local().ptr(out).ptr(in).i32(n));
 * }</pre>
 *
 * <p>{@link #local()} hands out the calling thread's reusable instance, reset: no allocation per launch, which is
 * what keeps a launch from Java cheap. The driver copies the values at launch, so the instance may be reused right
 * after the launch returns; it must not be kept across launches or shared between threads. {@link #of()} makes a
 * private instance (for code that builds arguments once and launches them several times); closing either kind is
 * harmless (a local instance is simply reset).
 */
public final class KernelArgs implements AutoCloseable {
    /** Most kernel parameters one launch can take. */
    public static final int MAX_ARGS = 48;
    private static final ThreadLocal<KernelArgs> LOCAL = ThreadLocal.withInitial(() -> new KernelArgs(true));

    private final Arena arena;
    private final boolean local;
    private final MemorySegment slots;
    private final MemorySegment pointerArray;
    private final long pointerArrayAddress;
    private int count;
    private boolean closed;

    private KernelArgs(boolean local) {
        this.local = local;
        // a local instance lives as long as its thread; the automatic arena frees it after the thread is gone
        this.arena = local ? Arena.ofAuto() : Arena.ofShared();
        this.slots = arena.allocate(8L * MAX_ARGS, 8);
        this.pointerArray = arena.allocate(ADDRESS, MAX_ARGS);
        for (int i = 0; i < MAX_ARGS; i++) {
            pointerArray.setAtIndex(ADDRESS, i, slots.asSlice(8L * i, 8));
        }
        this.pointerArrayAddress = pointerArray.address();
    }

    /** The calling thread's reusable instance, emptied. */
    public static KernelArgs local() {
        KernelArgs a = LOCAL.get();
        a.count = 0;
        return a;
    }

    /** A private instance (its own native memory until {@link #close()}). */
    public static KernelArgs of() {
        return new KernelArgs(false);
    }

    private long next() {
        if (closed) {
            throw new IllegalStateException("KernelArgs already closed");
        }
        if (count == MAX_ARGS) {
            throw new IllegalStateException("a kernel launch takes at most " + MAX_ARGS + " arguments");
        }
        return 8L * count++;
    }

    /** A device pointer (CUdeviceptr / {@code T*} parameter). */
    public KernelArgs ptr(long devicePtr) {
        slots.set(JAVA_LONG, next(), devicePtr);
        return this;
    }

    public KernelArgs ptr(DeviceBuffer buffer) {
        return ptr(buffer.address());
    }

    /** {@code int} / {@code unsigned int}. */
    public KernelArgs i32(int v) {
        slots.set(JAVA_INT, next(), v);
        return this;
    }

    /** {@code long long} / {@code size_t} / {@code int64_t}. */
    public KernelArgs i64(long v) {
        slots.set(JAVA_LONG, next(), v);
        return this;
    }

    public KernelArgs f32(float v) {
        slots.set(JAVA_FLOAT, next(), v);
        return this;
    }

    public KernelArgs f64(double v) {
        slots.set(JAVA_DOUBLE, next(), v);
        return this;
    }

    /** A 16-bit value, e.g. the raw bits of a {@code __nv_bfloat16} or {@code __half} parameter. */
    public KernelArgs i16(short v) {
        slots.set(JAVA_SHORT, next(), v);
        return this;
    }

    public KernelArgs i8(byte v) {
        slots.set(JAVA_BYTE, next(), v);
        return this;
    }

    /** Number of arguments added so far. */
    public int count() {
        return count;
    }

    /** The argument slot {@code i} (for tests and debugging). */
    public MemorySegment slot(int i) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("argument " + i + " of " + count);
        }
        return slots.asSlice(8L * i, 8);
    }

    /**
     * The address of the {@code void*[]} array pointing at each slot, what {@code cuLaunchKernel} takes; unlike
     * {@link #pointerArray()} this allocates nothing.
     *
     * @return the native address of the pointer array
     */
    public long pointerArrayAddress() {
        if (closed) {
            throw new IllegalStateException("KernelArgs already closed");
        }
        return pointerArrayAddress;
    }

    /** The {@code void*[count()]} array pointing at each slot (one entry when there are no arguments). */
    public MemorySegment pointerArray() {
        if (closed) {
            throw new IllegalStateException("KernelArgs already closed");
        }
        return pointerArray.asSlice(0, ADDRESS.byteSize() * Math.max(1, count));
    }

    @Override
    public void close() {
        if (local) {
            count = 0;
        } else if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
