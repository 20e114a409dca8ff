package dev.rlsr.kernels;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.KernelArgs;

/**
 * One CUDA kernel of this project ({@code <name>} in {@code native/cuda/<file>.cu}), with its {@code CUfunction}
 * cached for the last context it was launched in. Launchers keep one {@code static final Kernel} per kernel and fill
 * {@link KernelArgs#local()}, so a launch from Java costs one {@code cuCtxGetCurrent}, one field read and the
 * {@code cuLaunchKernel} call: nothing is allocated or looked up in a map (see {@code LaunchOverheadBench}).
 * Launches are asynchronous on the given stream, in the calling thread's current context. Thread-safe.
 */
public final class Kernel {
    private record Bound(long context, long function) {
    }

    private final String file;
    private final String name;
    private volatile Bound bound;

    private Kernel(String file, String name) {
        this.file = file;
        this.name = name;
    }

    /**
     * A handle to kernel {@code name} of {@code file}.cu; nothing is compiled or loaded until the first launch.
     *
     * @param file the source file's name without {@code .cu}, e.g. {@code "rmsnorm"}
     * @param name the kernel's {@code extern "C"} name, e.g. {@code "rmsnorm_forward_bf16_kernel"}
     * @return the handle
     */
    public static Kernel of(String file, String name) {
        return new Kernel(file, name);
    }

    /** {@return the kernel's source file name without {@code .cu}} */
    public String file() {
        return file;
    }

    /** {@return the kernel's {@code extern "C"} name} */
    public String name() {
        return name;
    }

    /**
     * The {@code CUfunction} in the calling thread's current context (compiled and loaded on first use).
     *
     * @return the function handle
     */
    public long function() {
        long ctx = CudaDriver.contextGetCurrent();
        Bound b = bound;
        if (b != null && b.context == ctx) {
            return b.function;
        }
        long fn = CudaKernels.function(file, name);
        bound = new Bound(ctx, fn);
        return fn;
    }

    /**
     * Launches on a 1-D grid of {@code grid} blocks of {@code block} threads.
     *
     * @param grid   blocks
     * @param block  threads per block
     * @param stream a {@code CUstream}, 0 for the legacy default stream
     * @param args   the arguments in the kernel's parameter order
     */
    public void launch(int grid, int block, long stream, KernelArgs args) {
        CudaDriver.launchKernel(function(), grid, 1, 1, block, 1, 1, 0, stream, args);
    }

    /**
     * Launches on a 3-D grid with dynamic shared memory.
     *
     * @param gx          grid x
     * @param gy          grid y
     * @param gz          grid z
     * @param bx          block x
     * @param by          block y
     * @param bz          block z
     * @param sharedBytes dynamic shared memory per block
     * @param stream      a {@code CUstream}, 0 for the legacy default stream
     * @param args        the arguments in the kernel's parameter order
     */
    public void launch(int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes, long stream,
                       KernelArgs args) {
        CudaDriver.launchKernel(function(), gx, gy, gz, bx, by, bz, sharedBytes, stream, args);
    }

    @Override
    public String toString() {
        return file + ".cu:" + name;
    }
}
