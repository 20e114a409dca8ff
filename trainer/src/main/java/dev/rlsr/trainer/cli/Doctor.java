package dev.rlsr.trainer.cli;

import dev.rlsr.bindings.CublasLt;
import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.KernelCache;
import dev.rlsr.bindings.Nccl;
import dev.rlsr.bindings.Nvrtc;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.trainer.run.RunFailure;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code rlsr doctor}: what this machine offers the engine. Java and CPU threads; the GPU, its driver and compute
 * capability; the CUDA libraries the bindings load (driver, NVRTC, cuBLASLt, NCCL) with their versions or why they are
 * missing; the kernel cache; and what {@code --device auto} would choose. Loads nothing beyond the libraries'
 * version queries and starts no computation.
 */
@Command(name = "doctor", mixinStandardHelpOptions = true,
        description = {"Prints what the engine finds on this machine: Java, CPU threads, GPU, driver, the CUDA"
                + " libraries (NVRTC, cuBLASLt, NCCL) with their versions or why they are missing, the kernel"
                + " cache, and the device --device auto would use.",
                "Exit code 0; with --require-gpu, 6 when no usable GPU was found."})
final class Doctor implements Callable<Integer> {
    @Option(names = "--require-gpu", description = "Exit with code 6 unless a usable GPU (not the CUDA emulator) is"
            + " found.")
    boolean requireGpu;

    @Override
    public Integer call() {
        PrintStream out = System.out;
        Runtime rt = Runtime.getRuntime();
        line(out, "java", Runtime.version() + " (" + System.getProperty("java.vendor") + "), max heap "
                + gib(rt.maxMemory()));
        line(out, "cpu", rt.availableProcessors() + " processors; the CPU backend uses " + CpuParallel.THREADS
                + " threads (-Drlsr.threads=N)");
        String driver = CudaDriver.unavailableReason();
        if (driver.isEmpty()) {
            int v = CudaDriver.driverVersion();
            line(out, "cuda driver", (v / 1000) + "." + (v % 1000) / 10 + (CudaDriver.isEmulator()
                    ? " — the RLSR CUDA emulator (-Drlsr.cuda.emulator): the GPU code path on the CPU, no speed"
                    : ""));
            int n = CudaDriver.deviceCount();
            for (int i = 0; i < n; i++) {
                int dev = CudaDriver.device(i);
                int[] cc = CudaDriver.computeCapability(dev);
                line(out, "gpu " + i, CudaDriver.deviceName(dev) + ", compute capability " + cc[0] + "." + cc[1]
                        + " (" + CudaDriver.arch(dev) + "), " + gib(CudaDriver.totalMem(dev)));
            }
        } else {
            line(out, "cuda driver", "not usable: " + driver);
        }
        String nvrtc = Nvrtc.unavailableReason();
        line(out, "nvrtc", nvrtc.isEmpty() ? Nvrtc.version() : "not usable: " + nvrtc);
        line(out, "cublasLt", CublasLt.isAvailable() ? version(CublasLt.version()) : "not loadable (libcublasLt.so.13"
                + " or .12; -Drlsr.lib.cublaslt=PATH)");
        line(out, "nccl", Nccl.isAvailable() ? version(Nccl.version()) + " (multi-GPU only)"
                : "not loadable (needed only for several GPUs)");
        Path cache = KernelCache.directory();
        line(out, "kernel cache", cache + " (" + cubins(cache) + ")");
        String missing = CudaBackend.unavailableReason();
        boolean gpu = missing.isEmpty() && !CudaBackend.isEmulator();
        line(out, "--device auto", gpu ? "cuda, bf16 (fp32 with --precision fp32)"
                : "cpu, fp32" + (missing.isEmpty() ? " (the emulator is used only with --device cuda)"
                : " (no usable GPU: " + missing + ")"));
        if (requireGpu && !gpu) {
            throw new RunFailure(RunFailure.DEVICE, "no usable GPU: " + (missing.isEmpty()
                    ? "only the CUDA emulator is selected" : missing));
        }
        return 0;
    }

    private static void line(PrintStream out, String what, String value) {
        out.printf(Locale.ROOT, "%-14s %s%n", what, value);
    }

    private static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
    }

    /** cuBLASLt and NCCL encode versions as MAJOR*10000 + MINOR*100 + PATCH (cuBLAS 13 as 130xxx). */
    private static String version(long v) {
        return v <= 0 ? "unknown version" : (v / 10000) + "." + (v / 100) % 100 + "." + v % 100;
    }

    private static String cubins(Path dir) {
        if (!Files.isDirectory(dir)) {
            return "empty";
        }
        try (Stream<Path> files = Files.list(dir)) {
            long n = files.filter(p -> p.getFileName().toString().endsWith(".cubin")).count();
            return n + " compiled kernel file" + (n == 1 ? "" : "s");
        } catch (IOException e) {
            return "unreadable: " + e.getMessage();
        }
    }
}
