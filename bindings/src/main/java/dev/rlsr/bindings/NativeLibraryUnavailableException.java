package dev.rlsr.bindings;

import java.util.List;

/** A native library (libcuda, libnvrtc, libcublas, ...) or one of its symbols could not be found. */
public final class NativeLibraryUnavailableException extends RuntimeException {
    /** The library's short name. */
    private final String library;

    /**
     * An exception for a library that could not be loaded.
     *
     * @param library short library name, e.g. "cuda"
     * @param message what was tried and how to override it
     */
    public NativeLibraryUnavailableException(String library, String message) {
        super(message);
        this.library = library;
    }

    static NativeLibraryUnavailableException notFound(String library, String property, List<String> tried) {
        return new NativeLibraryUnavailableException(library,
                "native library '" + library + "' not found: tried " + String.join(", ", tried)
                        + " (set -D" + property + "=/path/to/lib.so or a soname to override;"
                        + " the CPU backend still works without it)");
    }

    /** {@return the short library name, e.g. "cuda" or "cublas"} */
    public String library() {
        return library;
    }
}
