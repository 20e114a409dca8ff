package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA kernels' logic checked without a GPU: the .cu sources (exactly as shipped) are compiled as host C++ with
 * a small SIMT shim (one thread per CUDA thread, barriers for __syncthreads and warp shuffles) and compared with
 * double formulas on seeded random inputs, odd sizes, misaligned rows, bf16, in-place backward, masked logits.
 * It does not check GPU-only properties (memory model, NVRTC, speed); the *GpuTest classes do. Skips only when no
 * g++ is on the PATH (and {@code -Drlsr.cxx} is not set); a compiler that fails to build the emulation fails the test.
 */
class KernelEmulationTest {
    private static final List<String> KERNELS = List.of("cosine_similarity", "logprob_gather", "group_advantages");

    @Test
    void kernelsMatchDoubleFormulasOnTheCpu(@TempDir Path dir) throws Exception {
        String explicit = System.getProperty("rlsr.cxx");
        String gxx = explicit == null ? "g++" : explicit;
        boolean present = runs(List.of(gxx, "--version"), dir);
        // a compiler named on purpose must be there; without one on the PATH there is nothing to run
        assertTrue(present || explicit == null, "the C++ compiler -Drlsr.cxx=" + explicit + " does not run");
        Assumptions.assumeTrue(present, "no C++ compiler '" + gxx + "' on PATH");
        for (String k : KERNELS) {
            Files.writeString(dir.resolve(k + ".cu"), CudaKernels.source(k));
        }
        for (String f : List.of("simt_shim.h", "simt_emulation.cpp")) {
            try (InputStream in = getClass().getResourceAsStream("/simt/" + f)) {
                Files.write(dir.resolve(f), in.readAllBytes());
            }
        }
        Path exe = dir.resolve("simt_emulation");
        Process cc = new ProcessBuilder(gxx, "-std=c++20", "-O2", "-pthread", "-Wno-unknown-pragmas", "-I", dir.toString(),
                dir.resolve("simt_emulation.cpp").toString(), "-o", exe.toString()).redirectErrorStream(true).start();
        String ccLog = new String(cc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(cc.waitFor(300, TimeUnit.SECONDS), "g++ timed out");
        // a compiler that cannot build the emulation (a C++ library without <barrier>, a kernel that does not
        // compile as C++) is a failure, never a skip: a skip would hide a kernel that no longer compiles
        assertEquals(0, cc.exitValue(), "compiling the emulation failed (it needs C++20 with <barrier>: g++ 11 or"
                + " newer, or -Drlsr.cxx=COMPILER):\n" + ccLog);
        Process run = new ProcessBuilder(exe.toString()).redirectErrorStream(true).start();
        String out = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(run.waitFor(300, TimeUnit.SECONDS), "emulation timed out");
        System.out.print(out);
        assertEquals(0, run.exitValue(), "kernel emulation found mismatches:\n" + out);
        assertTrue(out.contains("\n0 failures"), out);
    }

    private static boolean runs(List<String> cmd, Path dir) {
        try {
            Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }
}
