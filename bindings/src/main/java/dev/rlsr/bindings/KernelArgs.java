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
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds the {@code void** kernelParams} array of {@code cuLaunchKernel}: one native slot per argument
 * (8-byte aligned, holding the value) and an array of pointers to the slots, in the kernel's parameter order.
 *
 * <pre>{@code
 * try (KernelArgs args = KernelArgs.of().ptr(out).ptr(in).i32(n).f32(scale)) {
 *     CudaDriver.launchKernel(fn, blocks, 1, 1, 256, 1, 1, 0, stream, args);
 * }
 * }</pre>
 * Backed by a confined arena: build, launch and close it on one thread. Values are copied by the driver at
 * launch, so the object may be closed (or appended to and launched again) right after a launch.
 */
public final class KernelArgs implements AutoCloseable {
    private final Arena arena = Arena.ofConfined();
    private final List<MemorySegment> slots = new ArrayList<>();
    private MemorySegment pointerArray;
    private boolean closed;

    private KernelArgs() {}

    public static KernelArgs of() {
        return new KernelArgs();
    }

    private KernelArgs slot(ValueLayout layout, java.util.function.Consumer<MemorySegment> write) {
        if (closed) {
            throw new IllegalStateException("KernelArgs already closed");
        }
        // every slot 8-byte aligned: the driver reads each value with the parameter's own alignment
        MemorySegment s = arena.allocate(Math.max(layout.byteSize(), 8), 8);
        write.accept(s);
        slots.add(s);
        pointerArray = null;
        return this;
    }

    /** A device pointer (CUdeviceptr / {@code T*} parameter). */
    public KernelArgs ptr(long devicePtr) {
        return slot(JAVA_LONG, s -> s.set(JAVA_LONG, 0, devicePtr));
    }

    public KernelArgs ptr(DeviceBuffer buffer) {
        return ptr(buffer.address());
    }

    /** {@code int} / {@code unsigned int}. */
    public KernelArgs i32(int v) {
        return slot(JAVA_INT, s -> s.set(JAVA_INT, 0, v));
    }

    /** {@code long long} / {@code size_t} / {@code int64_t}. */
    public KernelArgs i64(long v) {
        return slot(JAVA_LONG, s -> s.set(JAVA_LONG, 0, v));
    }

    public KernelArgs f32(float v) {
        return slot(JAVA_FLOAT, s -> s.set(JAVA_FLOAT, 0, v));
    }

    public KernelArgs f64(double v) {
        return slot(JAVA_DOUBLE, s -> s.set(JAVA_DOUBLE, 0, v));
    }

    /** A 16-bit value, e.g. the raw bits of a {@code __nv_bfloat16} or {@code __half} parameter. */
    public KernelArgs i16(short v) {
        return slot(JAVA_SHORT, s -> s.set(JAVA_SHORT, 0, v));
    }

    public KernelArgs i8(byte v) {
        return slot(JAVA_BYTE, s -> s.set(JAVA_BYTE, 0, v));
    }

    /** Number of arguments added so far. */
    public int count() {
        return slots.size();
    }

    /** The argument slot {@code i} (for tests and debugging). */
    public MemorySegment slot(int i) {
        return slots.get(i);
    }

    /** The {@code void*[count()]} array pointing at each slot, valid until {@link #close()}. */
    public MemorySegment pointerArray() {
        if (closed) {
            throw new IllegalStateException("KernelArgs already closed");
        }
        if (pointerArray == null) {
            MemorySegment a = arena.allocate(ADDRESS, Math.max(1, slots.size()));
            for (int i = 0; i < slots.size(); i++) {
                a.setAtIndex(ADDRESS, i, slots.get(i));
            }
            pointerArray = a;
        }
        return pointerArray;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
