package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;

/**
 * CUDA driver API (libcuda.so.1) through FFM. Every call is checked; a failure throws {@link CudaException}
 * naming the function with {@code cuGetErrorName}/{@code cuGetErrorString}, e.g.
 * {@code cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)}.
 *
 * <p>Types at the edge: CUresult/CUdevice are {@code int}; CUdeviceptr and every handle (CUcontext,
 * CUstream, CUevent, CUmodule, CUfunction, CUgraph, CUgraphExec) are {@code long} addresses, so handles
 * created by other JVM CUDA code can be passed in. Stream 0 is the legacy default stream.
 *
 * <p>The {@code _v2} symbols are bound explicitly, as cuda.h's macros would (cuMemAlloc -> cuMemAlloc_v2,
 * cuEventElapsedTime -> cuEventElapsedTime_v2 since CUDA 13, ...). The current context is per thread:
 * a thread that did not create the context must call {@link #contextSetCurrent} before using it.
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class CudaDriver {
    private CudaDriver() {}

    // ---- CUdevice_attribute (cuda.h, CUDA 13.0) --------------------------------------------------------
    public static final int CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8;
    public static final int CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12;
    public static final int CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13;
    public static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public static final int CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
    public static final int CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36;
    public static final int CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;
    public static final int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39;
    public static final int CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    // ---- CUfunction_attribute ---------------------------------------------------------------------------
    public static final int CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
    public static final int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;
    public static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    public static final int CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9;

    // ---- flags and modes -------------------------------------------------------------------------------
    public static final int CU_STREAM_DEFAULT = 0x0;
    public static final int CU_STREAM_NON_BLOCKING = 0x1;
    public static final int CU_EVENT_DEFAULT = 0x0;
    public static final int CU_EVENT_BLOCKING_SYNC = 0x1;
    public static final int CU_EVENT_DISABLE_TIMING = 0x2;
    public static final int CU_STREAM_CAPTURE_MODE_GLOBAL = 0;
    public static final int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    public static final int CU_STREAM_CAPTURE_MODE_RELAXED = 2;

    // ---- CUresult values the Java side reacts to -------------------------------------------------------
    public static final int CUDA_SUCCESS = 0;
    public static final int CUDA_ERROR_NOT_INITIALIZED = 3;
    public static final int CUDA_ERROR_NO_DEVICE = 100;

    private static final String LIB = "cuda";

    private static SymbolLookup lib() {
        return NativeLibrary.load(LIB, "rlsr.lib.cuda", "libcuda.so.1");
    }

    private static NativeFunction fn(FunctionDescriptor fd, String... names) {
        return new NativeFunction(LIB, CudaDriver::lib, fd, names);
    }

    private static FunctionDescriptor res(java.lang.foreign.MemoryLayout... args) {
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    // CUresult cuGetErrorName(CUresult error, const char **pStr)
    private static final NativeFunction cuGetErrorName = fn(res(JAVA_INT, ADDRESS), "cuGetErrorName");
    // CUresult cuGetErrorString(CUresult error, const char **pStr)
    private static final NativeFunction cuGetErrorString = fn(res(JAVA_INT, ADDRESS), "cuGetErrorString");
    // CUresult cuInit(unsigned int Flags)
    private static final NativeFunction cuInit = fn(res(JAVA_INT), "cuInit");
    // CUresult cuDriverGetVersion(int *driverVersion)
    private static final NativeFunction cuDriverGetVersion = fn(res(ADDRESS), "cuDriverGetVersion");
    // CUresult cuDeviceGetCount(int *count)
    private static final NativeFunction cuDeviceGetCount = fn(res(ADDRESS), "cuDeviceGetCount");
    // CUresult cuDeviceGet(CUdevice *device, int ordinal)
    private static final NativeFunction cuDeviceGet = fn(res(ADDRESS, JAVA_INT), "cuDeviceGet");
    // CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
    private static final NativeFunction cuDeviceGetName = fn(res(ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetName");
    // CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
    private static final NativeFunction cuDeviceGetAttribute =
            fn(res(ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetAttribute");
    // CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
    private static final NativeFunction cuDeviceTotalMem = fn(res(ADDRESS, JAVA_INT), "cuDeviceTotalMem_v2");
    // CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
    private static final NativeFunction cuDevicePrimaryCtxRetain =
            fn(res(ADDRESS, JAVA_INT), "cuDevicePrimaryCtxRetain");
    // CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
    private static final NativeFunction cuDevicePrimaryCtxRelease = fn(res(JAVA_INT), "cuDevicePrimaryCtxRelease_v2");
    // CUresult cuCtxSetCurrent(CUcontext ctx)
    private static final NativeFunction cuCtxSetCurrent = fn(res(ADDRESS), "cuCtxSetCurrent");
    // CUresult cuCtxGetCurrent(CUcontext *pctx)
    private static final NativeFunction cuCtxGetCurrent = fn(res(ADDRESS), "cuCtxGetCurrent");
    // CUresult cuCtxGetDevice(CUdevice *device)
    private static final NativeFunction cuCtxGetDevice = fn(res(ADDRESS), "cuCtxGetDevice");
    // CUresult cuCtxSynchronize(void)
    private static final NativeFunction cuCtxSynchronize = fn(res(), "cuCtxSynchronize");
    // CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
    private static final NativeFunction cuMemGetInfo = fn(res(ADDRESS, ADDRESS), "cuMemGetInfo_v2");
    // CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
    private static final NativeFunction cuMemAlloc = fn(res(ADDRESS, JAVA_LONG), "cuMemAlloc_v2");
    // CUresult cuMemFree_v2(CUdeviceptr dptr)
    private static final NativeFunction cuMemFree = fn(res(JAVA_LONG), "cuMemFree_v2");
    // CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
    private static final NativeFunction cuMemAllocHost = fn(res(ADDRESS, JAVA_LONG), "cuMemAllocHost_v2");
    // CUresult cuMemFreeHost(void *p)
    private static final NativeFunction cuMemFreeHost = fn(res(ADDRESS), "cuMemFreeHost");
    // CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
    private static final NativeFunction cuMemcpyHtoD = fn(res(JAVA_LONG, ADDRESS, JAVA_LONG), "cuMemcpyHtoD_v2");
    // CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
    private static final NativeFunction cuMemcpyDtoH = fn(res(ADDRESS, JAVA_LONG, JAVA_LONG), "cuMemcpyDtoH_v2");
    // CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)
    private static final NativeFunction cuMemcpyDtoD = fn(res(JAVA_LONG, JAVA_LONG, JAVA_LONG), "cuMemcpyDtoD_v2");
    // CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)
    private static final NativeFunction cuMemcpyHtoDAsync =
            fn(res(JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS), "cuMemcpyHtoDAsync_v2");
    // CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
    private static final NativeFunction cuMemcpyDtoHAsync =
            fn(res(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS), "cuMemcpyDtoHAsync_v2");
    // CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
    private static final NativeFunction cuMemcpyDtoDAsync =
            fn(res(JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS), "cuMemcpyDtoDAsync_v2");
    // CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
    // (unsigned char is passed as a zero-extended int: same register, no sign-extension surprise)
    private static final NativeFunction cuMemsetD8 = fn(res(JAVA_LONG, JAVA_INT, JAVA_LONG), "cuMemsetD8_v2");
    // CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N)
    private static final NativeFunction cuMemsetD32 = fn(res(JAVA_LONG, JAVA_INT, JAVA_LONG), "cuMemsetD32_v2");
    // CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
    private static final NativeFunction cuMemsetD8Async =
            fn(res(JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS), "cuMemsetD8Async");
    // CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream)
    private static final NativeFunction cuMemsetD32Async =
            fn(res(JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS), "cuMemsetD32Async");
    // CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
    private static final NativeFunction cuStreamCreate = fn(res(ADDRESS, JAVA_INT), "cuStreamCreate");
    // CUresult cuStreamDestroy_v2(CUstream hStream)
    private static final NativeFunction cuStreamDestroy = fn(res(ADDRESS), "cuStreamDestroy_v2");
    // CUresult cuStreamSynchronize(CUstream hStream)
    private static final NativeFunction cuStreamSynchronize = fn(res(ADDRESS), "cuStreamSynchronize");
    // CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
    private static final NativeFunction cuStreamWaitEvent = fn(res(ADDRESS, ADDRESS, JAVA_INT), "cuStreamWaitEvent");
    // CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
    private static final NativeFunction cuEventCreate = fn(res(ADDRESS, JAVA_INT), "cuEventCreate");
    // CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
    private static final NativeFunction cuEventRecord = fn(res(ADDRESS, ADDRESS), "cuEventRecord");
    // CUresult cuEventSynchronize(CUevent hEvent)
    private static final NativeFunction cuEventSynchronize = fn(res(ADDRESS), "cuEventSynchronize");
    // CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)   (CUDA 13 name;
    // drivers before 12.8 only export cuEventElapsedTime with the same signature)
    private static final NativeFunction cuEventElapsedTime =
            fn(res(ADDRESS, ADDRESS, ADDRESS), "cuEventElapsedTime_v2", "cuEventElapsedTime");
    // CUresult cuEventDestroy_v2(CUevent hEvent)
    private static final NativeFunction cuEventDestroy = fn(res(ADDRESS), "cuEventDestroy_v2");
    // CUresult cuModuleLoadData(CUmodule *module, const void *image)
    private static final NativeFunction cuModuleLoadData = fn(res(ADDRESS, ADDRESS), "cuModuleLoadData");
    // CUresult cuModuleUnload(CUmodule hmod)
    private static final NativeFunction cuModuleUnload = fn(res(ADDRESS), "cuModuleUnload");
    // CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
    private static final NativeFunction cuModuleGetFunction =
            fn(res(ADDRESS, ADDRESS, ADDRESS), "cuModuleGetFunction");
    // CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
    private static final NativeFunction cuFuncSetAttribute =
            fn(res(ADDRESS, JAVA_INT, JAVA_INT), "cuFuncSetAttribute");
    // CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
    private static final NativeFunction cuFuncGetAttribute =
            fn(res(ADDRESS, JAVA_INT, ADDRESS), "cuFuncGetAttribute");
    // CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, gridDimY, gridDimZ,
    //     unsigned int blockDimX, blockDimY, blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
    //     void **kernelParams, void **extra)
    private static final NativeFunction cuLaunchKernel = fn(res(ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuLaunchKernel");
    // CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
    private static final NativeFunction cuStreamBeginCapture =
            fn(res(ADDRESS, JAVA_INT), "cuStreamBeginCapture_v2");
    // CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
    private static final NativeFunction cuStreamEndCapture = fn(res(ADDRESS, ADDRESS), "cuStreamEndCapture");
    // CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
    private static final NativeFunction cuGraphInstantiateWithFlags =
            fn(res(ADDRESS, ADDRESS, JAVA_LONG), "cuGraphInstantiateWithFlags");
    // CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
    private static final NativeFunction cuGraphLaunch = fn(res(ADDRESS, ADDRESS), "cuGraphLaunch");
    // CUresult cuGraphDestroy(CUgraph hGraph)
    private static final NativeFunction cuGraphDestroy = fn(res(ADDRESS), "cuGraphDestroy");
    // CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
    private static final NativeFunction cuGraphExecDestroy = fn(res(ADDRESS), "cuGraphExecDestroy");

    // ---- availability ---------------------------------------------------------------------------------
    private static volatile String unavailable; // null until probed; "" when available
    private static volatile boolean initialized;

    /** True when libcuda loads, cuInit succeeds and at least one device exists. Never throws. */
    public static boolean isAvailable() {
        return probe().isEmpty();
    }

    /**
     * True when the loaded driver is the RLSR CUDA emulator ({@code -Drlsr.cuda.emulator=DIR}, see native/README.md):
     * it runs the project's kernels on the CPU, right but slowly, so code that picks a device by itself (e.g.
     * {@code --device auto}) must not take it, and timings taken on it mean nothing. Never throws.
     *
     * @return whether the "cuda" library is the emulator
     */
    public static boolean isEmulator() {
        try {
            return lib().find("rlsr_cuda_emulator_info").isPresent();
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Why CUDA is not usable ("" when it is), e.g. the library search or CUDA_ERROR_NO_DEVICE. Never throws. */
    public static String unavailableReason() {
        return probe();
    }

    private static String probe() {
        String r = unavailable;
        if (r == null) {
            synchronized (CudaDriver.class) {
                r = unavailable;
                if (r == null) {
                    try {
                        init();
                        int n = deviceCount();
                        r = n > 0 ? "" : "no CUDA device found (cuDeviceGetCount returned 0)";
                    } catch (Throwable t) {
                        r = t.getMessage() == null ? t.toString() : t.getMessage();
                    }
                    unavailable = r;
                }
            }
        }
        return r;
    }

    // ---- errors ---------------------------------------------------------------------------------------
    /** Throws {@link CudaException} when {@code result != CUDA_SUCCESS}. */
    static void check(NativeFunction f, int result) {
        if (result != CUDA_SUCCESS) {
            throw new CudaException(f.name(), result, errorName(result), errorString(result));
        }
    }

    /** {@code cuGetErrorName}, e.g. "CUDA_ERROR_OUT_OF_MEMORY"; "CUresult N" if the driver does not know it. */
    public static String errorName(int result) {
        return describe(cuGetErrorName, result, "CUresult " + result);
    }

    /** {@code cuGetErrorString}, e.g. "out of memory"; "" if the driver does not know it. */
    public static String errorString(int result) {
        return describe(cuGetErrorString, result, "");
    }

    private static String describe(NativeFunction f, int result, String fallback) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = (int) f.handle().invokeExact(result, out);
            MemorySegment str = out.get(ADDRESS, 0);
            if (rc != CUDA_SUCCESS || str.address() == 0) {
                return fallback;
            }
            return str.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return fallback;
        }
    }

    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    private static MemorySegment ptr(long address) {
        return MemorySegment.ofAddress(address);
    }

    // ---- init and devices -----------------------------------------------------------------------------
    /** {@code cuInit(0)}; idempotent and thread-safe. */
    public static void init() {
        if (initialized) {
            return;
        }
        synchronized (CudaDriver.class) {
            if (initialized) {
                return;
            }
            try {
                check(cuInit, (int) cuInit.handle().invokeExact(0));
            } catch (Throwable t) {
                throw rethrow(t);
            }
            initialized = true;
        }
    }

    /** Driver version as 1000*major + 10*minor, e.g. 13000 for CUDA 13.0. */
    public static int driverVersion() {
        return intOut(cuDriverGetVersion);
    }

    public static int deviceCount() {
        init();
        return intOut(cuDeviceGetCount);
    }

    private static int intOut(NativeFunction f) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(f, (int) f.handle().invokeExact(out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The CUdevice of the given ordinal. */
    public static int device(int ordinal) {
        init();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(cuDeviceGet, (int) cuDeviceGet.handle().invokeExact(out, ordinal));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static String deviceName(int dev) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256);
            check(cuDeviceGetName, (int) cuDeviceGetName.handle().invokeExact(buf, 256, dev));
            return buf.getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code cuDeviceGetAttribute}; see the CU_DEVICE_ATTRIBUTE_* constants. */
    public static int attribute(int dev, int attr) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(cuDeviceGetAttribute, (int) cuDeviceGetAttribute.handle().invokeExact(out, attr, dev));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {major, minor}, e.g. {9, 0} for H100/H200. */
    public static int[] computeCapability(int dev) {
        return new int[] {
            attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
        };
    }

    /** The NVRTC architecture name of the device, e.g. "sm_90". */
    public static String arch(int dev) {
        int[] cc = computeCapability(dev);
        return "sm_" + cc[0] + cc[1];
    }

    public static long totalMem(int dev) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check(cuDeviceTotalMem, (int) cuDeviceTotalMem.handle().invokeExact(out, dev));
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {free, total} bytes of the current context's device ({@code cuMemGetInfo_v2}). */
    public static long[] memInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            check(cuMemGetInfo, (int) cuMemGetInfo.handle().invokeExact(free, total));
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- contexts -------------------------------------------------------------------------------------
    /** Retains the device's primary context (the one the CUDA runtime and cuBLAS use) and returns it. */
    public static long primaryContextRetain(int dev) {
        init();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuDevicePrimaryCtxRetain, (int) cuDevicePrimaryCtxRetain.handle().invokeExact(out, dev));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void primaryContextRelease(int dev) {
        try {
            check(cuDevicePrimaryCtxRelease, (int) cuDevicePrimaryCtxRelease.handle().invokeExact(dev));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Binds the context to the calling thread (per-thread state: call it on every thread that uses CUDA). */
    public static void contextSetCurrent(long ctx) {
        try {
            check(cuCtxSetCurrent, (int) cuCtxSetCurrent.handle().invokeExact(ptr(ctx)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The calling thread's current context, 0 when none. */
    public static long contextGetCurrent() {
        // a per-thread out-parameter: this runs before every kernel launch, so it must not allocate
        MemorySegment out = OUT_ADDRESS.get();
        try {
            check(cuCtxGetCurrent, (int) cuCtxGetCurrent.handle().invokeExact(out));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * The device of the calling thread's current context ({@code cuCtxGetDevice}).
     *
     * @return the CUdevice
     */
    public static int contextGetDevice() {
        return intOut(cuCtxGetDevice);
    }

    private static final ThreadLocal<MemorySegment> OUT_ADDRESS =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(ADDRESS));

    public static void contextSynchronize() {
        try {
            check(cuCtxSynchronize, (int) cuCtxSynchronize.handle().invokeExact());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- memory ---------------------------------------------------------------------------------------
    public static long memAlloc(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("memAlloc needs a positive byte count, got " + bytes);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check(cuMemAlloc, (int) cuMemAlloc.handle().invokeExact(out, bytes));
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memFree(long dptr) {
        try {
            check(cuMemFree, (int) cuMemFree.handle().invokeExact(dptr));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Page-locked host memory, needed for truly asynchronous copies. View it with
     * {@code MemorySegment.ofAddress(p).reinterpret(bytes)}; free with {@link #memFreeHost}.
     */
    public static long memAllocHost(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("memAllocHost needs a positive byte count, got " + bytes);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuMemAllocHost, (int) cuMemAllocHost.handle().invokeExact(out, bytes));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memFreeHost(long hostPtr) {
        try {
            check(cuMemFreeHost, (int) cuMemFreeHost.handle().invokeExact(ptr(hostPtr)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void checkRange(MemorySegment host, long bytes, String what) {
        if (bytes < 0 || bytes > host.byteSize()) {
            throw new IllegalArgumentException(what + ": " + bytes + " bytes requested but the host segment has "
                    + host.byteSize());
        }
    }

    /**
     * Synchronous host-to-device copy. A heap segment (e.g. {@code MemorySegment.ofArray(float[])}) is staged
     * through a temporary native buffer, because plain downcalls accept only native memory.
     */
    public static void memcpyHtoD(long dst, MemorySegment src, long bytes) {
        checkRange(src, bytes, "memcpyHtoD");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = src;
            if (!src.isNative()) {
                s = arena.allocate(Math.max(bytes, 1), 16);
                MemorySegment.copy(src, 0, s, 0, bytes);
            }
            check(cuMemcpyHtoD, (int) cuMemcpyHtoD.handle().invokeExact(dst, s, bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Synchronous device-to-host copy; a heap destination is staged like in {@link #memcpyHtoD}. */
    public static void memcpyDtoH(MemorySegment dst, long src, long bytes) {
        checkRange(dst, bytes, "memcpyDtoH");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment d = dst.isNative() ? dst : arena.allocate(Math.max(bytes, 1), 16);
            check(cuMemcpyDtoH, (int) cuMemcpyDtoH.handle().invokeExact(d, src, bytes));
            if (d != dst) {
                MemorySegment.copy(d, 0, dst, 0, bytes);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memcpyDtoD(long dst, long src, long bytes) {
        try {
            check(cuMemcpyDtoD, (int) cuMemcpyDtoD.handle().invokeExact(dst, src, bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void requireNative(MemorySegment host, String what) {
        if (!host.isNative()) {
            throw new IllegalArgumentException(what + " needs native host memory (ideally pinned, from memAllocHost):"
                    + " the copy may still run after this call returns, so a heap array cannot be staged");
        }
    }

    /** Asynchronous copy on {@code stream}; {@code src} must stay alive until the stream reaches the copy. */
    public static void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, long stream) {
        checkRange(src, bytes, "memcpyHtoDAsync");
        requireNative(src, "memcpyHtoDAsync");
        try {
            check(cuMemcpyHtoDAsync, (int) cuMemcpyHtoDAsync.handle().invokeExact(dst, src, bytes, ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Asynchronous copy on {@code stream}; read {@code dst} only after synchronizing the stream. */
    public static void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, long stream) {
        checkRange(dst, bytes, "memcpyDtoHAsync");
        requireNative(dst, "memcpyDtoHAsync");
        try {
            check(cuMemcpyDtoHAsync, (int) cuMemcpyDtoHAsync.handle().invokeExact(dst, src, bytes, ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memcpyDtoDAsync(long dst, long src, long bytes, long stream) {
        try {
            check(cuMemcpyDtoDAsync, (int) cuMemcpyDtoDAsync.handle().invokeExact(dst, src, bytes, ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Sets {@code n} bytes to {@code v}. */
    public static void memsetD8(long dptr, byte v, long n) {
        try {
            check(cuMemsetD8, (int) cuMemsetD8.handle().invokeExact(dptr, v & 0xFF, n));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memsetD8Async(long dptr, byte v, long n, long stream) {
        try {
            check(cuMemsetD8Async, (int) cuMemsetD8Async.handle().invokeExact(dptr, v & 0xFF, n, ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Sets {@code n} 32-bit words to {@code v} (use {@code Float.floatToRawIntBits} for floats, e.g. a NaN poison). */
    public static void memsetD32(long dptr, int v, long n) {
        try {
            check(cuMemsetD32, (int) cuMemsetD32.handle().invokeExact(dptr, v, n));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void memsetD32Async(long dptr, int v, long n, long stream) {
        try {
            check(cuMemsetD32Async, (int) cuMemsetD32Async.handle().invokeExact(dptr, v, n, ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- streams and events ---------------------------------------------------------------------------
    /**
     * A new stream with {@code CU_STREAM_DEFAULT}: it synchronizes with the legacy default stream, so the
     * synchronous copies above stay ordered with kernels on it.
     */
    public static long streamCreate() {
        return streamCreate(CU_STREAM_DEFAULT);
    }

    public static long streamCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuStreamCreate, (int) cuStreamCreate.handle().invokeExact(out, flags));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void streamDestroy(long stream) {
        try {
            check(cuStreamDestroy, (int) cuStreamDestroy.handle().invokeExact(ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void streamSynchronize(long stream) {
        try {
            check(cuStreamSynchronize, (int) cuStreamSynchronize.handle().invokeExact(ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Makes future work on {@code stream} wait for {@code event}. */
    public static void streamWaitEvent(long stream, long event) {
        try {
            check(cuStreamWaitEvent, (int) cuStreamWaitEvent.handle().invokeExact(ptr(stream), ptr(event), 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** An event with timing enabled ({@code CU_EVENT_DEFAULT}). */
    public static long eventCreate() {
        return eventCreate(CU_EVENT_DEFAULT);
    }

    public static long eventCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuEventCreate, (int) cuEventCreate.handle().invokeExact(out, flags));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void eventRecord(long event, long stream) {
        try {
            check(cuEventRecord, (int) cuEventRecord.handle().invokeExact(ptr(event), ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void eventSynchronize(long event) {
        try {
            check(cuEventSynchronize, (int) cuEventSynchronize.handle().invokeExact(ptr(event)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Milliseconds between two recorded, completed events. */
    public static float eventElapsedMs(long start, long end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            check(cuEventElapsedTime, (int) cuEventElapsedTime.handle().invokeExact(out, ptr(start), ptr(end)));
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void eventDestroy(long event) {
        try {
            check(cuEventDestroy, (int) cuEventDestroy.handle().invokeExact(ptr(event)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- modules and launches -------------------------------------------------------------------------
    /** Loads a cubin, fatbin or PTX image (a NUL is appended so PTX text is terminated). */
    public static long moduleLoadData(byte[] image) {
        if (image == null || image.length == 0) {
            throw new IllegalArgumentException("moduleLoadData needs a non-empty cubin/PTX image");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment img = arena.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, img, JAVA_BYTE_LAYOUT, 0, image.length);
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuModuleLoadData, (int) cuModuleLoadData.handle().invokeExact(out, img));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static final java.lang.foreign.ValueLayout.OfByte JAVA_BYTE_LAYOUT = java.lang.foreign.ValueLayout.JAVA_BYTE;

    public static void moduleUnload(long module) {
        try {
            check(cuModuleUnload, (int) cuModuleUnload.handle().invokeExact(ptr(module)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The kernel {@code name} (declare kernels {@code extern "C"} so the name is not mangled). */
    public static long moduleGetFunction(long module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = (int) cuModuleGetFunction.handle().invokeExact(out, ptr(module), arena.allocateFrom(name));
            if (rc != CUDA_SUCCESS) {
                throw new CudaException(cuModuleGetFunction.name() + "(\"" + name + "\")", rc, errorName(rc),
                        errorString(rc));
            }
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** e.g. {@code CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES} to allow more than 48 KiB dynamic shared memory. */
    public static void funcSetAttribute(long function, int attr, int value) {
        try {
            check(cuFuncSetAttribute, (int) cuFuncSetAttribute.handle().invokeExact(ptr(function), attr, value));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int funcGetAttribute(long function, int attr) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(cuFuncGetAttribute, (int) cuFuncGetAttribute.handle().invokeExact(out, attr, ptr(function)));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code cuLaunchKernel}; {@code args} in the kernel's parameter order (null for a kernel without
     * parameters). The driver copies the argument values during the call, so {@code args} may be closed or
     * reused right after.
     */
    public static void launchKernel(long function, int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes,
            long stream, KernelArgs args) {
        if (gx <= 0 || gy <= 0 || gz <= 0 || bx <= 0 || by <= 0 || bz <= 0 || sharedBytes < 0) {
            throw new IllegalArgumentException("launchKernel: grid (" + gx + "," + gy + "," + gz + ") and block ("
                    + bx + "," + by + "," + bz + ") must be positive, shared bytes >= 0 (" + sharedBytes + ")");
        }
        MemorySegment params = args == null ? MemorySegment.NULL : args.pointerArray();
        try {
            check(cuLaunchKernel, (int) cuLaunchKernel.handle().invokeExact(ptr(function), gx, gy, gz, bx, by, bz,
                    sharedBytes, ptr(stream), params, MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- graphs ---------------------------------------------------------------------------------------
    /**
     * Starts capturing {@code stream} (not the legacy stream 0) in thread-local mode, so CUDA calls of
     * other JVM threads do not invalidate the capture.
     */
    public static void streamBeginCapture(long stream) {
        streamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    }

    public static void streamBeginCapture(long stream, int mode) {
        if (stream == 0) {
            throw new IllegalArgumentException("the legacy default stream (0) cannot be captured; create a stream");
        }
        try {
            check(cuStreamBeginCapture, (int) cuStreamBeginCapture.handle().invokeExact(ptr(stream), mode));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Ends the capture and returns the captured CUgraph. */
    public static long streamEndCapture(long stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuStreamEndCapture, (int) cuStreamEndCapture.handle().invokeExact(ptr(stream), out));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code cuGraphInstantiateWithFlags(.., 0)}; returns the CUgraphExec. */
    public static long graphInstantiate(long graph) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuGraphInstantiateWithFlags,
                    (int) cuGraphInstantiateWithFlags.handle().invokeExact(out, ptr(graph), 0L));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void graphLaunch(long graphExec, long stream) {
        try {
            check(cuGraphLaunch, (int) cuGraphLaunch.handle().invokeExact(ptr(graphExec), ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void graphDestroy(long graph) {
        try {
            check(cuGraphDestroy, (int) cuGraphDestroy.handle().invokeExact(ptr(graph)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void graphExecDestroy(long graphExec) {
        try {
            check(cuGraphExecDestroy, (int) cuGraphExecDestroy.handle().invokeExact(ptr(graphExec)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
