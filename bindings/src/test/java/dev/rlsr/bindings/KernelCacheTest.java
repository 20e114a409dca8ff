package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelCacheTest {
    private static final String SRC = "extern \"C\" __global__ void k(float* x) { x[threadIdx.x] = 1.0f; }";

    /** A fake compiler: an ELF header plus the inputs, so different inputs give different bytes. */
    private static KernelCache.Compiler fake(AtomicInteger calls) {
        return (s, n, a, o) -> {
            calls.incrementAndGet();
            byte[] body = (s + "|" + a + "|" + o).getBytes();
            byte[] out = new byte[4 + body.length];
            out[0] = 0x7f;
            out[1] = 'E';
            out[2] = 'L';
            out[3] = 'F';
            System.arraycopy(body, 0, out, 4, body.length);
            return out;
        };
    }

    @Test
    void keyChangesWithEveryInput() {
        String base = KernelCache.key(SRC, "sm_90", List.of("-lineinfo"), "13.0");
        assertEquals(64, base.length());
        assertEquals(base, KernelCache.key(SRC, "sm_90", List.of("-lineinfo"), "13.0"));
        assertNotEquals(base, KernelCache.key(SRC + " ", "sm_90", List.of("-lineinfo"), "13.0"));
        assertNotEquals(base, KernelCache.key(SRC, "sm_80", List.of("-lineinfo"), "13.0"));
        assertNotEquals(base, KernelCache.key(SRC, "sm_90", List.of(), "13.0"));
        assertNotEquals(base, KernelCache.key(SRC, "sm_90", List.of("-lineinfo"), "13.1"));
        // separators: moving text between adjacent fields must change the key
        assertNotEquals(KernelCache.key("a", "sm_90", List.of("b", "c"), "1"),
                KernelCache.key("a", "sm_90", List.of("bc"), "1"));
    }

    @Test
    void missCompilesAndWritesAtomicallyHitReadsWithoutCompiling(@TempDir Path dir) throws IOException {
        AtomicInteger calls = new AtomicInteger();
        Path cache = dir.resolve("nested/cache");
        byte[] first = KernelCache.cubin(cache, SRC, "my kernel", "sm_90", List.of("-lineinfo"), "13.0", fake(calls));
        assertEquals(1, calls.get());
        try (Stream<Path> files = Files.list(cache)) {
            List<Path> all = files.toList();
            assertEquals(1, all.size(), "no temporary file may be left behind: " + all);
            String name = all.get(0).getFileName().toString();
            assertTrue(name.startsWith("my_kernel-sm_90-") && name.endsWith(".cubin"), name);
            assertArrayEquals(first, Files.readAllBytes(all.get(0)));
        }
        byte[] second = KernelCache.cubin(cache, SRC, "my kernel", "sm_90", List.of("-lineinfo"), "13.0", fake(calls));
        assertEquals(1, calls.get(), "a hit must not compile");
        assertArrayEquals(first, second);
        KernelCache.cubin(cache, SRC, "my kernel", "sm_80", List.of("-lineinfo"), "13.0", fake(calls));
        assertEquals(2, calls.get(), "another arch is another entry");
    }

    @Test
    void corruptEntryIsRecompiled(@TempDir Path dir) throws IOException {
        AtomicInteger calls = new AtomicInteger();
        byte[] good = KernelCache.cubin(dir, SRC, "k", "sm_90", List.of(), "13.0", fake(calls));
        Path entry;
        try (Stream<Path> files = Files.list(dir)) {
            entry = files.findFirst().orElseThrow();
        }
        Files.write(entry, new byte[] {1, 2, 3}); // truncated by a crash
        byte[] again = KernelCache.cubin(dir, SRC, "k", "sm_90", List.of(), "13.0", fake(calls));
        assertEquals(2, calls.get());
        assertArrayEquals(good, again);
        assertTrue(KernelCache.isElf(Files.readAllBytes(entry)));
        assertFalse(KernelCache.isElf(new byte[] {0x7f, 'E', 'L'}));
    }

    @Test
    void directoryFollowsTheSystemProperty(@TempDir Path dir) {
        String old = System.getProperty("rlsr.kernel.cache");
        System.setProperty("rlsr.kernel.cache", dir.toString());
        try {
            assertEquals(dir, KernelCache.directory());
        } finally {
            if (old == null) {
                System.clearProperty("rlsr.kernel.cache");
            } else {
                System.setProperty("rlsr.kernel.cache", old);
            }
        }
        assertTrue(KernelCache.directory().endsWith(Path.of("rlsr", "kernels")));
    }
}
