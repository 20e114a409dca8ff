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

    public static DeviceBuffer alloc(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("DeviceBuffer needs a positive size, got " + bytes + " bytes");
        }
        return new DeviceBuffer(CudaDriver.memAlloc(bytes), bytes);
    }

    /** A buffer of {@code data.length} floats holding a copy of {@code data}. */
    public static DeviceBuffer of(float[] data) {
        DeviceBuffer b = alloc(4L * Math.max(1, data.length));
        b.copyFrom(data);
        return b;
    }

    public static DeviceBuffer of(short[] data) {
        DeviceBuffer b = alloc(2L * Math.max(1, data.length));
        b.copyFrom(data);
        return b;
    }

    public static DeviceBuffer of(int[] data) {
        DeviceBuffer b = alloc(4L * Math.max(1, data.length));
        b.copyFrom(data);
        return b;
    }

    /** The CUdeviceptr. */
    public long address() {
        checkOpen();
        return address;
    }

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

    public void copyFrom(MemorySegment host) {
        checkFits(host.byteSize(), "copyFrom");
        CudaDriver.memcpyHtoD(address, host, host.byteSize());
    }

    public void copyTo(MemorySegment host) {
        checkFits(host.byteSize(), "copyTo");
        CudaDriver.memcpyDtoH(host, address, host.byteSize());
    }

    public void copyFrom(float[] src) {
        copyFrom(MemorySegment.ofArray(src));
    }

    public void copyTo(float[] dst) {
        copyTo(MemorySegment.ofArray(dst));
    }

    /** bf16 (or fp16) raw bits. */
    public void copyFrom(short[] src) {
        copyFrom(MemorySegment.ofArray(src));
    }

    public void copyTo(short[] dst) {
        copyTo(MemorySegment.ofArray(dst));
    }

    public void copyFrom(int[] src) {
        copyFrom(MemorySegment.ofArray(src));
    }

    public void copyTo(int[] dst) {
        copyTo(MemorySegment.ofArray(dst));
    }

    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(bytes / JAVA_FLOAT.byteSize())];
        copyTo(out);
        return out;
    }

    public short[] toShortArray() {
        short[] out = new short[Math.toIntExact(bytes / JAVA_SHORT.byteSize())];
        copyTo(out);
        return out;
    }

    public int[] toIntArray() {
        int[] out = new int[Math.toIntExact(bytes / JAVA_INT.byteSize())];
        copyTo(out);
        return out;
    }

    /** Fills every byte with {@code value} (memsetD8). */
    public void fill(byte value) {
        checkOpen();
        CudaDriver.memsetD8(address, value, bytes);
    }

    /** Fills every 32-bit word with the float (e.g. {@code Float.NaN} to poison an output before a launch). */
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
