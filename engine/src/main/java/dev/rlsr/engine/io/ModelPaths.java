package dev.rlsr.engine.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;

/**
 * Files a model directory names (the shards of {@code model.safetensors.index.json}, the weights file) must lie
 * inside that directory. An index entry {@code ../other/model.safetensors} or {@code /etc/passwd}, or a symbolic link
 * pointing out of the directory, would make the loader read a file the user never chose.
 *
 * <p>One exception, so that models load from the Hugging Face hub cache: there, {@code snapshots/<rev>/<file>} is a
 * link to {@code blobs/<hash>} of the same cached repository, which is allowed.
 */
public final class ModelPaths {
    private ModelPaths() {
    }

    /**
     * The file {@code name} inside {@code dir}.
     *
     * @param dir     the model directory
     * @param name    a relative file name from the index
     * @param namedIn the file that names it (the index), for the message
     * @return the resolved, normalised path
     * @throws CheckpointException for an absolute name, a name that leaves the directory ({@code ..}), or a file
     *                             whose real location (symbolic links resolved) is outside the directory
     */
    public static Path resolveInside(Path dir, String name, Path namedIn) {
        Path rel;
        try {
            rel = Path.of(name);
        } catch (InvalidPathException e) {
            throw new CheckpointException(namedIn + ": '" + name + "' is not a valid file name");
        }
        if (name.isBlank() || rel.isAbsolute()) {
            throw new CheckpointException(namedIn + ": the file name '" + name + "' is " + (name.isBlank() ? "empty"
                    : "an absolute path") + "; shards must be files inside the model directory " + dir);
        }
        Path base = dir.toAbsolutePath().normalize();
        Path p = base.resolve(rel).normalize();
        if (!p.startsWith(base) || p.equals(base)) {
            throw new CheckpointException(namedIn + ": the file name '" + name + "' points outside the model"
                    + " directory " + dir + "; shards must be files inside it");
        }
        requireRealPathInside(dir, p, namedIn);
        return p;
    }

    /**
     * Throws when {@code file} (inside {@code dir} by name) is, after resolving symbolic links, somewhere else
     * (except a Hugging Face cache blob of the same cached repository). A missing file passes: the caller reports it.
     *
     * @param dir     the model directory
     * @param file    a file inside it by name
     * @param namedIn the file that names it, for the message, or null
     */
    public static void requireRealPathInside(Path dir, Path file, Path namedIn) {
        if (!Files.exists(file)) {
            return;
        }
        Path real, realDir;
        try {
            real = file.toRealPath();
            realDir = dir.toRealPath();
        } catch (IOException e) {
            throw new CheckpointException("cannot resolve " + file + ": " + IoMessages.describe(e), e);
        }
        if (real.startsWith(realDir) || isHubCacheBlob(realDir, real)) {
            return;
        }
        throw new CheckpointException((namedIn == null ? "" : namedIn + ": ") + file + " is a link to " + real
                + ", outside the model directory " + dir + "; the loader reads only files inside the model"
                + " directory (copy the file in instead of linking it)");
    }

    /** {@code <repo>/snapshots/<rev>} may link to {@code <repo>/blobs/...}: the hub cache's own layout. */
    private static boolean isHubCacheBlob(Path realDir, Path real) {
        Path snapshots = realDir.getParent();
        if (snapshots == null || snapshots.getFileName() == null
                || !snapshots.getFileName().toString().equals("snapshots") || snapshots.getParent() == null) {
            return false;
        }
        return real.startsWith(snapshots.getParent().resolve("blobs"));
    }
}
