package dev.rlsr.trainer.run;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.io.TempFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One run per directory, and nothing of the user's in it deleted or overwritten. */
class RunDirSafetyTest {

    @TempDir
    Path tmp;

    @Test
    void aSecondRunOnTheDirectoryIsRefusedNamingTheHolder() {
        Path dir = tmp.resolve("run");
        try (RunDir first = RunDir.open(dir)) {
            RunFailure f = assertThrows(RunFailure.class, () -> RunDir.open(dir));
            assertEquals(RunFailure.BUSY, f.exitCode());
            assertTrue(f.getMessage().contains("in use by another run"), f.getMessage());
            assertTrue(f.getMessage().contains("process " + ProcessHandle.current().pid()), f.getMessage());
        }
        // released by close: the next run gets it
        try (RunDir again = RunDir.open(dir)) {
            assertEquals(dir.toAbsolutePath().normalize(), again.root());
        }
    }

    /** The lock of another process: refused while it lives, taken over once it was killed (kill -9). */
    @Test
    void theLockOfAKilledProcessIsTakenOver() throws Exception {
        Path dir = tmp.resolve("run");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                HoldRunDir.class.getName(), dir.toString()).redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            assertEquals("locked", line, "the holder process did not start");
            RunFailure f = assertThrows(RunFailure.class, () -> RunDir.open(dir));
            assertEquals(RunFailure.BUSY, f.exitCode());
            assertTrue(f.getMessage().contains("process " + p.pid()), f.getMessage());
        } finally {
            p.destroyForcibly();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        }
        try (RunDir taken = RunDir.open(dir)) {
            String holder = Files.readString(taken.resolve(RunDir.MARKER));
            assertTrue(holder.contains("\"pid\":" + ProcessHandle.current().pid()), holder);
        }
    }

    @Test
    void aFolderWithOtherFilesIsRefusedAndLeftAlone() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("project"));
        Files.writeString(dir.resolve("config.yaml"), "# my commented config\nsft: {epochs: 3}\n");
        Files.writeString(dir.resolve("report.md"), "my report\n");
        Path important = Files.createDirectories(dir.resolve(".tmp_important"));
        Files.writeString(important.resolve("notes.txt"), "keep me");
        Files.writeString(dir.resolve(".bashrc_tmp"), "x");
        Files.writeString(dir.resolve(".htmpl"), "y");
        RunFailure f = assertThrows(RunFailure.class, () -> RunDir.open(dir));
        assertEquals(RunFailure.USAGE, f.exitCode());
        assertTrue(f.getMessage().contains("not an rlsr run directory"), f.getMessage());
        assertEquals("# my commented config\nsft: {epochs: 3}\n", Files.readString(dir.resolve("config.yaml")));
        assertEquals("my report\n", Files.readString(dir.resolve("report.md")));
        assertEquals("keep me", Files.readString(important.resolve("notes.txt")));
        assertTrue(Files.exists(dir.resolve(".bashrc_tmp")) && Files.exists(dir.resolve(".htmpl")));
        assertFalse(Files.exists(dir.resolve(RunDir.MARKER)), "nothing was written");
        assertFalse(Files.exists(dir.resolve(RunDir.CHECKPOINTS)), "nothing was written");
    }

    /** Inside a run directory only the tool's own temporary names are removed on open, not other hidden files. */
    @Test
    void onlyTheToolsOwnTemporariesAreRemoved() throws Exception {
        Path dir = tmp.resolve("run");
        try (RunDir run = RunDir.open(dir)) {
            assertTrue(Files.exists(run.resolve(RunDir.MARKER)));
        }
        List<Path> users = List.of(dir.resolve(".tmp_important"), dir.resolve(".bashrc_tmp"), dir.resolve(".htmpl"),
                dir.resolve("checkpoints/.my.tmp"), dir.resolve("models/.tmpfile"));
        for (Path u : users) {
            Files.writeString(u, "user");
        }
        Path ownFile = dir.resolve(TempFiles.name("summary.json"));
        Files.writeString(ownFile, "{");
        Path ownDir = Files.createDirectories(dir.resolve("checkpoints").resolve(TempFiles.name("sft-step-000004")));
        try (DecoderModel m = TinyModels.model(1)) {
            m.save(ownDir.resolve("inner"));
        }
        Path legacy = Files.createDirectories(dir.resolve("checkpoints/.tmp-sft-step-000008-123456"));
        try (RunDir run = RunDir.open(dir)) {
            for (Path u : users) {
                assertEquals("user", Files.readString(u), u + " was touched");
            }
            assertFalse(Files.exists(ownFile), "own temporary file removed");
            assertFalse(Files.exists(ownDir), "own temporary checkpoint removed");
            assertFalse(Files.exists(legacy), "a temporary of the previous naming, inside checkpoints/, removed");
            assertEquals(dir.toAbsolutePath().normalize(), run.root());
        }
    }

    /** Run directories written before the marker existed still resume. */
    @Test
    void aRunDirectoryOfAnEarlierVersionIsAdopted() throws Exception {
        Path dir = tmp.resolve("old");
        Files.createDirectories(dir.resolve(RunDir.CHECKPOINTS));
        Files.createDirectories(dir.resolve(RunDir.MODELS));
        Files.writeString(dir.resolve(RunDir.CONFIG), "run: {dir: old}\n");
        Files.writeString(dir.resolve(RunDir.LOG), "[10:00:00] run directory: old\n");
        try (RunDir run = RunDir.open(dir)) {
            assertTrue(Files.exists(run.resolve(RunDir.MARKER)));
        }
        assertEquals("run: {dir: old}\n", Files.readString(dir.resolve(RunDir.CONFIG)), "opening writes nothing else");
    }

    @Test
    void anEmptyFolderBecomesARunDirectory() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("empty"));
        try (RunDir run = RunDir.open(dir)) {
            assertTrue(Files.isDirectory(run.checkpoints()));
        }
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertEquals(RunFailure.USAGE, assertThrows(RunFailure.class, () -> RunDir.open(file)).exitCode());
    }
}
