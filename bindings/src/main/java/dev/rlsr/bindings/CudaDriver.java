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
    /** {@code CUdevice_attribute}: maximum threads per block. */
    public static final int CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
    /** {@code CUdevice_attribute}: maximum x dimension of a block. */
    public static final int CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2;
    /** {@code CUdevice_attribute}: maximum x dimension of a grid. */
    public static final int CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5;
    /** {@code CUdevice_attribute}: shared memory per block without opting in, in bytes. */
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8;
    /** {@code CUdevice_attribute}: threads per warp. */
    public static final int CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10;
    /** {@code CUdevice_attribute}: 32-bit registers per block. */
    public static final int CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12;
    /** {@code CUdevice_attribute}: peak SM clock in kHz. */
    public static final int CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13;
    /** {@code CUdevice_attribute}: streaming multiprocessors. */
    public static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    /** {@code CUdevice_attribute}: PCI bus id. */
    public static final int CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
    /** {@code CUdevice_attribute}: peak memory clock in kHz. */
    public static final int CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36;
    /** {@code CUdevice_attribute}: global memory bus width in bits. */
    public static final int CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;
    /** {@code CUdevice_attribute}: L2 cache size in bytes. */
    public static final int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
    /** {@code CUdevice_attribute}: maximum resident threads per SM. */
    public static final int CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39;
    /** {@code CUdevice_attribute}: 1 if the device shares a unified address space with the host. */
    public static final int CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41;
    /** {@code CUdevice_attribute}: compute capability, major. */
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    /** {@code CUdevice_attribute}: compute capability, minor. */
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    /** {@code CUdevice_attribute}: shared memory per block after opting in with {@link #funcSetAttribute}, in bytes. */
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    // ---- CUfunction_attribute ---------------------------------------------------------------------------
    /** {@code CUfunction_attribute}: the most threads a block of this function may have. */
    public static final int CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
    /** {@code CUfunction_attribute}: registers per thread. */
    public static final int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;
    /** {@code CUfunction_attribute}: the dynamic shared memory a launch may request. */
    public static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    /** {@code CUfunction_attribute}: preferred shared memory share of L1, in percent. */
    public static final int CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9;

    // ---- flags and modes -------------------------------------------------------------------------------
    /** Stream flag: the stream synchronises with the legacy default stream. */
    public static final int CU_STREAM_DEFAULT = 0x0;
    /** Stream flag: the stream does not synchronise with the legacy default stream. */
    public static final int CU_STREAM_NON_BLOCKING = 0x1;
    /** Event flag: timing enabled, busy-wait synchronisation. */
    public static final int CU_EVENT_DEFAULT = 0x0;
    /** Event flag: {@link #eventSynchronize} blocks the thread instead of spinning. */
    public static final int CU_EVENT_BLOCKING_SYNC = 0x1;
    /** Event flag: no timing (cheaper, for ordering only). */
    public static final int CU_EVENT_DISABLE_TIMING = 0x2;
    /** Capture mode: unsafe CUDA calls of any thread invalidate the capture. */
    public static final int CU_STREAM_CAPTURE_MODE_GLOBAL = 0;
    /** Capture mode: only this thread's unsafe calls invalidate the capture. */
    public static final int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    /** Capture mode: no call is checked. */
    public static final int CU_STREAM_CAPTURE_MODE_RELAXED = 2;
    /** Capture status: the stream is not being captured. */
    public static final int CU_STREAM_CAPTURE_STATUS_NONE = 0;
    /** Capture status: the stream is being captured. */
    public static final int CU_STREAM_CAPTURE_STATUS_ACTIVE = 1;
    /** Capture status: a capture was invalidated by an unsafe call and must be ended. */
    public static final int CU_STREAM_CAPTURE_STATUS_INVALIDATED = 2;

    // ---- CUresult values the Java side reacts to -------------------------------------------------------
    /** {@code CUresult}: success. */
    public static final int CUDA_SUCCESS = 0;
    /** {@code CUresult}: {@code cuInit} was not called. */
    public static final int CUDA_ERROR_NOT_INITIALIZED = 3;
    /** {@code CUresult}: no CUDA device is present. */
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
    // CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N)  (zero-extended int, as D8)
    private static final NativeFunction cuMemsetD16 = fn(res(JAVA_LONG, JAVA_INT, JAVA_LONG), "cuMemsetD16_v2");
    // CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N, CUstream hStream)
    private static final NativeFunction cuMemsetD16Async =
            fn(res(JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS), "cuMemsetD16Async");
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
    // The handles and the two pointer arrays are bound as 64-bit integers (the same registers as a pointer in the
    // x86-64 and AArch64 C ABIs): an ADDRESS parameter would need a MemorySegment.ofAddress box per launch.
    private static final NativeFunction cuLaunchKernel = fn(res(JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG), "cuLaunchKernel");
    // CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
    private static final NativeFunction cuStreamBeginCapture =
            fn(res(ADDRESS, JAVA_INT), "cuStreamBeginCapture_v2");
    // CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
    private static final NativeFunction cuStreamIsCapturing = fn(res(ADDRESS, ADDRESS), "cuStreamIsCapturing");
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

    /** {@return true when libcuda loads, {@code cuInit} succeeds and at least one device exists}; never throws. */
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

    /** {@return why CUDA is not usable ("" when it is), e.g. the library search or CUDA_ERROR_NO_DEVICE}; never throws. */
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

    /**
     * {@code cuGetErrorName}.
     *
     * @param result a {@code CUresult}
     * @return its name, e.g. "CUDA_ERROR_OUT_OF_MEMORY"; "CUresult N" if the driver does not know it
     */
    public static String errorName(int result) {
        return describe(cuGetErrorName, result, "CUresult " + result);
    }

    /**
     * {@code cuGetErrorString}.
     *
     * @param result a {@code CUresult}
     * @return its description, e.g. "out of memory"; "" if the driver does not know it
     */
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

    /** {@return the driver's CUDA version as 1000*major + 10*minor, e.g. 13000 for CUDA 13.0} */
    public static int driverVersion() {
        return intOut(cuDriverGetVersion);
    }

    /** {@return the number of CUDA devices ({@code cuDeviceGetCount})} */
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

    /**
     * {@code cuDeviceGet}.
     *
     * @param ordinal 0 .. {@link #deviceCount()} - 1
     * @return the CUdevice of that ordinal
     */
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

    /**
     * {@code cuDeviceGetName}.
     *
     * @param dev a CUdevice
     * @return its name, e.g. "NVIDIA H200"
     */
    public static String deviceName(int dev) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256);
            check(cuDeviceGetName, (int) cuDeviceGetName.handle().invokeExact(buf, 256, dev));
            return buf.getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code cuDeviceGetAttribute}.
     *
     * @param dev  a CUdevice
     * @param attr one of the {@code CU_DEVICE_ATTRIBUTE_*} constants
     * @return the attribute's value
     */
    public static int attribute(int dev, int attr) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(cuDeviceGetAttribute, (int) cuDeviceGetAttribute.handle().invokeExact(out, attr, dev));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * The compute capability.
     *
     * @param dev a CUdevice
     * @return {major, minor}, e.g. {9, 0} for H100/H200
     */
    public static int[] computeCapability(int dev) {
        return new int[] {
            attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
        };
    }

    /**
     * The NVRTC architecture name of the device.
     *
     * @param dev a CUdevice
     * @return e.g. "sm_90"
     */
    public static String arch(int dev) {
        int[] cc = computeCapability(dev);
        return "sm_" + cc[0] + cc[1];
    }

    /**
     * {@code cuDeviceTotalMem_v2}.
     *
     * @param dev a CUdevice
     * @return the device memory in bytes
     */
    public static long totalMem(int dev) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check(cuDeviceTotalMem, (int) cuDeviceTotalMem.handle().invokeExact(out, dev));
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@return {free, total} bytes of the current context's device ({@code cuMemGetInfo_v2})} */
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
    /**
     * Retains the device's primary context (the one the CUDA runtime and cuBLAS use); release it with
     * {@link #primaryContextRelease}.
     *
     * @param dev a CUdevice
     * @return the CUcontext
     */
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

    /**
     * Releases one retain of the device's primary context; the last release destroys it.
     *
     * @param dev a CUdevice
     */
    public static void primaryContextRelease(int dev) {
        try {
            check(cuDevicePrimaryCtxRelease, (int) cuDevicePrimaryCtxRelease.handle().invokeExact(dev));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Binds the context to the calling thread (per-thread state: call it on every thread that uses CUDA).
     *
     * @param ctx a CUcontext, or 0 to unbind
     */
    public static void contextSetCurrent(long ctx) {
        try {
            check(cuCtxSetCurrent, (int) cuCtxSetCurrent.handle().invokeExact(ptr(ctx)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@return the calling thread's current CUcontext, 0 when none} */
    public static long contextGetCurrent() {
        // a per-thread out-parameter: this runs before every kernel launch, so it must not allocate
        MemorySegment out = OUT_ADDRESS.get();
        try {
            check(cuCtxGetCurrent, (int) cuCtxGetCurrent.handle().invokeExact(out));
            return out.get(JAVA_LONG, 0); // not get(ADDRESS): that would box a MemorySegment
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

    /** Waits until all work of the current context finished; an earlier asynchronous failure is thrown here. */
    public static void contextSynchronize() {
        try {
            check(cuCtxSynchronize, (int) cuCtxSynchronize.handle().invokeExact());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- memory ---------------------------------------------------------------------------------------
    /**
     * {@code cuMemAlloc_v2} in the current context.
     *
     * @param bytes size in bytes, &gt; 0
     * @return the device address (CUdeviceptr), aligned for any element type
     */
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

    /**
     * {@code cuMemFree_v2}.
     *
     * @param dptr an address from {@link #memAlloc}
     */
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
     *
     * @param bytes size in bytes
     * @return the host address
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

    /**
     * Frees page-locked host memory.
     *
     * @param hostPtr an address from {@link #memAllocHost}
     */
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
     *
     * @param dst   device address
     * @param src   host memory, native or heap
     * @param bytes bytes to copy
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

    /**
     * Synchronous device-to-host copy; a heap destination is staged like in {@link #memcpyHtoD}.
     *
     * @param dst   host memory, native or heap
     * @param src   device address
     * @param bytes bytes to copy
     */
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

    /**
     * Device-to-device copy on the legacy default stream (as CUDA specifies for this direction, the host may
     * return before the copy finished).
     *
     * @param dst   device address
     * @param src   device address
     * @param bytes bytes to copy
     */
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

    /**
     * Asynchronous copy on {@code stream}; {@code src} must stay alive until the stream reaches the copy.
     *
     * @param dst    device address
     * @param src    native host memory, ideally page-locked ({@link #memAllocHost}); a heap segment is rejected
     * @param bytes  bytes to copy
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, long stream) {
        checkRange(src, bytes, "memcpyHtoDAsync");
        requireNative(src, "memcpyHtoDAsync");
        int op = CudaProfiler.begin(stream);
        try {
            check(cuMemcpyHtoDAsync, (int) cuMemcpyHtoDAsync.handle().invokeExact(dst, src, bytes, ptr(stream)));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        CudaProfiler.end(op, stream, "memcpy HtoD");
    }

    /**
     * Asynchronous copy on {@code stream}; read {@code dst} only after synchronizing the stream.
     *
     * @param dst    native host memory, ideally page-locked ({@link #memAllocHost}); a heap segment is rejected
     * @param src    device address
     * @param bytes  bytes to copy
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, long stream) {
        checkRange(dst, bytes, "memcpyDtoHAsync");
        requireNative(dst, "memcpyDtoHAsync");
        int op = CudaProfiler.begin(stream);
        try {
            check(cuMemcpyDtoHAsync, (int) cuMemcpyDtoHAsync.handle().invokeExact(dst, src, bytes, ptr(stream)));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        CudaProfiler.end(op, stream, "memcpy DtoH");
    }

    /**
     * Asynchronous device-to-device copy on {@code stream}.
     *
     * @param dst    device address
     * @param src    device address
     * @param bytes  bytes to copy
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void memcpyDtoDAsync(long dst, long src, long bytes, long stream) {
        int op = CudaProfiler.begin(stream);
        try {
            check(cuMemcpyDtoDAsync, (int) cuMemcpyDtoDAsync.handle().invokeExact(dst, src, bytes, ptr(stream)));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        CudaProfiler.end(op, stream, "memcpy DtoD");
    }

    /**
     * Sets {@code n} bytes to {@code v}.
     *
     * @param dptr device address
     * @param v    the byte value
     * @param n    bytes to set
     */
    public static void memsetD8(long dptr, byte v, long n) {
        try {
            check(cuMemsetD8, (int) cuMemsetD8.handle().invokeExact(dptr, v & 0xFF, n));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Sets {@code n} bytes to {@code v}, asynchronously on {@code stream}.
     *
     * @param dptr   device address
     * @param v      the byte value
     * @param n      bytes to set
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void memsetD8Async(long dptr, byte v, long n, long stream) {
        int op = CudaProfiler.begin(stream);
        try {
            check(cuMemsetD8Async, (int) cuMemsetD8Async.handle().invokeExact(dptr, v & 0xFF, n, ptr(stream)));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        CudaProfiler.end(op, stream, "memset D8");
    }

    /**
     * Sets {@code n} 16-bit words to {@code v}, e.g. bf16 bits ({@code (short) 0x7fc0} is a bf16 NaN poison).
     *
     * @param dptr device address, 2-byte aligned
     * @param v    the 16 bits
     * @param n    number of 16-bit words
     */
    public static void memsetD16(long dptr, short v, long n) {
        try {
            check(cuMemsetD16, (int) cuMemsetD16.handle().invokeExact(dptr, v & 0xFFFF, n));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@link #memsetD16} on {@code stream}.
     *
     * @param dptr   device address, 2-byte aligned
     * @param v      the 16 bits
     * @param n      number of 16-bit words
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void memsetD16Async(long dptr, short v, long n, long stream) {
        int op = CudaProfiler.begin(stream);
        try {
            check(cuMemsetD16Async, (int) cuMemsetD16Async.handle().invokeExact(dptr, v & 0xFFFF, n, ptr(stream)));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        CudaProfiler.end(op, stream, "memset D16");
    }

    /**
     * Sets {@code n} 32-bit words to {@code v} (use {@code Float.floatToRawIntBits} for floats, e.g. a NaN poison).
     *
     * @param dptr device address, 4-byte aligned
     * @param v    the word's bits
     * @param n    words to set
     */
    public static void memsetD32(long dptr, int v, long n) {
        try {
            check(cuMemsetD32, (int) cuMemsetD32.handle().invokeExact(dptr, v, n));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Sets {@code n} 32-bit words to {@code v}, asynchronously on {@code stream}.
     *
     * @param dptr   device address, 4-byte aligned
     * @param v      the word's bits
     * @param n      words to set
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void memsetD32Async(long dptr, int v, long n, long stream) {
        int op = CudaProfiler.begin(stream);
        try {
            check(cuMemsetD32Async, (int) cuMemsetD32Async.handle().invokeExact(dptr, v, n, ptr(stream)));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        CudaProfiler.end(op, stream, "memset D32");
    }

    // ---- streams and events ---------------------------------------------------------------------------
    /**
     * A new stream with {@code CU_STREAM_DEFAULT}: it synchronizes with the legacy default stream, so the
     * synchronous copies above stay ordered with kernels on it.
     *
     * @return the CUstream
     */
    public static long streamCreate() {
        return streamCreate(CU_STREAM_DEFAULT);
    }

    /**
     * A new stream in the current context.
     *
     * @param flags {@link #CU_STREAM_DEFAULT} or {@link #CU_STREAM_NON_BLOCKING}
     * @return the CUstream
     */
    public static long streamCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuStreamCreate, (int) cuStreamCreate.handle().invokeExact(out, flags));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Destroys a stream (work already queued still completes).
     *
     * @param stream a CUstream from {@link #streamCreate}
     */
    public static void streamDestroy(long stream) {
        try {
            check(cuStreamDestroy, (int) cuStreamDestroy.handle().invokeExact(ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Waits until all work queued on {@code stream} finished.
     *
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void streamSynchronize(long stream) {
        try {
            check(cuStreamSynchronize, (int) cuStreamSynchronize.handle().invokeExact(ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Makes future work on {@code stream} wait for {@code event}.
     *
     * @param stream a CUstream
     * @param event  a recorded CUevent
     */
    public static void streamWaitEvent(long stream, long event) {
        try {
            check(cuStreamWaitEvent, (int) cuStreamWaitEvent.handle().invokeExact(ptr(stream), ptr(event), 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@return a new CUevent with timing enabled ({@code CU_EVENT_DEFAULT})} */
    public static long eventCreate() {
        return eventCreate(CU_EVENT_DEFAULT);
    }

    /**
     * A new event.
     *
     * @param flags a combination of the {@code CU_EVENT_*} flags
     * @return the CUevent
     */
    public static long eventCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuEventCreate, (int) cuEventCreate.handle().invokeExact(out, flags));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Records {@code event} at the current end of {@code stream}'s queue.
     *
     * @param event  a CUevent
     * @param stream a CUstream, 0 for the legacy default stream
     */
    public static void eventRecord(long event, long stream) {
        try {
            check(cuEventRecord, (int) cuEventRecord.handle().invokeExact(ptr(event), ptr(stream)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Waits until the work before the event's record finished.
     *
     * @param event a recorded CUevent
     */
    public static void eventSynchronize(long event) {
        try {
            check(cuEventSynchronize, (int) cuEventSynchronize.handle().invokeExact(ptr(event)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Milliseconds between two recorded, completed events ({@code cuEventElapsedTime}).
     *
     * @param start the earlier CUevent
     * @param end   the later CUevent
     * @return elapsed milliseconds (resolution about 0.5 us)
     */
    public static float eventElapsedMs(long start, long end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            check(cuEventElapsedTime, (int) cuEventElapsedTime.handle().invokeExact(out, ptr(start), ptr(end)));
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Destroys an event.
     *
     * @param event a CUevent
     */
    public static void eventDestroy(long event) {
        try {
            check(cuEventDestroy, (int) cuEventDestroy.handle().invokeExact(ptr(event)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- modules and launches -------------------------------------------------------------------------
    /**
     * Loads a cubin, fatbin or PTX image into the current context (a NUL is appended so PTX text is terminated).
     *
     * @param image the image's bytes
     * @return the CUmodule
     */
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

    /**
     * Unloads a module (its functions become invalid).
     *
     * @param module a CUmodule
     */
    public static void moduleUnload(long module) {
        try {
            check(cuModuleUnload, (int) cuModuleUnload.handle().invokeExact(ptr(module)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * The kernel {@code name} (declare kernels {@code extern "C"} so the name is not mangled).
     *
     * @param module a CUmodule
     * @param name   the kernel's name
     * @return the CUfunction
     */
    public static long moduleGetFunction(long module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = (int) cuModuleGetFunction.handle().invokeExact(out, ptr(module), arena.allocateFrom(name));
            if (rc != CUDA_SUCCESS) {
                throw new CudaException(cuModuleGetFunction.name() + "(\"" + name + "\")", rc, errorName(rc),
                        errorString(rc));
            }
            long function = out.get(ADDRESS, 0).address();
            CudaProfiler.nameFunction(function, name); // labels its launches in a profile
            return function;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code cuFuncSetAttribute}, e.g. {@code CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES} to allow more than
     * 48 KiB dynamic shared memory.
     *
     * @param function a CUfunction
     * @param attr     a {@code CU_FUNC_ATTRIBUTE_*} constant
     * @param value    the new value
     */
    public static void funcSetAttribute(long function, int attr, int value) {
        try {
            check(cuFuncSetAttribute, (int) cuFuncSetAttribute.handle().invokeExact(ptr(function), attr, value));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code cuFuncGetAttribute}.
     *
     * @param function a CUfunction
     * @param attr     a {@code CU_FUNC_ATTRIBUTE_*} constant
     * @return the attribute's value
     */
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
     * {@code cuLaunchKernel}, asynchronous on {@code stream}. The driver copies the argument values during the call,
     * so {@code args} may be closed or reused right after.
     *
     * @param function    the CUfunction
     * @param gx          grid size in blocks, x
     * @param gy          grid size in blocks, y
     * @param gz          grid size in blocks, z
     * @param bx          block size in threads, x
     * @param by          block size in threads, y
     * @param bz          block size in threads, z
     * @param sharedBytes dynamic shared memory per block
     * @param stream      a CUstream, 0 for the legacy default stream
     * @param args        the arguments in the kernel's parameter order, or null for a kernel without parameters
     */
    public static void launchKernel(long function, int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes,
            long stream, KernelArgs args) {
        if (gx <= 0 || gy <= 0 || gz <= 0 || bx <= 0 || by <= 0 || bz <= 0 || sharedBytes < 0) {
            throw new IllegalArgumentException("launchKernel: grid (" + gx + "," + gy + "," + gz + ") and block ("
                    + bx + "," + by + "," + bz + ") must be positive, shared bytes >= 0 (" + sharedBytes + ")");
        }
        // nothing on this path allocates (LaunchOverheadBench checks it with -prof gc)
        long params = args == null ? 0L : args.pointerArrayAddress();
        int op = CudaProfiler.begin(stream);
        try {
            check(cuLaunchKernel, (int) cuLaunchKernel.handle().invokeExact(function, gx, gy, gz, bx, by, bz,
                    sharedBytes, stream, params, 0L));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        if (op != -1) {
            CudaProfiler.end(op, stream, CudaProfiler.functionName(function));
        }
    }

    // ---- graphs ---------------------------------------------------------------------------------------
    /**
     * Starts capturing {@code stream} (not the legacy stream 0) in thread-local mode, so CUDA calls of
     * other JVM threads do not invalidate the capture.
     *
     * @param stream a CUstream created by {@link #streamCreate}
     */
    public static void streamBeginCapture(long stream) {
        streamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    }

    /**
     * Starts capturing {@code stream}: work queued on it is recorded into a graph instead of running.
     *
     * @param stream a CUstream created by {@link #streamCreate}
     * @param mode   a {@code CU_STREAM_CAPTURE_MODE_*} constant
     */
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

    /**
     * Whether {@code stream} is being captured ({@code cuStreamIsCapturing}).
     *
     * @param stream a CUstream
     * @return one of the CU_STREAM_CAPTURE_STATUS_* constants (NONE, ACTIVE, INVALIDATED)
     */
    public static int streamCaptureStatus(long stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(cuStreamIsCapturing, (int) cuStreamIsCapturing.handle().invokeExact(ptr(stream), out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Ends the capture.
     *
     * @param stream the capturing CUstream
     * @return the captured CUgraph
     */
    public static long streamEndCapture(long stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(cuStreamEndCapture, (int) cuStreamEndCapture.handle().invokeExact(ptr(stream), out));
            return out.get(ADDRESS, 0).address();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code cuGraphInstantiateWithFlags(.., 0)}.
     *
     * @param graph a CUgraph
     * @return the executable CUgraphExec
     */
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

    /**
     * Replays an instantiated graph on {@code stream}, asynchronously.
     *
     * @param graphExec a CUgraphExec
     * @param stream    a CUstream
     */
    public static void graphLaunch(long graphExec, long stream) {
        int op = CudaProfiler.begin(stream);
        try {
            check(cuGraphLaunch, (int) cuGraphLaunch.handle().invokeExact(ptr(graphExec), ptr(stream)));
        } catch (Throwable t) {
            CudaProfiler.cancel(op);
            throw rethrow(t);
        }
        CudaProfiler.end(op, stream, "graph launch");
    }

    /**
     * Destroys a graph (instantiated copies stay valid).
     *
     * @param graph a CUgraph
     */
    public static void graphDestroy(long graph) {
        try {
            check(cuGraphDestroy, (int) cuGraphDestroy.handle().invokeExact(ptr(graph)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Destroys an instantiated graph.
     *
     * @param graphExec a CUgraphExec
     */
    public static void graphExecDestroy(long graphExec) {
        try {
            check(cuGraphExecDestroy, (int) cuGraphExecDestroy.handle().invokeExact(ptr(graphExec)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
