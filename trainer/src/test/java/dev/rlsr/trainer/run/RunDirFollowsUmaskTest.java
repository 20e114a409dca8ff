package dev.rlsr.trainer.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rlsr.trainer.cli.RlsrCli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Everything a run writes (the run directory, checkpoints, final models, metrics, log, evaluation, plots, report)
 * gets the modes the process umask gives, so another account can read (serve) what a run produced. The expected modes
 * are those of a folder and a file created next to it by the plain JDK calls, which apply the umask: nothing comes
 * from the code under test. ([H] defect 11: engine's {@code SavedFilesFollowUmaskTest} covers a model saved alone.)
 */
class RunDirFollowsUmaskTest {
    @TempDir
    Path tmp;

    @Test
    void everyFolderAndFileOfARunFollowsTheUmask() throws Exception {
        Path model = TinyModels.writeModelDir(tmp.resolve("m"), 1);
        Path run = tmp.resolve("run");
        StringWriter err = new StringWriter();
        CommandLine cl = RlsrCli.commandLine();
        cl.setErr(new PrintWriter(err));
        cl.setOut(new PrintWriter(new StringWriter()));
        int code = cl.execute("pipeline", "-m", model.toString(), "-d", "demo", "-o", run.toString(), "--quiet",
                "--set", "data.max_train_examples=16", "--set", "eval.max_examples=4", "--set", "eval.reward=rougeL",
                "--set", "eval.sampling.max_new_tokens=4", "--set", "eval.bootstrap_samples=100", "--set",
                "sft.batch_size=8", "--set", "sft.max_seq_len=96", "--set", "sft.checkpoint_every=1", "--set",
                "rl.reward=rougeL", "--set", "rl.steps=2", "--set", "rl.checkpoint_every=1", "--set",
                "rl.prompts_per_step=2", "--set", "rl.group_size=2", "--set", "rl.sampling.max_new_tokens=4");
        assertEquals(0, code, err.toString());

        String dirMode = PosixFilePermissions.toString(Files.getPosixFilePermissions(
                Files.createDirectory(tmp.resolve("reference-dir"))));
        String fileMode = PosixFilePermissions.toString(Files.getPosixFilePermissions(
                Files.createFile(tmp.resolve("reference-file"))));
        List<String> wrong = new ArrayList<>();
        int files = 0;
        int dirs = 0;
        try (Stream<Path> all = Files.walk(run)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                if (Files.isSymbolicLink(p)) {
                    continue;
                }
                boolean dir = Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS);
                String mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(p,
                        LinkOption.NOFOLLOW_LINKS));
                if (!mode.equals(dir ? dirMode : fileMode)) {
                    wrong.add(run.relativize(p) + " " + mode);
                }
                if (dir) {
                    dirs++;
                } else {
                    files++;
                }
            }
        }
        assertTrue(wrong.isEmpty(), "expected " + dirMode + " for folders and " + fileMode + " for files: " + wrong);
        // what was walked: checkpoints of both stages, both final models, the eval files, plots and the report
        for (String p : new String[]{"checkpoints", "models/sft", "models/sft+rl", "metrics.jsonl", "run.log",
                "report.md", "summary.json", "eval", "plots"}) {
            assertTrue(Files.exists(run.resolve(p)), p + " is missing from the run directory");
        }
        try (Stream<Path> ck = Files.list(run.resolve("checkpoints"))) {
            assertTrue(ck.filter(Files::isDirectory).count() >= 2, "checkpoints of both stages");
        }
        assertTrue(dirs >= 8 && files >= 20, dirs + " folders, " + files + " files");
    }
}
