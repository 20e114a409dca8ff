package dev.rlsr.examples.kernels;

import dev.rlsr.bindings.CudaContext;
import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.DeviceBuffer;
import dev.rlsr.kernels.CosineSimilarity;
import dev.rlsr.kernels.CosineSimilarityReference;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.GroupAdvantages;
import dev.rlsr.kernels.GroupAdvantagesReference;
import dev.rlsr.kernels.LogprobGather;
import dev.rlsr.kernels.LogprobGatherReference;

import java.util.Random;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * The three RLSR kernels called by a project that owns its GPU memory through JCuda: batched cosine similarity
 * (the RLSR reward), log-prob gather (log p(target) without a softmax over the vocabulary) and group-normalised
 * advantages (GRPO). The same calls run three ways:
 * <ol>
 *   <li>{@link #onJCudaMemory}: memory, context and stream from JCuda's driver API; our kernels get the raw
 *       addresses (needs an NVIDIA GPU);</li>
 *   <li>{@link #onRlsrBindingsMemory}: memory from {@code dev.rlsr.bindings} instead, for a project without JCuda
 *       (also runs on the RLSR CUDA emulator);</li>
 *   <li>{@link #onCpu}: the plain-Java references, same contracts on {@code float[]} (no GPU).</li>
 * </ol>
 * The rules every kernel call follows: pointers are device addresses ({@code long}) valid in the calling thread's
 * <b>current context</b>; a launch is asynchronous on the given stream (0 = the legacy default stream), so
 * synchronise before reading results; the first call per context compiles the kernel with NVRTC (cached on disk).
 */
public final class KernelsJCudaExample {

    /**
     * Inputs of the three kernels, row-major fp32.
     *
     * @param n       cosine pairs
     * @param d       embedding size
     * @param a       embeddings (n, d)
     * @param b       embeddings (n, d)
     * @param rows    log-prob rows (tokens)
     * @param vocab   vocabulary size V
     * @param logits  (rows, V)
     * @param targets (rows) token ids in [0, V), or negative to ignore a row
     * @param prompts P groups
     * @param group   G responses per prompt
     * @param rewards (P, G)
     */
    public record Inputs(int n, int d, float[] a, float[] b, int rows, int vocab, float[] logits, int[] targets,
                         int prompts, int group, float[] rewards) {
        /**
         * Seeded random inputs of the sizes of a small RLSR step: 64 MiniLM-sized (384) embedding pairs, 16 tokens
         * over a 1000-word vocabulary (the last one ignored), 8 prompts with 4 responses each.
         *
         * @param seed random seed
         * @return the inputs
         */
        public static Inputs random(long seed) {
            Random r = new Random(seed);
            int n = 64, d = 384, rows = 16, v = 1000, p = 8, g = 4;
            int[] targets = new int[rows];
            for (int i = 0; i < rows; i++) {
                targets[i] = i == rows - 1 ? -100 : r.nextInt(v);
            }
            return new Inputs(n, d, gaussian(r, n * d, 1), gaussian(r, n * d, 1), rows, v, gaussian(r, rows * v, 3),
                    targets, p, g, uniform(r, p * g));
        }
    }

    /**
     * What the three kernels computed.
     *
     * @param cosine     (n) cos(a_i, b_i)
     * @param logp       (rows) log softmax(logits)[target], 0 for an ignored row
     * @param lse        (rows) logsumexp of each logits row
     * @param advantages (P, G) (r - mean_g) / (std_g + 1e-4), std the sample standard deviation
     */
    public record Outputs(float[] cosine, float[] logp, float[] lse, float[] advantages) {
    }

    private KernelsJCudaExample() {
    }

    /**
     * The plain-Java references: the kernels' contracts on host arrays, no GPU needed.
     *
     * @param in the inputs
     * @return the outputs
     */
    public static Outputs onCpu(Inputs in) {
        float[] cos = CosineSimilarityReference.pairs(in.a(), in.b(), in.n(), in.d());
        float[] logp = new float[in.rows()], lse = new float[in.rows()];
        LogprobGatherReference.forward(in.logits(), in.targets(), in.rows(), in.vocab(), 1f, logp, lse);
        float[] adv = GroupAdvantagesReference.compute(in.rewards(), in.prompts(), in.group(), true,
                GroupAdvantages.DEFAULT_EPS);
        return new Outputs(cos, logp, lse, adv);
    }

    /**
     * JCuda's view of a device pointer with its raw address readable: {@code getNativePointer()} is protected, and a
     * subclass may call it on its own instances. {@code cuMemAlloc} fills it like any {@code CUdeviceptr}.
     */
    static final class RawDevicePtr extends CUdeviceptr {
        long address() {
            return getNativePointer() + getByteOffset();
        }
    }

    /** A JCuda stream whose {@code CUstream} handle is readable, for the kernels' {@code stream} argument. */
    static final class RawStream extends CUstream {
        long handle() {
            return getNativePointer();
        }
    }

    /**
     * Memory, context and stream owned by JCuda; the kernels run on the raw addresses on JCuda's stream.
     *
     * @param in the inputs
     * @return the outputs, read back after the stream finished
     */
    public static Outputs onJCudaMemory(Inputs in) {
        JCudaDriver.setExceptionsEnabled(true);
        JCudaDriver.cuInit(0);
        CUdevice device = new CUdevice();
        JCudaDriver.cuDeviceGet(device, 0);
        CUcontext ctx = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(ctx, device);
        JCudaDriver.cuCtxSetCurrent(ctx); // the kernels launch in this thread's current context
        RawStream stream = new RawStream();
        JCudaDriver.cuStreamCreate(stream, 0);
        RawDevicePtr a = upload(in.a()), b = upload(in.b()), logits = upload(in.logits());
        RawDevicePtr targets = upload(in.targets()), rewards = upload(in.rewards());
        RawDevicePtr cos = alloc(in.n()), logp = alloc(in.rows()), lse = alloc(in.rows());
        RawDevicePtr adv = alloc(in.prompts() * in.group());
        try {
            long s = stream.handle();
            CosineSimilarity.pairs(a.address(), b.address(), DType.F32, cos.address(), in.n(), in.d(), s);
            LogprobGather.forward(logits.address(), DType.F32, targets.address(), logp.address(), lse.address(),
                    in.rows(), in.vocab(), 1f, s);
            GroupAdvantages.compute(rewards.address(), adv.address(), in.prompts(), in.group(), s);
            JCudaDriver.cuStreamSynchronize(stream); // launches are asynchronous: wait before reading
            return new Outputs(download(cos, in.n()), download(logp, in.rows()), download(lse, in.rows()),
                    download(adv, in.prompts() * in.group()));
        } finally {
            for (CUdeviceptr p : new CUdeviceptr[] {a, b, logits, targets, rewards, cos, logp, lse, adv}) {
                JCudaDriver.cuMemFree(p);
            }
            JCudaDriver.cuStreamDestroy(stream);
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
        }
    }

    /**
     * The same calls on memory from {@code dev.rlsr.bindings} (FFM), on the default stream.
     *
     * @param in the inputs
     * @return the outputs
     */
    public static Outputs onRlsrBindingsMemory(Inputs in) {
        try (CudaContext ctx = CudaContext.open(0); // device 0's primary context, made current on this thread
             DeviceBuffer a = DeviceBuffer.of(in.a()); DeviceBuffer b = DeviceBuffer.of(in.b());
             DeviceBuffer logits = DeviceBuffer.of(in.logits()); DeviceBuffer targets = DeviceBuffer.of(in.targets());
             DeviceBuffer rewards = DeviceBuffer.of(in.rewards());
             DeviceBuffer cos = DeviceBuffer.alloc(4L * in.n()); DeviceBuffer logp = DeviceBuffer.alloc(4L * in.rows());
             DeviceBuffer lse = DeviceBuffer.alloc(4L * in.rows());
             DeviceBuffer adv = DeviceBuffer.alloc(4L * in.prompts() * in.group())) {
            CosineSimilarity.pairs(a.address(), b.address(), DType.F32, cos.address(), in.n(), in.d(), 0L);
            LogprobGather.forward(logits.address(), DType.F32, targets.address(), logp.address(), lse.address(),
                    in.rows(), in.vocab(), 1f, 0L);
            GroupAdvantages.compute(rewards.address(), adv.address(), in.prompts(), in.group(), 0L);
            ctx.synchronize();
            return new Outputs(cos.toFloatArray(), logp.toFloatArray(), lse.toFloatArray(), adv.toFloatArray());
        }
    }

    /**
     * Runs the references, then the GPU variants where a GPU is present, and prints the first values of each.
     *
     * @param args unused
     */
    public static void main(String[] args) {
        Inputs in = Inputs.random(42);
        print("CPU references", onCpu(in));
        if (!CudaDriver.isAvailable()) {
            System.out.println("no GPU: " + CudaDriver.unavailableReason());
            return;
        }
        print("rlsr-bindings memory", onRlsrBindingsMemory(in));
        print("JCuda memory", onJCudaMemory(in));
    }

    private static void print(String what, Outputs o) {
        System.out.printf("%-22s cos[0] %.6f  logp[0] %.6f  lse[0] %.6f  adv[0] %.6f%n", what, o.cosine()[0],
                o.logp()[0], o.lse()[0], o.advantages()[0]);
    }

    private static RawDevicePtr alloc(int floats) {
        RawDevicePtr p = new RawDevicePtr();
        JCudaDriver.cuMemAlloc(p, (long) floats * Sizeof.FLOAT);
        return p;
    }

    private static RawDevicePtr upload(float[] x) {
        RawDevicePtr p = alloc(x.length);
        JCudaDriver.cuMemcpyHtoD(p, Pointer.to(x), (long) x.length * Sizeof.FLOAT);
        return p;
    }

    private static RawDevicePtr upload(int[] x) {
        RawDevicePtr p = alloc(x.length); // int32, the same 4 bytes per element
        JCudaDriver.cuMemcpyHtoD(p, Pointer.to(x), (long) x.length * Sizeof.INT);
        return p;
    }

    private static float[] download(CUdeviceptr p, int n) {
        float[] out = new float[n];
        JCudaDriver.cuMemcpyDtoH(Pointer.to(out), p, (long) n * Sizeof.FLOAT);
        return out;
    }

    private static float[] gaussian(Random r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * scale);
        }
        return x;
    }

    private static float[] uniform(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = r.nextFloat();
        }
        return x;
    }
}
