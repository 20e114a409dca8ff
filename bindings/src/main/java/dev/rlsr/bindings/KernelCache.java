package dev.rlsr.bindings;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * On-disk cache of NVRTC cubins, so each kernel is compiled once per (source, arch, options, NVRTC version).
 *
 * <p>Folder: system property {@code rlsr.kernel.cache}, else {@code $XDG_CACHE_HOME/rlsr/kernels}, else
 * {@code ~/.cache/rlsr/kernels}. Files are {@code <name>-<arch>-<sha256>.cubin}, written to a temporary file
 * in the same folder and renamed into place, so concurrent JVMs never read a half-written cubin. An entry
 * that is not an ELF image (truncated by a crash, edited by hand) is recompiled.
 */
public final class KernelCache {
    private KernelCache() {}

    /** What compiles on a miss; {@link Nvrtc#compileToCubin} in production, a fake in tests. */
    @FunctionalInterface
    interface Compiler {
        byte[] compile(String source, String name, String arch, List<String> options);
    }

    /** {@return the cache folder for this JVM (not created until the first write)} */
    public static Path directory() {
        String prop = System.getProperty("rlsr.kernel.cache");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "rlsr", "kernels");
        }
        return Path.of(System.getProperty("user.home"), ".cache", "rlsr", "kernels");
    }

    /**
     * The cubin of {@code source} for {@code arch}, from the cache or compiled with NVRTC.
     *
     * @param source  the CUDA C++ program text
     * @param name    program name, used in the file name and in compiler messages
     * @param arch    e.g. "sm_90"
     * @param options NVRTC options besides the architecture, e.g. "-default-device", "--std=c++17"
     * @return the cubin's bytes (an ELF image)
     * @throws NvrtcException when the source does not compile
     */
    public static byte[] cubin(String source, String name, String arch, List<String> options) {
        List<String> effective = Nvrtc.effectiveOptions(source, arch, options);
        return cubin(directory(), source, name, arch, effective, Nvrtc.version(),
                (s, n, a, o) -> Nvrtc.compileToCubin(s, n, a, options));
    }

    /** Testable core: {@code options} are the effective ones that go into the key. */
    static byte[] cubin(Path dir, String source, String name, String arch, List<String> options, String nvrtcVersion,
            Compiler compiler) {
        Path file = dir.resolve(fileName(name, arch, key(source, arch, options, nvrtcVersion)));
        if (Files.isRegularFile(file)) {
            try {
                byte[] cached = Files.readAllBytes(file);
                if (isElf(cached)) {
                    return cached;
                }
            } catch (IOException e) {
                // unreadable entry: fall through and rebuild it
            }
        }
        byte[] cubin = compiler.compile(source, name, arch, options);
        write(dir, file, cubin);
        return cubin;
    }

    /** sha256 over source, arch, options and NVRTC version (NUL-separated so fields cannot run together). */
    static String key(String source, String arch, List<String> options, String nvrtcVersion) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(source.getBytes(StandardCharsets.UTF_8));
            sha.update((byte) 0);
            sha.update(arch.getBytes(StandardCharsets.UTF_8));
            for (String o : options) {
                sha.update((byte) 0);
                sha.update(o.getBytes(StandardCharsets.UTF_8));
            }
            sha.update((byte) 1);
            sha.update(nvrtcVersion.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 missing from this JDK", e);
        }
    }

    static String fileName(String name, String arch, String key) {
        String safe = (name == null ? "kernel" : name).replaceAll("[^A-Za-z0-9_.-]", "_");
        return safe + "-" + arch + "-" + key + ".cubin";
    }

    static boolean isElf(byte[] b) {
        return b.length > 4 && b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F';
    }

    private static void write(Path dir, Path file, byte[] bytes) {
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, ".tmp-", ".cubin");
            Files.write(tmp, bytes);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            // a read-only cache must not stop training: the cubin is still returned, just not kept
            System.getLogger(KernelCache.class.getName()).log(System.Logger.Level.WARNING,
                    "could not write kernel cache entry " + file + ": " + e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }

}
