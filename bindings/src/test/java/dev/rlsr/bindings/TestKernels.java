package dev.rlsr.bindings;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The CUDA files of the bindings tests ({@code src/test/resources/rlsr/cuda-test}): compiled by NVRTC on a GPU, and
 * compiled into the CUDA emulator by native/emulator/build.sh, whose NVRTC accepts exactly these texts.
 */
final class TestKernels {
    /** axpy and the SIMT checks, valid on a GPU and on the emulator. */
    static final String KERNELS = "test_kernels.cu";
    /** kernels with bugs the emulator must report; never launched on a GPU. */
    static final String FAULTS = "emulator_faults.cu";

    private TestKernels() {}

    static String source(String file) {
        try (InputStream in = TestKernels.class.getResourceAsStream("/rlsr/cuda-test/" + file)) {
            if (in == null) {
                throw new IllegalStateException("test kernel rlsr/cuda-test/" + file + " is not on the class path");
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
