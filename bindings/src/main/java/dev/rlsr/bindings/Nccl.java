package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;

/**
 * NCCL (libnccl.so.2) collectives. Communicators are {@code long} handles (ncclComm_t); buffers are device
 * pointers; {@code count} is in elements of {@code dataType}. Collectives are asynchronous on the stream.
 * Several ranks driven from one thread (one communicator per GPU) must be wrapped in
 * {@link #groupStart()}/{@link #groupEnd()}.
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class Nccl {
    private Nccl() {}

    // ncclDataType_t
    /** {@code ncclDataType_t}: int8. */
    public static final int ncclInt8 = 0;
    /** {@code ncclDataType_t}: uint8. */
    public static final int ncclUint8 = 1;
    /** {@code ncclDataType_t}: int32. */
    public static final int ncclInt32 = 2;
    /** {@code ncclDataType_t}: uint32. */
    public static final int ncclUint32 = 3;
    /** {@code ncclDataType_t}: int64. */
    public static final int ncclInt64 = 4;
    /** {@code ncclDataType_t}: uint64. */
    public static final int ncclUint64 = 5;
    /** {@code ncclDataType_t}: fp16. */
    public static final int ncclFloat16 = 6;
    /** {@code ncclDataType_t}: fp32. */
    public static final int ncclFloat32 = 7;
    /** {@code ncclDataType_t}: fp64. */
    public static final int ncclFloat64 = 8;
    /** {@code ncclDataType_t}: bf16. */
    public static final int ncclBfloat16 = 9;
    // ncclRedOp_t
    /** {@code ncclRedOp_t}: sum. */
    public static final int ncclSum = 0;
    /** {@code ncclRedOp_t}: product. */
    public static final int ncclProd = 1;
    /** {@code ncclRedOp_t}: maximum. */
    public static final int ncclMax = 2;
    /** {@code ncclRedOp_t}: minimum. */
    public static final int ncclMin = 3;
    /** {@code ncclRedOp_t}: average. */
    public static final int ncclAvg = 4;
    // ncclResult_t
    /** {@code ncclResult_t}: success. */
    public static final int ncclSuccess = 0;

    /** NCCL_UNIQUE_ID_BYTES: ncclUniqueId is {@code struct { char internal[128]; }}, passed by value. */
    public static final int UNIQUE_ID_BYTES = 128;
    static final MemoryLayout UNIQUE_ID = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, JAVA_BYTE).withName("internal"));

    private static final String LIB = "nccl";

    private static SymbolLookup lib() {
        return NativeLibrary.load(LIB, "rlsr.lib.nccl", "libnccl.so.2");
    }

    private static NativeFunction fn(FunctionDescriptor fd, String name) {
        return new NativeFunction(LIB, Nccl::lib, fd, name);
    }

    private static FunctionDescriptor res(MemoryLayout... args) {
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    // const char* ncclGetErrorString(ncclResult_t result)
    private static final NativeFunction ncclGetErrorString =
            fn(FunctionDescriptor.of(ADDRESS, JAVA_INT), "ncclGetErrorString");
    // ncclResult_t ncclGetVersion(int *version)
    private static final NativeFunction ncclGetVersion = fn(res(ADDRESS), "ncclGetVersion");
    // ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId)
    private static final NativeFunction ncclGetUniqueId = fn(res(ADDRESS), "ncclGetUniqueId");
    // ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank)
    private static final NativeFunction ncclCommInitRank =
            fn(res(ADDRESS, JAVA_INT, UNIQUE_ID, JAVA_INT), "ncclCommInitRank");
    // ncclResult_t ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist)
    private static final NativeFunction ncclCommInitAll = fn(res(ADDRESS, JAVA_INT, ADDRESS), "ncclCommInitAll");
    // ncclResult_t ncclCommDestroy(ncclComm_t comm)
    private static final NativeFunction ncclCommDestroy = fn(res(ADDRESS), "ncclCommDestroy");
    // ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
    //     ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream)
    private static final NativeFunction ncclAllReduce =
            fn(res(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS), "ncclAllReduce");
    // ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
    //     int root, ncclComm_t comm, cudaStream_t stream)
    private static final NativeFunction ncclBroadcast =
            fn(res(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS), "ncclBroadcast");
    // ncclResult_t ncclGroupStart(void)
    private static final NativeFunction ncclGroupStart = fn(res(), "ncclGroupStart");
    // ncclResult_t ncclGroupEnd(void)
    private static final NativeFunction ncclGroupEnd = fn(res(), "ncclGroupEnd");

    /** {@return true when libnccl loads}; never throws. */
    public static boolean isAvailable() {
        return NativeLibrary.isLoadable(LIB, "rlsr.lib.nccl", "libnccl.so.2");
    }

    /**
     * {@code ncclGetErrorString}.
     *
     * @param result an {@code ncclResult_t}
     * @return its description, or "ncclResult_t N" when NCCL cannot say
     */
    public static String getErrorString(int result) {
        try {
            MemorySegment s = (MemorySegment) ncclGetErrorString.handle().invokeExact(result);
            return s.address() == 0 ? "ncclResult_t " + result : s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return "ncclResult_t " + result;
        }
    }

    static String resultName(int result) {
        return switch (result) {
            case 0 -> "ncclSuccess";
            case 1 -> "ncclUnhandledCudaError";
            case 2 -> "ncclSystemError";
            case 3 -> "ncclInternalError";
            case 4 -> "ncclInvalidArgument";
            case 5 -> "ncclInvalidUsage";
            case 6 -> "ncclRemoteError";
            case 7 -> "ncclInProgress";
            default -> "ncclResult_t " + result;
        };
    }

    private static void check(NativeFunction f, int result) {
        if (result != ncclSuccess) {
            throw new CudaException(f.name(), result, resultName(result), getErrorString(result));
        }
    }

    /** {@return the NCCL version code, e.g. 22703 for 2.27.3} */
    public static int version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(ncclGetVersion, (int) ncclGetVersion.handle().invokeExact(out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /** {@return a new unique id (128 bytes) for {@link #commInitRank}}; rank 0 makes it and sends it to the others. */
    public static byte[] getUniqueId() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment id = arena.allocate(UNIQUE_ID);
            check(ncclGetUniqueId, (int) ncclGetUniqueId.handle().invokeExact(id));
            return id.toArray(JAVA_BYTE);
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * One rank of an {@code nranks} communicator; the calling thread's current device is this rank's GPU.
     *
     * @param nranks   ranks in the communicator
     * @param uniqueId the id from {@link #getUniqueId()} on rank 0, the same on every rank
     * @param rank     this rank, 0 .. nranks-1
     * @return the {@code ncclComm_t}
     */
    public static long commInitRank(int nranks, byte[] uniqueId, int rank) {
        if (uniqueId == null || uniqueId.length != UNIQUE_ID_BYTES) {
            throw new IllegalArgumentException("an NCCL unique id has " + UNIQUE_ID_BYTES + " bytes");
        }
        if (rank < 0 || rank >= nranks) {
            throw new IllegalArgumentException("rank " + rank + " outside 0.." + (nranks - 1));
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            MemorySegment id = arena.allocate(UNIQUE_ID);
            MemorySegment.copy(uniqueId, 0, id, JAVA_BYTE, 0, UNIQUE_ID_BYTES);
            check(ncclCommInitRank, (int) ncclCommInitRank.handle().invokeExact(out, nranks, id, rank));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * One communicator per listed device, all in this process.
     *
     * @param devices CUDA device ordinals
     * @return the communicators, in the order of {@code devices}
     */
    public static long[] commInitAll(int[] devices) {
        if (devices == null || devices.length == 0) {
            throw new IllegalArgumentException("commInitAll needs at least one device");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment comms = arena.allocate(ADDRESS, devices.length);
            MemorySegment devs = arena.allocateFrom(JAVA_INT, devices);
            check(ncclCommInitAll, (int) ncclCommInitAll.handle().invokeExact(comms, devices.length, devs));
            long[] out = new long[devices.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = comms.getAtIndex(ADDRESS, i).address();
            }
            return out;
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Destroys a communicator.
     *
     * @param comm an {@code ncclComm_t}
     */
    public static void commDestroy(long comm) {
        try {
            check(ncclCommDestroy, (int) ncclCommDestroy.handle().invokeExact(MemorySegment.ofAddress(comm)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * {@code recv = op over ranks of send}; in place when {@code send == recv}. Asynchronous on {@code stream}.
     *
     * @param send     device address of this rank's input
     * @param recv     device address of the result (may equal {@code send})
     * @param count    elements of {@code dataType}
     * @param dataType an {@code ncclDataType_t} constant
     * @param op       an {@code ncclRedOp_t} constant
     * @param comm     the communicator
     * @param stream   a CUstream of this rank's device
     */
    public static void allReduce(long send, long recv, long count, int dataType, int op, long comm, long stream) {
        try {
            check(ncclAllReduce, (int) ncclAllReduce.handle().invokeExact(send, recv, count, dataType, op,
                    MemorySegment.ofAddress(comm), MemorySegment.ofAddress(stream)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Copies {@code count} elements of {@code send} on rank {@code root} to {@code recv} on every rank. Asynchronous on
     * {@code stream}.
     *
     * @param send     device address of the data on the root (ignored on the other ranks)
     * @param recv     device address that receives it on every rank
     * @param count    elements of {@code dataType}
     * @param dataType an {@code ncclDataType_t} constant
     * @param root     the sending rank
     * @param comm     the communicator
     * @param stream   a CUstream of this rank's device
     */
    public static void broadcast(long send, long recv, long count, int dataType, int root, long comm, long stream) {
        try {
            check(ncclBroadcast, (int) ncclBroadcast.handle().invokeExact(send, recv, count, dataType, root,
                    MemorySegment.ofAddress(comm), MemorySegment.ofAddress(stream)));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /** Starts a group of NCCL calls (needed when one thread drives several ranks); end it with {@link #groupEnd()}. */
    public static void groupStart() {
        try {
            check(ncclGroupStart, (int) ncclGroupStart.handle().invokeExact());
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /** Ends a group started with {@link #groupStart()}: the grouped collectives are launched together. */
    public static void groupEnd() {
        try {
            check(ncclGroupEnd, (int) ncclGroupEnd.handle().invokeExact());
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }
}
