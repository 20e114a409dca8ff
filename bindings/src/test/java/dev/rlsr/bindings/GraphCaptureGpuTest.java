package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Stream capture and graph replay (what CUDA-graph decoding is built on): a sequence of memset, host-to-device copy,
 * kernel launch, cuBLAS and cuBLASLt GEMMs, device copy and device-to-host copy, captured once and replayed, gives
 * bit for bit what the same sequence gives eagerly; capture itself runs nothing; and the calls CUDA forbids during a
 * capture fail and invalidate it. Runs on the CUDA emulator and on a real GPU.
 */
@Tag("gpu")
class GraphCaptureGpuTest {
    private static final int N = 4096;
    private static final int M = 24; // GEMM size

    private static CudaContext ctx;
    private static CudaModule module;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        GpuTestSupport.requireThat(Cublas.isAvailable() && CublasLt.isAvailable(), () -> "libcublas/libcublasLt not found");
        ctx = CudaContext.open(0);
        module = TestKernels.load(TestKernels.KERNELS);
    }

    @AfterAll
    static void close() {
        if (module != null) {
            module.close();
        }
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
    }

    /** Everything the sequence touches. */
    private record Buffers(DeviceBuffer x, DeviceBuffer y, DeviceBuffer copy, DeviceBuffer a, DeviceBuffer b,
            DeviceBuffer c, DeviceBuffer d, long hostIn, long hostOut) {
        void poison() {
            for (DeviceBuffer buf : new DeviceBuffer[] {y, copy, c, d}) {
                buf.fill(Float.NaN);
            }
            MemorySegment.ofAddress(hostOut).reinterpret(4L * N).fill((byte) 0xff);
        }
    }

    /** The work, enqueued on {@code stream}: run eagerly, or recorded when the stream is capturing. */
    private static void sequence(Buffers m, long stream, Cublas blas, CublasLt lt, DeviceBuffer workspace,
            KernelArgs axpy) {
        CudaDriver.memsetD32Async(m.copy().address(), Float.floatToRawIntBits(-1f), N, stream);
        CudaDriver.memcpyHtoDAsync(m.y().address(), MemorySegment.ofAddress(m.hostIn()).reinterpret(4L * N), 4L * N,
                stream);
        CudaDriver.launchKernel(module.function("axpy_kernel"), (N + 255) / 256, 1, 1, 256, 1, 1, 0, stream, axpy);
        blas.sgemm(Cublas.CUBLAS_OP_N, Cublas.CUBLAS_OP_T, M, M, M, 1f, m.a().address(), M, m.b().address(), M, 0f,
                m.c().address(), M);
        lt.matmul(Cublas.CUBLAS_OP_T, Cublas.CUBLAS_OP_N, M, M, M, 0.5f, m.c().address(), Cublas.CUDA_R_32F, M,
                m.a().address(), Cublas.CUDA_R_32F, M, 0f, m.d().address(), Cublas.CUDA_R_32F, M,
                workspace.address(), workspace.bytes(), stream);
        CudaDriver.memcpyDtoDAsync(m.copy().address(), m.y().address(), 4L * N / 2, stream);
        CudaDriver.memcpyDtoHAsync(MemorySegment.ofAddress(m.hostOut()).reinterpret(4L * N), m.y().address(), 4L * N,
                stream);
    }

    private record Result(float[] y, float[] copy, float[] c, float[] d, float[] host) {
        static Result read(Buffers m) {
            return new Result(m.y().toFloatArray(), m.copy().toFloatArray(), m.c().toFloatArray(),
                    m.d().toFloatArray(), MemorySegment.ofAddress(m.hostOut()).reinterpret(4L * N).toArray(JAVA_FLOAT));
        }
    }

    @Test
    void replayGivesWhatEagerGives() {
        float[] x = GpuTestSupport.random(41, N), y0 = GpuTestSupport.random(42, N);
        float[] a = GpuTestSupport.random(43, M * M), b = GpuTestSupport.random(44, M * M);
        long hostIn = CudaDriver.memAllocHost(4L * N), hostOut = CudaDriver.memAllocHost(4L * N);
        MemorySegment.copy(y0, 0, MemorySegment.ofAddress(hostIn).reinterpret(4L * N), JAVA_FLOAT, 0, N);
        try (CudaStream s = CudaStream.create(); Cublas blas = Cublas.create(); CublasLt lt = CublasLt.create();
                DeviceBuffer ws = DeviceBuffer.alloc(32L << 20); DeviceBuffer dx = DeviceBuffer.of(x);
                DeviceBuffer dy = DeviceBuffer.alloc(4L * N); DeviceBuffer copy = DeviceBuffer.alloc(4L * N);
                DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
                DeviceBuffer dc = DeviceBuffer.alloc(4L * M * M); DeviceBuffer dd = DeviceBuffer.alloc(4L * M * M);
                KernelArgs axpy = KernelArgs.of().ptr(dy).ptr(dx).f32(0.5f).i32(N)) {
            Buffers m = new Buffers(dx, dy, copy, da, db, dc, dd, hostIn, hostOut);
            blas.setStream(s.handle());
            blas.setWorkspace(ws.address(), ws.bytes()); // so cuBLAS allocates nothing while capturing

            m.poison();
            sequence(m, s.handle(), blas, lt, ws, axpy);
            s.synchronize();
            Result eager = Result.read(m);
            assertEquals(0.5f * x[7] + y0[7], eager.y()[7], 1e-6f, "the eager run computes axpy");

            m.poison();
            CudaDriver.streamBeginCapture(s.handle());
            sequence(m, s.handle(), blas, lt, ws, axpy);
            long graph = CudaDriver.streamEndCapture(s.handle());
            long exec = CudaDriver.graphInstantiate(graph);
            try {
                s.synchronize();
                assertTrue(Float.isNaN(m.y().toFloatArray()[0]) && Float.isNaN(m.d().toFloatArray()[0]),
                        "capture records the work, it runs nothing");
                for (int replay = 0; replay < 2; replay++) {
                    m.poison();
                    CudaDriver.graphLaunch(exec, s.handle());
                    s.synchronize();
                    Result r = Result.read(m);
                    String what = "replay " + replay;
                    assertArrayEquals(eager.y(), r.y(), what + ": y");
                    assertArrayEquals(eager.copy(), r.copy(), what + ": device copy and memset");
                    assertArrayEquals(eager.c(), r.c(), what + ": cuBLAS");
                    assertArrayEquals(eager.d(), r.d(), what + ": cuBLASLt");
                    assertArrayEquals(eager.host(), r.host(), what + ": device-to-host copy");
                }
            } finally {
                CudaDriver.graphExecDestroy(exec);
                CudaDriver.graphDestroy(graph);
                blas.setStream(0);
            }
        } finally {
            CudaDriver.memFreeHost(hostIn);
            CudaDriver.memFreeHost(hostOut);
        }
    }

    @Test
    void forbiddenCallsInvalidateTheCapture() {
        try (CudaStream s = CudaStream.create(); DeviceBuffer buf = DeviceBuffer.alloc(1024)) {
            // an allocation while this thread captures (thread-local mode)
            CudaDriver.streamBeginCapture(s.handle());
            CudaException alloc = assertThrows(CudaException.class, () -> CudaDriver.memAlloc(256));
            CudaException end = assertThrows(CudaException.class, () -> CudaDriver.streamEndCapture(s.handle()));
            // work on the legacy stream, which would wait for the capturing (blocking) stream
            CudaDriver.streamBeginCapture(s.handle());
            CudaException legacy = assertThrows(CudaException.class,
                    () -> CudaDriver.memsetD32Async(buf.address(), 0, 4, 0));
            CudaException end2 = assertThrows(CudaException.class, () -> CudaDriver.streamEndCapture(s.handle()));
            if (CudaDriver.isEmulator()) { // the codes a GPU returns may differ between driver versions
                assertEquals("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", alloc.errorName(), alloc.getMessage());
                assertEquals("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", end.errorName(), end.getMessage());
                assertEquals("CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", legacy.errorName(), legacy.getMessage());
                assertEquals("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", end2.errorName(), end2.getMessage());
            }
            // the stream is usable again afterwards
            CudaDriver.memsetD32Async(buf.address(), 7, 256, s.handle());
            s.synchronize();
            assertEquals(7, buf.toIntArray()[255]);
        }
    }
}
