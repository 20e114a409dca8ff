package dev.rlsr.engine.io;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * The temporary names this project writes before an atomic rename: {@code .<target>.rlsr-tmp-<n>}. One spelling
 * everywhere, so that a clean-up after a crash can remove exactly what the tool created ({@link #isTemporary}) and
 * never a user's {@code .tmp_notes} or {@code .bashrc_tmp}.
 *
 * <p>Files and directories are created with the ordinary calls ({@link Files#createDirectory},
 * {@code CREATE_NEW}), not {@link Files#createTempFile}/{@link Files#createTempDirectory}: those use mode 0600/0700
 * whatever the umask, and the rename would carry that mode to the published model, so that another account could not
 * read (serve) it. Created this way, the umask decides, as for any other file the user writes.
 */
public final class TempFiles {
    /** The marker between the target's name and the counter. */
    public static final String MARK = ".rlsr-tmp-";

    private static final Pattern TEMPORARY = Pattern.compile("\\..+" + Pattern.quote(MARK) + "\\d+");
    private static final AtomicLong COUNTER = new AtomicLong(System.nanoTime() & Long.MAX_VALUE);

    private TempFiles() {
    }

    /**
     * A fresh temporary name for {@code base} (nothing is created).
     *
     * @param base the name of the file or directory the temporary will be renamed to
     * @return {@code .<base>.rlsr-tmp-<n>}
     */
    public static String name(String base) {
        return "." + base + MARK + COUNTER.incrementAndGet();
    }

    /**
     * Whether a name is one {@link #name} makes.
     *
     * @param fileName a bare name, no directory
     * @return true for {@code .<anything>.rlsr-tmp-<digits>}
     */
    public static boolean isTemporary(String fileName) {
        return TEMPORARY.matcher(fileName).matches();
    }

    /**
     * Creates a new empty temporary directory whose mode follows the umask.
     *
     * @param parent where to create it (created if missing)
     * @param base   the name the directory will be renamed to
     * @return the new directory {@code parent/.<base>.rlsr-tmp-<n>}
     * @throws IOException when it cannot be created
     */
    public static Path newDirectory(Path parent, String base) throws IOException {
        Files.createDirectories(parent);
        for (int attempt = 0; ; attempt++) {
            Path p = parent.resolve(name(base));
            try {
                return Files.createDirectory(p);
            } catch (FileAlreadyExistsException e) {
                if (attempt > 100) {
                    throw e;
                }
            }
        }
    }

    /**
     * Creates a new empty temporary file whose mode follows the umask.
     *
     * @param parent where to create it (created if missing)
     * @param base   the name the file will be renamed to
     * @return the new file {@code parent/.<base>.rlsr-tmp-<n>}
     * @throws IOException when it cannot be created
     */
    public static Path newFile(Path parent, String base) throws IOException {
        Files.createDirectories(parent);
        for (int attempt = 0; ; attempt++) {
            Path p = parent.resolve(name(base));
            try {
                return Files.createFile(p);
            } catch (FileAlreadyExistsException e) {
                if (attempt > 100) {
                    throw e;
                }
            }
        }
    }
}
