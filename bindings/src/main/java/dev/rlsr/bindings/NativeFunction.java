package dev.rlsr.bindings;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * One native function, bound on first use so that a missing library or symbol fails only the call that
 * needs it, with a message naming the symbol. Several names may be given: the first one the library
 * exports wins (e.g. {@code cuEventElapsedTime_v2} on CUDA 13 drivers, else {@code cuEventElapsedTime}).
 */
@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
final class NativeFunction {
    private final Supplier<SymbolLookup> library;
    private final String libraryName;
    private final FunctionDescriptor descriptor;
    private final String[] names;
    private volatile MethodHandle handle;
    private volatile String boundName;

    NativeFunction(String libraryName, Supplier<SymbolLookup> library, FunctionDescriptor descriptor, String... names) {
        this.libraryName = libraryName;
        this.library = library;
        this.descriptor = descriptor;
        this.names = names;
    }

    /** The downcall handle; binds it on first use. */
    MethodHandle handle() {
        MethodHandle h = handle;
        if (h == null) {
            synchronized (this) {
                h = handle;
                if (h == null) {
                    SymbolLookup lookup = library.get();
                    for (String name : names) {
                        Optional<MemorySegment> symbol = lookup.find(name);
                        if (symbol.isPresent()) {
                            h = Linker.nativeLinker().downcallHandle(symbol.get(), descriptor);
                            boundName = name;
                            handle = h;
                            return h;
                        }
                    }
                    throw new NativeLibraryUnavailableException(libraryName, "symbol " + String.join(" / ", names)
                            + " not found in the loaded " + libraryName + " library (too old a version?)");
                }
            }
        }
        return h;
    }

    /** The symbol actually bound (or the preferred one before binding), for error messages. */
    String name() {
        String b = boundName;
        return b != null ? b : names[0];
    }

    /** Whether the library exports one of the names; never throws. */
    boolean isPresent() {
        try {
            handle();
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }
}
