package dev.rlsr.engine.cuda;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaException;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * A caching device allocator (the idea of PyTorch's): a freed block goes to a free list of its size class instead
 * of back to the driver, and the next request of that class takes it, so a training loop whose shapes repeat calls
 * {@code cuMemAlloc} only during its first step. Size classes: multiples of 512 bytes up to 1 MiB, multiples of
 * 2 MiB above. Blocks are reused in stream order: every allocation of a backend is used on that backend's one stream,
 * so a block freed while queued kernels still read it is only handed to work queued after them. When the driver is
 * out of memory the cache is returned to it and the request retried once. Not thread-safe on its own; the backend
 * serialises calls.
 */
final class CudaAllocator {
    private static final long SMALL = 512, LARGE = 2L << 20, SMALL_LIMIT = 1L << 20;

    private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
    /** Blocks released while a graph was being captured: the graph still uses them, so they wait for its close. */
    private java.util.List<long[]> captured;
    private long inUse;
    private long cached;
    private long peak;
    private long driverAllocs;

    static long sizeClass(long bytes) {
        long b = Math.max(bytes, 1);
        return b <= SMALL_LIMIT ? (b + SMALL - 1) / SMALL * SMALL : (b + LARGE - 1) / LARGE * LARGE;
    }

    /** A block of at least {@code bytes}; its size class is what {@link #release} must be given back. */
    long allocate(long bytes) {
        long size = sizeClass(bytes);
        ArrayDeque<Long> list = free.get(size);
        long ptr;
        if (list != null && !list.isEmpty()) {
            ptr = list.pop();
            cached -= size;
        } else {
            ptr = driverAlloc(size);
        }
        inUse += size;
        peak = Math.max(peak, inUse);
        return ptr;
    }

    private long driverAlloc(long size) {
        try {
            driverAllocs++;
            return CudaDriver.memAlloc(size);
        } catch (CudaException e) {
            if (cached == 0) {
                throw outOfMemory(size, e);
            }
            emptyCache();
            try {
                driverAllocs++;
                return CudaDriver.memAlloc(size);
            } catch (CudaException again) {
                throw outOfMemory(size, again);
            }
        }
    }

    private CudaOutOfMemoryException outOfMemory(long size, CudaException cause) {
        long[] info;
        try {
            info = CudaDriver.memInfo();
        } catch (RuntimeException e) {
            info = new long[]{-1, -1};
        }
        return new CudaOutOfMemoryException("the GPU is out of memory: a request for " + mib(size) + " failed with "
                + mib(inUse) + " held by this process (peak " + mib(peak) + "), " + mib(info[0]) + " free of "
                + mib(info[1]) + " on the device", cause);
    }

    static String mib(long bytes) {
        return bytes < 0 ? "?" : String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }

    /** Returns a block to the cache (not to the driver); during a capture, to the graph being captured. */
    void release(long ptr, long sizeClass) {
        if (captured != null) {
            captured.add(new long[]{ptr, sizeClass});
            return;
        }
        free.computeIfAbsent(sizeClass, k -> new ArrayDeque<>()).push(ptr);
        inUse -= sizeClass;
        cached += sizeClass;
    }

    /**
     * From now until {@link #endCapture}, released blocks are kept for the graph being captured (its replays keep
     * using their addresses) instead of going back to the cache.
     */
    void beginCapture() {
        if (captured != null) {
            throw new IllegalStateException("a graph is already being captured on this backend");
        }
        captured = new java.util.ArrayList<>();
    }

    /** Ends the capture scope; returns the blocks the graph owns, to {@link #release} when the graph is closed. */
    java.util.List<long[]> endCapture() {
        java.util.List<long[]> owned = captured;
        captured = null;
        return owned == null ? java.util.List.of() : owned;
    }

    /** Whether the allocator would have to call the driver for {@code bytes} (nothing of its class is cached). */
    boolean wouldAllocate(long bytes) {
        ArrayDeque<Long> list = free.get(sizeClass(bytes));
        return list == null || list.isEmpty();
    }

    /** Gives every cached block back to the driver ({@code cuMemFree} synchronises the device). */
    void emptyCache() {
        for (ArrayDeque<Long> list : free.values()) {
            for (long p : list) {
                CudaDriver.memFree(p);
            }
        }
        free.clear();
        cached = 0;
    }

    /** Bytes handed out and not released. */
    long inUse() {
        return inUse;
    }

    /** Bytes held in the cache. */
    long cached() {
        return cached;
    }

    /** Highest {@link #inUse()} so far. */
    long peak() {
        return peak;
    }

    /** Number of {@code cuMemAlloc} calls so far. */
    long driverAllocations() {
        return driverAllocs;
    }

    void resetPeak() {
        peak = inUse;
    }
}
