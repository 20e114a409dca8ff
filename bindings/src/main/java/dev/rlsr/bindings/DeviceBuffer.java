package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemorySegment;

/**
 * Device memory from {@code cuMemAlloc_v2} in the current context, freed on {@link #close()}.
 * The copy helpers are synchronous (legacy default stream); bf16 tensors travel as {@code short[]} bits.
 */
public final class DeviceBuffer implements AutoCloseable {
    private final long address;
    private final long bytes;
    private boolean closed;

    private DeviceBuffer(long address, long bytes) {
        this.address = address;
        this.bytes = bytes;
    }

    /**
     * Uninitialised device memory in the current context.
     *
     * @param bytes size, &gt; 0
     * @return the buffer; close it to free the memory
     */
    public static DeviceBuffer alloc(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("DeviceBuffer needs a positive size, got " + bytes + " bytes");
        }
        return new DeviceBuffer(CudaDriver.memAlloc(bytes), bytes);
    }

    /**
     * A buffer of {@code data.length} floats holding a copy of {@code data}.
     *
     * @param data the values
     * @return the buffer (at least 4 bytes, also for an empty array)
     */
    public static DeviceBuffer of(float[] data) {
        DeviceBuffer b = alloc(4L * Math.max(1, data.length));
        b.copyFrom(data);
        return b;
    }

    /**
     * A buffer of {@code data.length} 16-bit values (e.g. bf16 bits) holding a copy of {@code data}.
     *
     * @param data the values
     * @return the buffer (at least 2 bytes, also for an empty array)
     */
    public static DeviceBuffer of(short[] data) {
        DeviceBuffer b = alloc(2L * Math.max(1, data.length));
        b.copyFrom(data);
        return b;
    }

    /**
     * A buffer of {@code data.length} int32 values (e.g. token ids) holding a copy of {@code data}.
     *
     * @param data the values
     * @return the buffer (at least 4 bytes, also for an empty array)
     */
    public static DeviceBuffer of(int[] data) {
        DeviceBuffer b = alloc(4L * Math.max(1, data.length));
        b.copyFrom(data);
        return b;
    }

    /** {@return the CUdeviceptr}, for kernel arguments. */
    public long address() {
        checkOpen();
        return address;
    }

    /** {@return the size in bytes} */
    public long bytes() {
        return bytes;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("DeviceBuffer already freed");
        }
    }

    private void checkFits(long n, String what) {
        checkOpen();
        if (n > bytes) {
            throw new IllegalArgumentException(what + " of " + n + " bytes does not fit a buffer of " + bytes + " bytes");
        }
    }

    /**
     * Copies {@code host} into the start of the buffer (synchronous).
     *
     * @param host native or heap memory, at most {@link #bytes()} long
     */
    public void copyFrom(MemorySegment host) {
        checkFits(host.byteSize(), "copyFrom");
        CudaDriver.memcpyHtoD(address, host, host.byteSize());
    }

    /**
     * Copies the start of the buffer into {@code host} (synchronous).
     *
     * @param host native or heap memory, at most {@link #bytes()} long
     */
    public void copyTo(MemorySegment host) {
        checkFits(host.byteSize(), "copyTo");
        CudaDriver.memcpyDtoH(host, address, host.byteSize());
    }

    /**
     * Copies floats into the start of the buffer.
     *
     * @param src at most {@code bytes() / 4} values
     */
    public void copyFrom(float[] src) {
        copyFrom(MemorySegment.ofArray(src));
    }

    /**
     * Copies the start of the buffer into {@code dst}.
     *
     * @param dst receives {@code dst.length} floats, at most {@code bytes() / 4}
     */
    public void copyTo(float[] dst) {
        copyTo(MemorySegment.ofArray(dst));
    }

    /**
     * Copies 16-bit values (bf16 or fp16 raw bits) into the start of the buffer.
     *
     * @param src at most {@code bytes() / 2} values
     */
    public void copyFrom(short[] src) {
        copyFrom(MemorySegment.ofArray(src));
    }

    /**
     * Copies the start of the buffer into {@code dst} as 16-bit values.
     *
     * @param dst receives {@code dst.length} values, at most {@code bytes() / 2}
     */
    public void copyTo(short[] dst) {
        copyTo(MemorySegment.ofArray(dst));
    }

    /**
     * Copies int32 values into the start of the buffer.
     *
     * @param src at most {@code bytes() / 4} values
     */
    public void copyFrom(int[] src) {
        copyFrom(MemorySegment.ofArray(src));
    }

    /**
     * Copies the start of the buffer into {@code dst} as int32 values.
     *
     * @param dst receives {@code dst.length} values, at most {@code bytes() / 4}
     */
    public void copyTo(int[] dst) {
        copyTo(MemorySegment.ofArray(dst));
    }

    /** {@return the whole buffer read as floats} */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(bytes / JAVA_FLOAT.byteSize())];
        copyTo(out);
        return out;
    }

    /** {@return the whole buffer read as 16-bit values} */
    public short[] toShortArray() {
        short[] out = new short[Math.toIntExact(bytes / JAVA_SHORT.byteSize())];
        copyTo(out);
        return out;
    }

    /** {@return the whole buffer read as int32 values} */
    public int[] toIntArray() {
        int[] out = new int[Math.toIntExact(bytes / JAVA_INT.byteSize())];
        copyTo(out);
        return out;
    }

    /**
     * Fills every byte with {@code value} (memsetD8).
     *
     * @param value the byte
     */
    public void fill(byte value) {
        checkOpen();
        CudaDriver.memsetD8(address, value, bytes);
    }

    /**
     * Fills every 32-bit word with the float (e.g. {@code Float.NaN} to poison an output before a launch).
     *
     * @param value the float
     */
    public void fill(float value) {
        checkOpen();
        CudaDriver.memsetD32(address, Float.floatToRawIntBits(value), bytes / 4);
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            CudaDriver.memFree(address);
        }
    }
}
