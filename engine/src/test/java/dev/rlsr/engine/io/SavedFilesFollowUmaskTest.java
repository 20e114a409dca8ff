package dev.rlsr.engine.io;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Saved models must be readable by whoever the umask lets read the user's other files (another account serving the
 * model). The expected modes are those of a directory and a file created in the same place by the plain JDK calls,
 * which apply the process umask: nothing here comes from the code under test.
 */
class SavedFilesFollowUmaskTest {

    @TempDir
    Path tmp;

    private Set<PosixFilePermission> plainDirMode() throws Exception {
        return Files.getPosixFilePermissions(Files.createDirectory(tmp.resolve("reference-dir")));
    }

    private Set<PosixFilePermission> plainFileMode() throws Exception {
        return Files.getPosixFilePermissions(Files.createFile(tmp.resolve("reference-file")));
    }

    @Test
    void modelDirectoryAndFilesFollowTheUmask() throws Exception {
        Path dir = tmp.resolve("model");
        try (DecoderModel m = DecoderModel.init(ModelConfig.of("qwen3", 64, 16, 32, 1, 2, 1, 8, true), 1,
                CpuBackend.INSTANCE)) {
            m.save(dir);
            // saving over an existing directory replaces the files, which must follow the umask too
            m.save(dir);
        }
        Set<PosixFilePermission> d = plainDirMode(), f = plainFileMode();
        assertEquals(PosixFilePermissions.toString(d), PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)),
                "model directory");
        for (String name : new String[]{"model.safetensors", "config.json"}) {
            assertEquals(PosixFilePermissions.toString(f),
                    PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(name))), name);
        }
    }

    @Test
    void configAndSafetensorsWritersFollowTheUmask() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("d"));
        ModelConfig.of("llama", 64, 16, 32, 1, 2, 1, 8, false).save(dir);
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.putF32("x", new long[]{2}, new float[]{1, 2});
        w.write(dir.resolve("x.safetensors"));
        String f = PosixFilePermissions.toString(plainFileMode());
        assertEquals(f, PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("config.json"))));
        assertEquals(f, PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("x.safetensors"))));
    }
}
