package dev.rlsr.kernels;

import static dev.rlsr.kernels.GpuSupport.assertClose;

import dev.rlsr.bindings.CudaDriver;

import java.util.Random;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A JCuda user's view: memory allocated and filled through JCuda's driver API (cuMemAlloc, cuMemcpyHtoD), context
 * set current by JCuda, and our kernels called on the raw CUdeviceptr addresses. Skips when there is no GPU or
 * JCuda's native library does not load (its natives are built for x86-64 and aarch64 Linux/Windows/macOS).
 */
@Tag("gpu")
class JCudaInteropGpuTest {

    /**
     * A CUdeviceptr whose raw address is readable: NativePointerObject.getNativePointer() is protected, and a
     * subclass may call it on its own instances. JCuda's cuMemAlloc accepts it like any CUdeviceptr.
     */
    static final class RawDevicePtr extends CUdeviceptr {
        long address() {
            return getNativePointer(); // a fresh pointer from cuMemAlloc has no byte offset
        }
    }

    @Test
    void kernelsRunOnJCudaMemory() {
        GpuSupport.skipOnEmulator("JCuda's native library links the real libcuda.so.1, which the emulator does not "
                + "replace");
        GpuSupport.requireThat(CudaDriver.isAvailable(), () -> "no CUDA device: " + CudaDriver.unavailableReason());
        try {
            JCudaDriver.setExceptionsEnabled(true);
            JCudaDriver.cuInit(0);
        } catch (Throwable t) { // UnsatisfiedLinkError and friends: JCuda's natives are not usable here
            GpuSupport.requireThat(false, () -> "JCuda's driver library does not load: " + t);
        }
        CUdevice device = new CUdevice();
        JCudaDriver.cuDeviceGet(device, 0);
        CUcontext ctx = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(ctx, device);
        JCudaDriver.cuCtxSetCurrent(ctx); // our CudaKernels picks up the calling thread's current context

        long seed = 2026;
        Random r = new Random(seed);
        int n = 300, d = 1023, v = 32000, rows = 20;
        float[] a = GpuSupport.randn(r, n * d, 1f), b = GpuSupport.randn(r, n * d, 1f);
        float[] logits = GpuSupport.randn(r, rows * v, 3f);
        int[] targets = new int[rows];
        for (int i = 0; i < rows; i++) {
            targets[i] = r.nextInt(v);
        }
        RawDevicePtr da = alloc((long) n * d * Sizeof.FLOAT), db = alloc((long) n * d * Sizeof.FLOAT);
        RawDevicePtr dcos = alloc((long) n * Sizeof.FLOAT);
        RawDevicePtr dlogits = alloc((long) rows * v * Sizeof.FLOAT), dtargets = alloc((long) rows * Sizeof.INT);
        RawDevicePtr dlogp = alloc((long) rows * Sizeof.FLOAT), dlse = alloc((long) rows * Sizeof.FLOAT);
        try {
            JCudaDriver.cuMemcpyHtoD(da, Pointer.to(a), (long) n * d * Sizeof.FLOAT);
            JCudaDriver.cuMemcpyHtoD(db, Pointer.to(b), (long) n * d * Sizeof.FLOAT);
            JCudaDriver.cuMemcpyHtoD(dlogits, Pointer.to(logits), (long) rows * v * Sizeof.FLOAT);
            JCudaDriver.cuMemcpyHtoD(dtargets, Pointer.to(targets), (long) rows * Sizeof.INT);
            JCudaDriver.cuMemsetD32(dcos, GpuSupport.NAN_BITS, n);
            JCudaDriver.cuMemsetD32(dlogp, GpuSupport.NAN_BITS, rows);
            JCudaDriver.cuMemsetD32(dlse, GpuSupport.NAN_BITS, rows);

            CosineSimilarity.pairs(da.address(), db.address(), DType.F32, dcos.address(), n, d, 0);
            LogprobGather.forward(dlogits.address(), DType.F32, dtargets.address(), dlogp.address(), dlse.address(), rows,
                    v, 1f, 0);
            JCudaDriver.cuCtxSynchronize();

            float[] cos = new float[n], logp = new float[rows], lse = new float[rows];
            JCudaDriver.cuMemcpyDtoH(Pointer.to(cos), dcos, (long) n * Sizeof.FLOAT);
            JCudaDriver.cuMemcpyDtoH(Pointer.to(logp), dlogp, (long) rows * Sizeof.FLOAT);
            JCudaDriver.cuMemcpyDtoH(Pointer.to(lse), dlse, (long) rows * Sizeof.FLOAT);
            assertClose("cosine via JCuda memory", seed, CosineSimilarityReference.pairs(a, b, n, d), cos, 1e-5, 1e-5);
            float[] refLogp = new float[rows], refLse = new float[rows];
            LogprobGatherReference.forward(logits, targets, rows, v, 1f, refLogp, refLse);
            assertClose("logp via JCuda memory", seed, refLogp, logp, 2e-5, 1e-5);
            assertClose("lse via JCuda memory", seed, refLse, lse, 2e-5, 1e-5);
        } finally {
            for (CUdeviceptr p : new CUdeviceptr[] {da, db, dcos, dlogits, dtargets, dlogp, dlse}) {
                JCudaDriver.cuMemFree(p);
            }
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
        }
    }

    private static RawDevicePtr alloc(long bytes) {
        RawDevicePtr p = new RawDevicePtr();
        JCudaDriver.cuMemAlloc(p, bytes);
        return p;
    }
}
