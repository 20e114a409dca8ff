package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import org.junit.jupiter.api.Test;

/** Runs everywhere: what the driver binding does when there is no libcuda or no GPU. */
class CudaDriverTest {

    @Test
    void availabilityNeverThrowsAndAgreesWithTheReason() {
        boolean available = assertDoesNotThrow(CudaDriver::isAvailable);
        String reason = assertDoesNotThrow(CudaDriver::unavailableReason);
        assertEquals(available, reason.isEmpty(), "reason: " + reason);
    }

    @Test
    void withoutLibcudaTheReasonNamesTheLibraryAndCallsFailClearly() {
        assumeFalse(NativeLibrary.isLoadable("cuda", "rlsr.lib.cuda", "libcuda.so.1"),
                "libcuda.so.1 is present here; this test covers machines without the driver");
        assertFalse(CudaDriver.isAvailable());
        String reason = CudaDriver.unavailableReason();
        assertTrue(reason.contains("libcuda.so.1") && reason.contains("rlsr.lib.cuda"), reason);
        NativeLibraryUnavailableException e =
                assertThrows(NativeLibraryUnavailableException.class, () -> CudaDriver.memAlloc(16));
        assertTrue(e.getMessage().contains("libcuda.so.1"), e.getMessage());
        // error formatting must not need the library either
        assertEquals("CUresult 2", CudaDriver.errorName(2));
    }

    @Test
    void argumentChecksFireBeforeAnyNativeCall() {
        assertThrows(IllegalArgumentException.class, () -> CudaDriver.memAlloc(0));
        assertThrows(IllegalArgumentException.class, () -> CudaDriver.moduleLoadData(new byte[0]));
        assertThrows(IllegalArgumentException.class,
                () -> CudaDriver.launchKernel(1, 0, 1, 1, 32, 1, 1, 0, 0, null));
        assertThrows(IllegalArgumentException.class, () -> CudaDriver.streamBeginCapture(0));
        var heap = java.lang.foreign.MemorySegment.ofArray(new float[4]);
        assertThrows(IllegalArgumentException.class, () -> CudaDriver.memcpyHtoD(1, heap, 17));
        assertThrows(IllegalArgumentException.class, () -> CudaDriver.memcpyHtoDAsync(1, heap, 16, 0));
    }

    @Test
    void exceptionMessagesNameFunctionErrorAndDescription() {
        CudaException e = new CudaException("cuMemAlloc_v2", 2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory");
        assertEquals("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)", e.getMessage());
        assertEquals(2, e.code());
        assertEquals("cuMemAlloc_v2", e.function());
        CudaException bare = new CudaException("cublasSgemm_v2", 7, null, "");
        assertEquals("cublasSgemm_v2 failed: error 7", bare.getMessage());
        NvrtcException n = new NvrtcException("nvrtcCompileProgram", 6, "NVRTC_ERROR_COMPILATION",
                "k.cu(3): error: identifier \"x\" is undefined\n");
        assertTrue(n.getMessage().startsWith("nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION (compile log:"),
                n.getMessage());
        assertTrue(n.log().contains("identifier \"x\" is undefined"));
    }
}
