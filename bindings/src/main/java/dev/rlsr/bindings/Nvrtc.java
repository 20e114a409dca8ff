package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * NVRTC (libnvrtc.so.13, else .12): compiles CUDA C++ source to a cubin for one architecture at run time.
 * No GPU is needed to compile. Kernels should be declared {@code extern "C"} so their names are not mangled.
 *
 * <p>Headers: NVRTC has no include path of its own. When the source has an {@code #include} and the options
 * carry no {@code -I}, the CUDA toolkit include folder ({@code $CUDA_HOME/include}, {@code $CUDA_PATH/include},
 * {@code /usr/local/cuda/include}, plus its {@code cccl/}) is added if its CUDA major version equals NVRTC's,
 * so {@code <cuda_bf16.h>} resolves. Kernels that must compile on machines with only the driver and libnvrtc
 * should avoid includes: bf16 as raw {@code unsigned short} bits with shift conversions works everywhere.
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class Nvrtc {
    private Nvrtc() {}

    /** {@code nvrtcResult}: success. */
    public static final int NVRTC_SUCCESS = 0;
    /** {@code nvrtcResult}: the program did not compile (the log says why). */
    public static final int NVRTC_ERROR_COMPILATION = 6;

    private static final String LIB = "nvrtc";

    private static SymbolLookup lib() {
        return NativeLibrary.load(LIB, "rlsr.lib.nvrtc", "libnvrtc.so.13", "libnvrtc.so.12");
    }

    private static NativeFunction fn(FunctionDescriptor fd, String name) {
        return new NativeFunction(LIB, Nvrtc::lib, fd, name);
    }

    private static FunctionDescriptor res(MemoryLayout... args) {
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    // const char *nvrtcGetErrorString(nvrtcResult result)
    private static final NativeFunction nvrtcGetErrorString =
            fn(FunctionDescriptor.of(ADDRESS, JAVA_INT), "nvrtcGetErrorString");
    // nvrtcResult nvrtcVersion(int *major, int *minor)
    private static final NativeFunction nvrtcVersion = fn(res(ADDRESS, ADDRESS), "nvrtcVersion");
    // nvrtcResult nvrtcCreateProgram(nvrtcProgram *prog, const char *src, const char *name, int numHeaders,
    //     const char * const *headers, const char * const *includeNames)
    private static final NativeFunction nvrtcCreateProgram =
            fn(res(ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS), "nvrtcCreateProgram");
    // nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog)
    private static final NativeFunction nvrtcDestroyProgram = fn(res(ADDRESS), "nvrtcDestroyProgram");
    // nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char * const *options)
    private static final NativeFunction nvrtcCompileProgram =
            fn(res(ADDRESS, JAVA_INT, ADDRESS), "nvrtcCompileProgram");
    // nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t *logSizeRet)
    private static final NativeFunction nvrtcGetProgramLogSize = fn(res(ADDRESS, ADDRESS), "nvrtcGetProgramLogSize");
    // nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char *log)
    private static final NativeFunction nvrtcGetProgramLog = fn(res(ADDRESS, ADDRESS), "nvrtcGetProgramLog");
    // nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t *cubinSizeRet)
    private static final NativeFunction nvrtcGetCUBINSize = fn(res(ADDRESS, ADDRESS), "nvrtcGetCUBINSize");
    // nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char *cubin)
    private static final NativeFunction nvrtcGetCUBIN = fn(res(ADDRESS, ADDRESS), "nvrtcGetCUBIN");
    // nvrtcResult nvrtcGetPTXSize(nvrtcProgram prog, size_t *ptxSizeRet)
    private static final NativeFunction nvrtcGetPTXSize = fn(res(ADDRESS, ADDRESS), "nvrtcGetPTXSize");
    // nvrtcResult nvrtcGetPTX(nvrtcProgram prog, char *ptx)
    private static final NativeFunction nvrtcGetPTX = fn(res(ADDRESS, ADDRESS), "nvrtcGetPTX");

    /** {@return true when libnvrtc loads}; never throws. */
    public static boolean isAvailable() {
        return unavailableReason().isEmpty();
    }

    /** {@return why NVRTC cannot be used ("" when it can)}; never throws. */
    public static String unavailableReason() {
        try {
            version();
            return "";
        } catch (Throwable t) {
            return t.getMessage() == null ? t.toString() : t.getMessage();
        }
    }

    /**
     * {@code nvrtcGetErrorString}.
     *
     * @param result an {@code nvrtcResult}
     * @return its description, or "nvrtcResult N" when NVRTC cannot say
     */
    public static String errorString(int result) {
        try {
            MemorySegment s = (MemorySegment) nvrtcGetErrorString.handle().invokeExact(result);
            return s.address() == 0 ? "nvrtcResult " + result : s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return "nvrtcResult " + result;
        }
    }

    private static void check(NativeFunction f, int result) {
        if (result != NVRTC_SUCCESS) {
            throw new NvrtcException(f.name(), result, errorString(result), null);
        }
    }

    /** {@return the NVRTC version, e.g. "13.0"} */
    public static String version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            check(nvrtcVersion, (int) nvrtcVersion.handle().invokeExact(major, minor));
            return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Compiles {@code source} for {@code arch} and returns the cubin (an ELF image).
     *
     * @param source      the CUDA C++ program text
     * @param programName its name in error messages, e.g. "logprob_gather.cu"
     * @param arch        a real architecture, e.g. "sm_90"
     * @param options     further NVRTC options, e.g. "-default-device", "--std=c++17", "-lineinfo"; the
     *                    architecture option is added here
     * @return the cubin's bytes
     * @throws NvrtcException with the compiler log when compilation fails
     */
    public static byte[] compileToCubin(String source, String programName, String arch, List<String> options) {
        return compile(source, programName, arch, options, true);
    }

    /**
     * Like {@link #compileToCubin} but returns PTX text for a virtual architecture.
     *
     * @param source      the CUDA C++ program text
     * @param programName its name in error messages
     * @param arch        a virtual architecture, e.g. "compute_90"
     * @param options     further NVRTC options; the architecture option is added here
     * @return the PTX text
     * @throws NvrtcException with the compiler log when compilation fails
     */
    public static String compileToPtx(String source, String programName, String arch, List<String> options) {
        byte[] ptx = compile(source, programName, arch, options, false);
        int n = ptx.length;
        while (n > 0 && ptx[n - 1] == 0) {
            n--;
        }
        return new String(ptx, 0, n, java.nio.charset.StandardCharsets.UTF_8);
    }

    /**
     * The options actually passed to NVRTC for these arguments (also the input of {@link KernelCache}'s key).
     *
     * @param source  the program text (its includes decide whether toolkit headers are added)
     * @param arch    e.g. "sm_90" or "compute_90"
     * @param options the caller's options
     * @return every option, the architecture's included
     * @throws IllegalArgumentException for an architecture that is not {@code sm_NN} or {@code compute_NN}
     */
    public static List<String> effectiveOptions(String source, String arch, List<String> options) {
        if (arch == null || !arch.matches("(sm|compute)_\\d+[a-z]?")) {
            throw new IllegalArgumentException("arch must look like sm_90 or compute_90, got " + arch);
        }
        List<String> all = new ArrayList<>();
        all.add("--gpu-architecture=" + arch);
        all.addAll(options == null ? List.of() : options);
        boolean hasInclude = all.stream().anyMatch(o -> o.startsWith("-I") || o.startsWith("--include-path"));
        if (!hasInclude && source.contains("#include")) {
            all.addAll(toolkitIncludeOptions());
        }
        return all;
    }

    /**
     * {@code -I<cuda>/include} (and {@code -I<cuda>/include/cccl}, where CUDA 13 keeps {@code <nv/target>}) when
     * that toolkit's major version equals NVRTC's: headers of another CUDA release clash with NVRTC's built-in
     * ones (seen: CUDA 13 headers under NVRTC 11.8 fail on NV_IF_ELSE_TARGET).
     *
     * @return the include options, empty when no matching toolkit is found
     */
    public static List<String> toolkitIncludeOptions() {
        Optional<java.nio.file.Path> inc = NativeLibrary.cudaIncludeDir();
        if (inc.isEmpty()) {
            return List.of();
        }
        OptionalInt headerMajor = toolkitMajorVersion(inc.get());
        int nvrtcMajor;
        try {
            nvrtcMajor = Integer.parseInt(version().split("\\.")[0]);
        } catch (RuntimeException e) {
            return List.of();
        }
        if (headerMajor.isEmpty() || headerMajor.getAsInt() != nvrtcMajor) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        out.add("-I" + inc.get());
        java.nio.file.Path cccl = inc.get().resolve("cccl");
        if (java.nio.file.Files.isDirectory(cccl)) {
            out.add("-I" + cccl);
        }
        return out;
    }

    /** CUDA major version of the headers in {@code includeDir}, read from cuda.h's CUDA_VERSION (13000 -> 13). */
    static OptionalInt toolkitMajorVersion(java.nio.file.Path includeDir) {
        try (var lines = java.nio.file.Files.lines(includeDir.resolve("cuda.h"))) {
            return lines.map(l -> l.strip())
                    .filter(l -> l.startsWith("#define CUDA_VERSION "))
                    .mapToInt(l -> Integer.parseInt(l.substring("#define CUDA_VERSION ".length()).strip()) / 1000)
                    .findFirst();
        } catch (java.io.IOException | RuntimeException e) {
            return OptionalInt.empty();
        }
    }

    private static byte[] compile(String source, String programName, String arch, List<String> options, boolean cubin) {
        if (source == null || source.isBlank()) {
            throw new IllegalArgumentException("empty CUDA source for program " + programName);
        }
        List<String> all = effectiveOptions(source, arch, options);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment progOut = arena.allocate(ADDRESS);
            check(nvrtcCreateProgram, (int) nvrtcCreateProgram.handle().invokeExact(progOut,
                    arena.allocateFrom(source), arena.allocateFrom(programName == null ? "program.cu" : programName),
                    0, MemorySegment.NULL, MemorySegment.NULL));
            MemorySegment prog = progOut.get(ADDRESS, 0);
            try {
                MemorySegment opts = arena.allocate(ADDRESS, Math.max(1, all.size()));
                for (int i = 0; i < all.size(); i++) {
                    opts.setAtIndex(ADDRESS, i, arena.allocateFrom(all.get(i)));
                }
                int rc = (int) nvrtcCompileProgram.handle().invokeExact(prog, all.size(), opts);
                if (rc != NVRTC_SUCCESS) {
                    throw new NvrtcException(nvrtcCompileProgram.name() + "(" + programName + ", " + arch + ")", rc,
                            errorString(rc), log(arena, prog));
                }
                NativeFunction sizeFn = cubin ? nvrtcGetCUBINSize : nvrtcGetPTXSize;
                NativeFunction getFn = cubin ? nvrtcGetCUBIN : nvrtcGetPTX;
                MemorySegment size = arena.allocate(JAVA_LONG);
                check(sizeFn, (int) sizeFn.handle().invokeExact(prog, size));
                long n = size.get(JAVA_LONG, 0);
                if (n <= 0) {
                    throw new NvrtcException(sizeFn.name(), 0, "empty output (was a virtual arch given for a cubin?)",
                            log(arena, prog));
                }
                MemorySegment buf = arena.allocate(n);
                check(getFn, (int) getFn.handle().invokeExact(prog, buf));
                return buf.toArray(JAVA_BYTE);
            } finally {
                int ignored = (int) nvrtcDestroyProgram.handle().invokeExact(progOut);
            }
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private static String log(Arena arena, MemorySegment prog) {
        try {
            MemorySegment size = arena.allocate(JAVA_LONG);
            if ((int) nvrtcGetProgramLogSize.handle().invokeExact(prog, size) != NVRTC_SUCCESS) {
                return "";
            }
            long n = size.get(JAVA_LONG, 0);
            if (n <= 1) {
                return "";
            }
            MemorySegment buf = arena.allocate(n);
            if ((int) nvrtcGetProgramLog.handle().invokeExact(prog, buf) != NVRTC_SUCCESS) {
                return "";
            }
            return buf.getString(0);
        } catch (Throwable t) {
            return "(log unavailable: " + t + ")";
        }
    }
}
