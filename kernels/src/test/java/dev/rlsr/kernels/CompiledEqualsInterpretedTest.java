package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

/**
 * The CPU references give the same bits before and after the JIT compiles them: {@link ReproProbe} in a JVM that
 * only interprets ({@code -Xint}: every Vector API operation runs as its Java fallback) and in one that first runs
 * the probe until C2 has compiled its loops (the Vector API as intrinsics) must print the same SHA-256 of every
 * output. Fails with {@code reduceLanes(ADD)} or {@code lanewise(EXP)} in a reference (see {@link
 * dev.rlsr.kernels.cpu.CpuVec}). Both JVMs run with the test's thread count, so the work splits alike.
 */
class CompiledEqualsInterpretedTest {

    private static String probe(String mode, String warm) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector",
                "-Drlsr.threads=" + dev.rlsr.kernels.cpu.CpuParallel.THREADS));
        if (!mode.isEmpty()) {
            cmd.add(mode);
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), ReproProbe.class.getName(), warm));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "probe " + mode + " did not finish");
        assertEquals(0, p.exitValue(), "probe " + mode + " failed:\n" + out);
        List<String> lines = out.lines().filter(l -> l.matches("[0-9a-f]{64}")).toList();
        assertEquals(1, lines.size(), "probe " + mode + " printed no digest:\n" + out);
        return lines.getFirst();
    }

    @Test
    void interpretedAndCompiledReferencesGiveTheSameBits() throws Exception {
        String interpreted = probe("-Xint", "0");
        String compiled = probe("", "3000");
        assertEquals(interpreted, compiled, "the references' outputs changed when C2 compiled them");
    }
}
