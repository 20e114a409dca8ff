package dev.rlsr.trainer.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.trainer.train.TrainState;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
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
 * <p>Crash safety: every directory that can be "the latest" (a checkpoint, a stage's final model) is written under a
 * temporary name ({@code .tmp-*}) and renamed into place when complete; the {@code latest} pointer is replaced by
 * an atomic rename after that. A crash at any point leaves {@code latest} naming a complete checkpoint (or no
 * pointer), and stray temporary directories are removed the next time the run directory is opened.
 */
public final class RunDir {
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
    /** Written last into a checkpoint before its rename: a checkpoint directory without it is not complete. */
    public static final String TRAINER_STATE = "trainer_state.json";
    public static final String OPTIMIZER = "optimizer.safetensors";

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Pattern CHECKPOINT_NAME = Pattern.compile("([a-z0-9+_-]+?)-step-(\\d+)");

    private final Path root;

    private RunDir(Path root) {
        this.root = root;
    }

    /** Opens (creating if needed) a run directory and removes temporary leftovers of a crashed write. */
    public static RunDir open(Path root) {
        Path r = root.toAbsolutePath().normalize();
        try {
            if (Files.exists(r) && !Files.isDirectory(r)) {
                throw new CheckpointException("run directory " + root + " exists and is not a directory");
            }
            Files.createDirectories(r.resolve(CHECKPOINTS));
            Files.createDirectories(r.resolve(MODELS));
        } catch (IOException e) {
            throw new CheckpointException("cannot create run directory " + root + ": " + e.getMessage(), e);
        }
        RunDir d = new RunDir(r);
        d.removeTemporaries();
        return d;
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

    /** Removes {@code .tmp-*} leftovers of writes that a crash interrupted. */
    void removeTemporaries() {
        for (Path dir : List.of(root, checkpoints(), root.resolve(MODELS))) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, ".*tmp*")) {
                for (Path p : ds) {
                    deleteTree(p);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
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
            aside = target.resolveSibling("." + target.getFileName() + ".tmp-old-" + System.nanoTime());
            Files.move(target, aside, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        if (aside != null) {
            deleteTree(aside);
        }
    }

    /** Writes a small text file by writing a temporary sibling, forcing it to disk and renaming it over the target. */
    public static void writeAtomically(Path file, String text) {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp-" + System.nanoTime());
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
            throw new CheckpointException("cannot write " + file + ": " + e.getMessage(), e);
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
