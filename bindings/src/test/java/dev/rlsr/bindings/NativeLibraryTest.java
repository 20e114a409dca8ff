package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NativeLibraryTest {

    @Test
    void missingLibraryNamesEverySonameThePropertyAndTheCpuFallback() {
        NativeLibraryUnavailableException e = assertThrows(NativeLibraryUnavailableException.class,
                () -> NativeLibrary.load("rlsr-test-missing", "rlsr.lib.test.missing", "libdefinitely-absent.so.13",
                        "libdefinitely-absent.so.12"));
        String m = e.getMessage();
        assertTrue(m.contains("libdefinitely-absent.so.13") && m.contains("libdefinitely-absent.so.12"), m);
        assertTrue(m.contains("-Drlsr.lib.test.missing"), m);
        assertTrue(m.contains("CPU backend"), m);
        assertTrue(e.library().equals("rlsr-test-missing"));
        // the failure is cached but thrown again, never turned into a silent null
        assertThrows(NativeLibraryUnavailableException.class,
                () -> NativeLibrary.load("rlsr-test-missing", "rlsr.lib.test.missing", "libdefinitely-absent.so.13"));
        assertFalse(NativeLibrary.isLoadable("rlsr-test-missing", "rlsr.lib.test.missing", "libdefinitely-absent.so.13"));
    }

    @Test
    void propertyOverrideIsTheOnlyCandidateWhenSet() {
        System.setProperty("rlsr.lib.test.override", "/nonexistent/dir/libc-fake.so");
        try {
            // libc.so.6 would load, but an explicit override must not silently fall back to it
            NativeLibraryUnavailableException e = assertThrows(NativeLibraryUnavailableException.class,
                    () -> NativeLibrary.load("rlsr-test-override", "rlsr.lib.test.override", "libc.so.6"));
            assertTrue(e.getMessage().contains("/nonexistent/dir/libc-fake.so"), e.getMessage());
        } finally {
            System.clearProperty("rlsr.lib.test.override");
        }
    }

    @Test
    void missingEmulatorSaysHowToBuildIt(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path lib = dir.resolve(System.mapLibraryName("rlsr_cuda_emulator"));
        NativeLibraryUnavailableException e = assertThrows(NativeLibraryUnavailableException.class,
                () -> NativeLibrary.loadEmulator("cuda", lib));
        String m = e.getMessage();
        assertTrue(m.contains(lib.toString()) && m.contains("native/emulator/build.sh " + dir), m);
        assertTrue(e.library().equals("cuda"));
    }

    @Test
    void emulatorPropertySelectsTheLibraryInTheFolder() {
        String old = System.getProperty(NativeLibrary.EMULATOR_PROPERTY);
        try {
            System.setProperty(NativeLibrary.EMULATOR_PROPERTY, " ");
            assertFalse(NativeLibrary.emulatorLibrary().isPresent(), "a blank value means off");
            System.setProperty(NativeLibrary.EMULATOR_PROPERTY, "/some/dir");
            assertTrue(NativeLibrary.emulatorLibrary().orElseThrow().toString()
                    .equals("/some/dir/" + System.mapLibraryName("rlsr_cuda_emulator")));
        } finally {
            if (old == null) {
                System.clearProperty(NativeLibrary.EMULATOR_PROPERTY);
            } else {
                System.setProperty(NativeLibrary.EMULATOR_PROPERTY, old);
            }
        }
    }

    @Test
    void presentLibraryLoadsAndFindsSymbols() {
        var libc = NativeLibrary.load("rlsr-test-libc", "rlsr.lib.test.libc", "libdefinitely-absent.so.1", "libc.so.6");
        assertTrue(libc.find("strlen").isPresent());
    }

    @Test
    void missingSymbolNamesItself() {
        NativeFunction f = new NativeFunction("c",
                () -> NativeLibrary.load("rlsr-test-libc", "rlsr.lib.test.libc", "libc.so.6"),
                java.lang.foreign.FunctionDescriptor.ofVoid(), "rlsr_no_such_symbol_v2", "rlsr_no_such_symbol");
        NativeLibraryUnavailableException e = assertThrows(NativeLibraryUnavailableException.class, f::handle);
        assertTrue(e.getMessage().contains("rlsr_no_such_symbol_v2 / rlsr_no_such_symbol"), e.getMessage());
        assertFalse(f.isPresent());
    }

    @Test
    void fallbackSymbolNameIsBoundWhenThePreferredOneIsAbsent() {
        NativeFunction f = new NativeFunction("c",
                () -> NativeLibrary.load("rlsr-test-libc", "rlsr.lib.test.libc", "libc.so.6"),
                java.lang.foreign.FunctionDescriptor.of(java.lang.foreign.ValueLayout.JAVA_LONG,
                        java.lang.foreign.ValueLayout.ADDRESS), "strlen_v2_absent", "strlen");
        assertTrue(f.isPresent());
        assertTrue(f.name().equals("strlen"), f.name());
    }
}
