package dev.rlsr.bindings;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Finds a native library by a list of sonames, newest first, e.g.
 * {@code NativeLibrary.load("cublas", "rlsr.lib.cublas", "libcublas.so.13", "libcublas.so.12")}.
 *
 * <p>Order: the system property (a path or a name; when set, nothing else is tried), then each soname
 * through the dynamic loader (LD_LIBRARY_PATH, ldconfig cache, RUNPATH), then each soname inside the CUDA
 * install folders ($CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64,
 * /usr/local/cuda/targets/x86_64-linux/lib), because toolkit libraries are often not on the loader path.
 * Libraries stay loaded for the life of the JVM (global arena): unloading CUDA libraries is unsafe.
 * Results, failures included, are cached per name so a missing library costs one search.
 *
 * <p><b>The CUDA emulator.</b> With {@code -Drlsr.cuda.emulator=DIR} the libraries cuda, nvrtc, cublas, cublasLt and
 * nccl all resolve to {@code DIR/librlsr_cuda_emulator.so} ({@code .dylib} on macOS), which native/emulator/build.sh
 * builds: the project's kernels run on the CPU through a SIMT shim, so every CUDA code path runs on a machine without
 * a GPU (see native/README.md). This switch wins over the {@code rlsr.lib.*} properties; a blank value means off.
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
public final class NativeLibrary {
    private static final Map<String, Object> CACHE = new ConcurrentHashMap<>();
    private static final Map<Path, Object> EMULATOR_CACHE = new ConcurrentHashMap<>(); // (load() holds CACHE's bin)

    /** System property naming the folder of the CUDA emulator library; blank or unset means the real libraries. */
    public static final String EMULATOR_PROPERTY = "rlsr.cuda.emulator";
    /** The libraries (as named in {@link #load}) that the emulator stands in for. */
    static final Set<String> EMULATED = Set.of("cuda", "nvrtc", "cublas", "cublasLt", "nccl");

    private NativeLibrary() {}

    /**
     * The emulator library selected with {@code -Drlsr.cuda.emulator=DIR}, whether or not the file exists; empty when
     * the property is unset or blank.
     *
     * @return {@code DIR/librlsr_cuda_emulator.so} (or {@code .dylib}), or empty
     */
    public static java.util.Optional<Path> emulatorLibrary() {
        String dir = System.getProperty(EMULATOR_PROPERTY);
        if (dir == null || dir.isBlank()) {
            return java.util.Optional.empty();
        }
        return java.util.Optional.of(Path.of(dir.strip()).resolve(System.mapLibraryName("rlsr_cuda_emulator")));
    }

    /**
     * Returns a lookup over the first library that loads, or throws
     * {@link NativeLibraryUnavailableException} listing everything that was tried.
     */
    public static SymbolLookup load(String name, String property, String... sonames) {
        Object cached = CACHE.computeIfAbsent(name, n -> {
            try {
                return find(n, property, sonames);
            } catch (NativeLibraryUnavailableException e) {
                return e;
            }
        });
        if (cached instanceof NativeLibraryUnavailableException e) {
            // a fresh exception so the stack trace shows the caller, same message
            throw new NativeLibraryUnavailableException(e.library(), e.getMessage());
        }
        return (SymbolLookup) cached;
    }

    /** True when {@link #load} succeeds; never throws. */
    public static boolean isLoadable(String name, String property, String... sonames) {
        try {
            load(name, property, sonames);
            return true;
        } catch (NativeLibraryUnavailableException e) {
            return false;
        }
    }

    private static SymbolLookup find(String name, String property, String... sonames) {
        java.util.Optional<Path> emulator = emulatorLibrary();
        if (emulator.isPresent() && EMULATED.contains(name)) {
            return loadEmulator(name, emulator.get());
        }
        List<String> tried = new ArrayList<>();
        String override = System.getProperty(property);
        if (override != null && !override.isBlank()) {
            Path overridePath = Path.of(override.strip());
            if (overridePath.getParent() != null && overridePath.getFileName() != null) {
                preloadCompanions(overridePath.getParent(), overridePath.getFileName().toString());
            }
            SymbolLookup lookup = tryLoad(override.strip());
            if (lookup != null) {
                return lookup;
            }
            tried.add(override.strip() + " (from -D" + property + ")");
            throw NativeLibraryUnavailableException.notFound(name, property, tried);
        }
        for (String soname : sonames) {
            SymbolLookup lookup = tryLoad(soname);
            if (lookup != null) {
                return lookup;
            }
            tried.add(soname);
        }
        for (Path dir : cudaLibraryDirs()) {
            for (String soname : sonames) {
                Path candidate = dir.resolve(soname);
                if (Files.exists(candidate)) {
                    preloadCompanions(dir, soname);
                    SymbolLookup lookup = tryLoad(candidate.toString());
                    if (lookup != null) {
                        return lookup;
                    }
                    tried.add(candidate + " (exists but failed to load)");
                }
            }
        }
        tried.add("in " + cudaLibraryDirs());
        throw NativeLibraryUnavailableException.notFound(name, property, tried);
    }

    private static SymbolLookup loadEmulator(String name, Path lib) {
        if (!Files.isRegularFile(lib)) {
            throw new NativeLibraryUnavailableException(name, "the CUDA emulator is selected (-D" + EMULATOR_PROPERTY
                    + "=" + lib.getParent() + ") but " + lib + " does not exist: build it with native/emulator/build.sh "
                    + lib.getParent() + " (./mvnw verify builds native/target/emulator)");
        }
        // one lookup for all five names: the same library stands in for each
        Object shared = EMULATOR_CACHE.computeIfAbsent(lib.toAbsolutePath(), k -> {
            SymbolLookup l = tryLoad(lib.toAbsolutePath().toString());
            return l != null ? l : new NativeLibraryUnavailableException(name, "the CUDA emulator " + lib
                    + " exists but does not load (built for another platform? rebuild it with native/emulator/build.sh "
                    + lib.getParent() + ")");
        });
        if (shared instanceof NativeLibraryUnavailableException e) {
            throw new NativeLibraryUnavailableException(name, e.getMessage());
        }
        return (SymbolLookup) shared;
    }

    /**
     * libnvrtc dlopens libnvrtc-builtins.so.X.Y by soname at compile time; when libnvrtc came from a CUDA folder
     * that is not on the loader path, that lookup fails. Loading the builtins first from the same folder makes
     * the later dlopen find the already-loaded object by its soname.
     */
    private static void preloadCompanions(Path dir, String soname) {
        if (!soname.startsWith("libnvrtc.so")) {
            return;
        }
        try (var files = Files.list(dir)) {
            files.filter(p -> p.getFileName().toString().startsWith("libnvrtc-builtins.so"))
                    .sorted()
                    .forEach(p -> tryLoad(p.toString()));
        } catch (java.io.IOException e) {
            // best effort: NVRTC reports a missing builtins library itself
        }
    }

    private static SymbolLookup tryLoad(String nameOrPath) {
        try {
            return SymbolLookup.libraryLookup(nameOrPath.contains("/") ? Path.of(nameOrPath).toString() : nameOrPath,
                    Arena.global());
        } catch (IllegalArgumentException | UnsatisfiedLinkError e) {
            return null;
        }
    }

    /** CUDA install folders that exist, in search order. */
    static List<Path> cudaLibraryDirs() {
        Set<Path> dirs = new LinkedHashSet<>();
        for (String env : List.of("CUDA_HOME", "CUDA_PATH")) {
            String home = System.getenv(env);
            if (home != null && !home.isBlank()) {
                dirs.add(Path.of(home, "lib64"));
                dirs.add(Path.of(home, "targets", "x86_64-linux", "lib"));
                dirs.add(Path.of(home, "targets", "sbsa-linux", "lib"));
            }
        }
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        dirs.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        dirs.add(Path.of("/usr/local/cuda/targets/sbsa-linux/lib"));
        return dirs.stream().filter(Files::isDirectory).toList();
    }

    /** The CUDA include folder ($CUDA_HOME/include, $CUDA_PATH/include, /usr/local/cuda/include), if any. */
    public static java.util.Optional<Path> cudaIncludeDir() {
        List<Path> candidates = new ArrayList<>();
        for (String env : List.of("CUDA_HOME", "CUDA_PATH")) {
            String home = System.getenv(env);
            if (home != null && !home.isBlank()) {
                candidates.add(Path.of(home, "include"));
            }
        }
        candidates.add(Path.of("/usr/local/cuda/include"));
        return candidates.stream().filter(p -> Files.isRegularFile(p.resolve("cuda_bf16.h"))).findFirst();
    }
}
