package dev.rlsr.trainer.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.IoMessages;
import dev.rlsr.engine.io.TempFiles;
import dev.rlsr.trainer.train.TrainState;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A run directory and its layout:
 * <pre>
 * RUN/
 *   .rlsr-run                marks the folder as a run directory; locked while a run uses it (holder: pid, host)
 *   config.yaml              the resolved configuration (every key)
 *   metrics.jsonl            one line per optimizer step: {"stage", "step", loss, reward_mean, ...}
 *   run.log                  the console's log lines
 *   checkpoints/
 *     sft-step-000100/       HF model directory + optimizer.safetensors + trainer_state.json
 *     latest                 one line: the name of the newest complete checkpoint
 *   models/&lt;stage&gt;/          the final model of each finished stage (HF directory)
 *   eval/&lt;stage&gt;.jsonl       per-example evaluation results
 *   plots/*.png              curves of the main metrics
 *   report.md, summary.json
 * </pre>
 *
 * <p>One run per directory: {@link #open} takes an exclusive lock on {@code .rlsr-run} (an OS file lock, so a killed
 * run releases it and the next run takes over) and holds it until {@link #close()}; a second run on the directory
 * gets a {@link RunFailure} naming the holder. {@link #inspect} reads a run directory without locking or changing it.
 *
 * <p>Only the tool's own files: a folder that is not empty and not a run directory (no {@code .rlsr-run}) is
 * refused rather than written into, so a user's {@code config.yaml} or {@code report.md} is never overwritten.
 *
 * <p>Crash safety: every directory that can be "the latest" (a checkpoint, a stage's final model) is written under a
 * temporary name ({@link TempFiles#name}: {@code .<name>.rlsr-tmp-<n>}) and renamed into place when complete; the
 * {@code latest} pointer is replaced by an atomic rename after that. A crash at any point leaves {@code latest}
 * naming a complete checkpoint (or no pointer), and the temporaries are removed the next time the run directory is
 * opened: exactly those names, never another hidden file.
 */
public final class RunDir implements AutoCloseable {
    public static final String CONFIG = "config.yaml";
    public static final String METRICS = "metrics.jsonl";
    public static final String LOG = "run.log";
    public static final String CHECKPOINTS = "checkpoints";
    public static final String LATEST = "latest";
    public static final String MODELS = "models";
    public static final String EVAL = "eval";
    public static final String PLOTS = "plots";
    public static final String REPORT = "report.md";
    public static final String SUMMARY = "summary.json";
    /** Marks a run directory and is the file its lock is taken on. */
    public static final String MARKER = ".rlsr-run";
    /** Written last into a checkpoint before its rename: a checkpoint directory without it is not complete. */
    public static final String TRAINER_STATE = "trainer_state.json";
    public static final String OPTIMIZER = "optimizer.safetensors";

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Pattern CHECKPOINT_NAME = Pattern.compile("([a-z0-9+_-]+?)-step-(\\d+)");
    // temporaries of versions before the .rlsr-tmp- names, recognised only inside checkpoints/ and models/ (folders
    // only the tool writes), so that an interrupted run of such a version still resumes cleanly
    private static final Pattern LEGACY_TEMPORARY = Pattern.compile(
            "\\.tmp-[a-z0-9+_-]+-\\d+|\\.[a-z0-9+_-]+\\.tmp-old-\\d+|\\.[a-z0-9+_.-]+\\.tmp-\\d+");

    private final Path root;
    private final FileChannel lockChannel;
    private final FileLock lock;

    private RunDir(Path root, FileChannel lockChannel, FileLock lock) {
        this.root = root;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    /**
     * Opens a run directory for a run: creates it when missing or empty, refuses a non-empty folder that is not a
     * run directory, takes the run's exclusive lock (released by {@link #close()}) and removes the temporary
     * leftovers of a crashed write.
     *
     * @param root the run directory (-o)
     * @return the opened run directory; close it to release the lock
     * @throws RunFailure {@link RunFailure#USAGE} for a folder that is not a run directory, {@link RunFailure#BUSY}
     *                    when another run holds the lock
     */
    public static RunDir open(Path root) {
        Path r = root.toAbsolutePath().normalize();
        if (Files.exists(r) && !Files.isDirectory(r)) {
            throw new RunFailure(RunFailure.USAGE, "the run directory " + root + " exists and is a file; give a"
                    + " directory with -o (or run.dir)");
        }
        if (Files.isDirectory(r) && !Files.exists(r.resolve(MARKER)) && !isEmpty(r) && !isLegacyRunDirectory(r)) {
            throw new RunFailure(RunFailure.USAGE, "the run directory " + root + " is not empty and is not an rlsr"
                    + " run directory (it has no " + MARKER + " file). rlsr writes config.yaml, report.md,"
                    + " summary.json, checkpoints/ and models/ into its run directory and removes its own temporary"
                    + " files there, so it does not use a folder that holds other files. Give a new or empty folder"
                    + " with -o DIR (or --set run.dir=DIR).");
        }
        FileChannel ch = null;
        try {
            Files.createDirectories(r);
            ch = FileChannel.open(r.resolve(MARKER), StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                l = null; // held by this process (another RunDir not yet closed)
            }
            if (l == null) {
                String holder = describeHolder(ch);
                ch.close();
                throw new RunFailure(RunFailure.BUSY, "the run directory " + root + " is in use by another run ("
                        + holder + "). Two runs in one directory would write the same checkpoints and metrics;"
                        + " wait for that run to finish, stop it, or give another directory with -o DIR.");
            }
            // a killed holder's lock was released by the OS: this run takes over and records itself
            ch.truncate(0);
            ch.write(StandardCharsets.UTF_8.encode(holderJson()), 0);
            ch.force(true);
            RunDir d = new RunDir(r, ch, l);
            ch = null;
            try {
                Files.createDirectories(r.resolve(CHECKPOINTS));
                Files.createDirectories(r.resolve(MODELS));
                d.removeTemporaries();
            } catch (IOException | RuntimeException e) {
                d.close();
                throw e;
            }
            return d;
        } catch (IOException e) {
            throw new CheckpointException("cannot open the run directory " + root + ": " + IoMessages.describe(e), e);
        } finally {
            if (ch != null) {
                try {
                    ch.close();
                } catch (IOException ignored) {
                    // nothing held
                }
            }
        }
    }

    /**
     * A read-only view of an existing run directory: no lock taken, nothing created or removed.
     *
     * @param root the run directory
     * @return a view for reading checkpoints and files
     */
    public static RunDir inspect(Path root) {
        return new RunDir(root.toAbsolutePath().normalize(), null, null);
    }

    private static boolean isEmpty(Path dir) {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            return !ds.iterator().hasNext();
        } catch (IOException e) {
            throw new CheckpointException("cannot list the run directory " + dir + ": " + IoMessages.describe(e), e);
        }
    }

    /**
     * A run directory written by a version without the marker: it always created checkpoints/ and models/ and wrote
     * config.yaml and run.log at the start of a run. All four together are taken as a run directory.
     */
    private static boolean isLegacyRunDirectory(Path dir) {
        return Files.isDirectory(dir.resolve(CHECKPOINTS)) && Files.isDirectory(dir.resolve(MODELS))
                && Files.isRegularFile(dir.resolve(CONFIG)) && Files.isRegularFile(dir.resolve(LOG));
    }

    private static String holderJson() {
        ObjectNode n = JSON.createObjectNode();
        n.put("pid", ProcessHandle.current().pid());
        n.put("host", hostName());
        n.put("started", Instant.now().toString());
        n.put("user", System.getProperty("user.name", ""));
        return n.toString() + "\n";
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException | RuntimeException e) {
            return "unknown host";
        }
    }

    private static String describeHolder(FileChannel ch) {
        try {
            ByteBuffer b = ByteBuffer.allocate((int) Math.min(4096, ch.size()));
            ch.read(b, 0);
            JsonNode n = JSON.readTree(new String(b.array(), 0, b.position(), StandardCharsets.UTF_8));
            if (n != null && n.has("pid")) {
                long pid = n.path("pid").asLong();
                boolean self = pid == ProcessHandle.current().pid();
                return "process " + pid + (self ? " (this process)" : "") + " on " + n.path("host").asText("?")
                        + ", user " + n.path("user").asText("?") + ", started " + n.path("started").asText("?");
            }
        } catch (IOException | RuntimeException ignored) {
            // the holder is still writing its details
        }
        return "a process that has not recorded itself yet";
    }

    /** Releases the run's lock (a directory from {@link #inspect} holds none). Idempotent. */
    @Override
    public void close() {
        try {
            if (lock != null && lock.isValid()) {
                lock.release();
            }
            if (lockChannel != null) {
                lockChannel.close();
            }
        } catch (IOException ignored) {
            // closing the channel releases the lock in any case
        }
    }

    public Path root() {
        return root;
    }

    public Path resolve(String name) {
        return root.resolve(name);
    }

    public Path checkpoints() {
        return root.resolve(CHECKPOINTS);
    }

    /** Where the final model of a finished stage lives ("sft+rlsr" is kept as is: '+' is a valid file name). */
    public Path stageModel(String stage) {
        return root.resolve(MODELS).resolve(stage);
    }

    /** True when a stage's final model was written completely. */
    public boolean stageDone(String stage) {
        return Files.isRegularFile(stageModel(stage).resolve("config.json"));
    }

    public static String checkpointName(String stage, long step) {
        return String.format("%s-step-%06d", stage, step);
    }

    /** A complete checkpoint on disk. */
    public record Checkpoint(Path dir, String stage, long step, TrainState state) {}

    /**
     * The newest complete checkpoint: the one {@code checkpoints/latest} names if it is complete, else (pointer
     * missing or pointing at something deleted) the newest complete one found by scanning.
     */
    public Optional<Checkpoint> latestCheckpoint() {
        Path ptr = checkpoints().resolve(LATEST);
        if (Files.isRegularFile(ptr)) {
            try {
                String name = Files.readString(ptr).trim();
                Optional<Checkpoint> c = readCheckpoint(checkpoints().resolve(name));
                if (c.isPresent()) {
                    return c;
                }
            } catch (IOException ignored) {
                // fall through to the scan
            }
        }
        return listCheckpoints().stream().reduce((a, b) -> b);
    }

    /** The newest complete checkpoint of one stage. */
    public Optional<Checkpoint> latestCheckpoint(String stage) {
        Optional<Checkpoint> l = latestCheckpoint();
        if (l.isPresent() && l.get().stage().equals(stage)) {
            return l;
        }
        return listCheckpoints().stream().filter(c -> c.stage().equals(stage)).reduce((a, b) -> b);
    }

    /** Every complete checkpoint, oldest first (by modification time, then step). */
    public List<Checkpoint> listCheckpoints() {
        List<Checkpoint> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(checkpoints())) {
            for (Path p : ds) {
                if (Files.isDirectory(p) && !p.getFileName().toString().startsWith(".")) {
                    readCheckpoint(p).ifPresent(out::add);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.sort(Comparator.comparing((Checkpoint c) -> mtime(c.dir().resolve(TRAINER_STATE)))
                .thenComparingLong(Checkpoint::step));
        return out;
    }

    private static long mtime(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            return 0;
        }
    }

    private static Optional<Checkpoint> readCheckpoint(Path dir) {
        Matcher m = CHECKPOINT_NAME.matcher(dir.getFileName().toString());
        Path state = dir.resolve(TRAINER_STATE);
        if (!m.matches() || !Files.isRegularFile(state) || !Files.isRegularFile(dir.resolve("config.json"))) {
            return Optional.empty();
        }
        try {
            TrainState s = JSON.readValue(state.toFile(), TrainState.class);
            return Optional.of(new Checkpoint(dir, s.stage(), s.step(), s));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Points {@code checkpoints/latest} at {@code name} (atomic replace). */
    void setLatest(String name) {
        writeAtomically(checkpoints().resolve(LATEST), name + "\n");
    }

    /**
     * Removes the temporaries of writes that a crash interrupted: names made by {@link TempFiles#name} in the run
     * directory, checkpoints/ and models/, and the older spellings inside checkpoints/ and models/. Nothing else.
     */
    void removeTemporaries() throws IOException {
        for (Path dir : List.of(root, checkpoints(), root.resolve(MODELS))) {
            boolean toolOnly = !dir.equals(root);
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                for (Path p : ds) {
                    String n = p.getFileName().toString();
                    if (TempFiles.isTemporary(n) || (toolOnly && LEGACY_TEMPORARY.matcher(n).matches())) {
                        deleteTree(p);
                    }
                }
            }
        }
    }

    /**
     * Moves a complete temporary directory to {@code target}, replacing what is there: the old directory is first
     * renamed aside (so {@code target} is never half-written), then removed.
     */
    static void publish(Path tmp, Path target) throws IOException {
        Path aside = null;
        if (Files.exists(target)) {
            aside = target.resolveSibling(TempFiles.name(target.getFileName().toString()));
            Files.move(target, aside, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        if (aside != null) {
            deleteTree(aside);
        }
    }

    /** Writes a small text file by writing a temporary sibling, forcing it to disk and renaming it over the target. */
    public static void writeAtomically(Path file, String text) {
        Path tmp = file.resolveSibling(TempFiles.name(file.getFileName().toString()));
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ch.write(StandardCharsets.UTF_8.encode(text));
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // best effort
            }
            throw new CheckpointException("cannot write " + file + ": " + IoMessages.describe(e), e);
        }
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        Files.walkFileTree(p, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.delete(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                Files.delete(dir);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
