package dev.rlsr.bindings;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CUDA files of the bindings tests ({@code src/test/resources/rlsr/cuda-test}): compiled by NVRTC on a GPU, and
 * compiled into the CUDA emulator by native/emulator/build.sh, whose NVRTC accepts exactly these texts.
 */
final class TestKernels {
    /** axpy and the SIMT checks, valid on a GPU and on the emulator. */
    static final String KERNELS = "test_kernels.cu";
    /** kernels with bugs the emulator must report; never launched on a GPU. */
    static final String FAULTS = "emulator_faults.cu";
    /** tensor cores through native/cuda/rlsr_mma.cuh. */
    static final String MMA = "mma_kernels.cu";

    private static final Pattern INCLUDE =
            Pattern.compile("(?m)^[ \\t]*#[ \\t]*include[ \\t]*\"([A-Za-z0-9_]+\\.cuh)\"[^\\n]*$");

    private TestKernels() {}

    /**
     * The program text of {@code file}, with each {@code #include "x.cuh"} replaced by that header of native/cuda (class
     * path {@code rlsr/cuda/}) exactly as {@code CudaKernels.source} does it, since that is the text the emulator's
     * NVRTC accepts.
     */
    static String source(String file) {
        return expand(read("/rlsr/cuda-test/" + file), new HashSet<>());
    }

    private static String expand(String text, Set<String> seen) {
        Matcher m = INCLUDE.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String header = m.group(1);
            String body = seen.add(header) ? expand(read("/rlsr/cuda/" + header), seen) : "";
            m.appendReplacement(out, Matcher.quoteReplacement("// ---- begin " + header + "\n" + body + "\n// ---- end "
                    + header));
        }
        m.appendTail(out);
        return out.toString();
    }

    private static String read(String resource) {
        try (InputStream in = TestKernels.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(resource + " is not on the class path");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Compiles {@code file} for the current context's device and loads it. */
    static CudaModule load(String file) {
        GpuTestSupport.requireThat(Nvrtc.isAvailable(), () -> "NVRTC not available: " + Nvrtc.unavailableReason());
        String arch = CudaDriver.arch(CudaDriver.contextGetDevice());
        return CudaModule.load(Nvrtc.compileToCubin(source(file), file, arch, List.of()));
    }
}
