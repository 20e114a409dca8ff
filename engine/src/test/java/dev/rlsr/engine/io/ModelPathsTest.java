package dev.rlsr.engine.io;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A model directory's shard index and weight file cannot lead the loader outside the directory. */
class ModelPathsTest {

    @TempDir
    Path tmp;

    private Path modelDir(Path dir) {
        try (DecoderModel m = DecoderModel.init(ModelConfig.of("llama", 64, 16, 32, 1, 2, 1, 8, false), 3,
                CpuBackend.INSTANCE)) {
            m.save(dir);
        }
        return dir;
    }

    /** Replaces model.safetensors by an index whose every entry names {@code shard}. */
    private static void indexPointingAt(Path dir, String shard) throws Exception {
        StringBuilder map = new StringBuilder();
        try (SafeTensors st = SafeTensors.open(dir.resolve("model.safetensors"))) {
            for (String n : st.names()) {
                map.append(map.isEmpty() ? "" : ", ").append('"').append(n).append("\": \"")
                        .append(shard.replace("\\", "\\\\")).append('"');
            }
        }
        Files.writeString(dir.resolve(SafeTensors.INDEX_FILE), "{\"metadata\": {}, \"weight_map\": {" + map + "}}");
    }

    @Test
    void indexEntriesWithDotDotAreRefused() throws Exception {
        Path other = modelDir(tmp.resolve("other"));
        Path dir = modelDir(tmp.resolve("victim"));
        indexPointingAt(dir, "../other/model.safetensors");
        Files.delete(dir.resolve("model.safetensors"));
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(dir).close());
        assertTrue(e.getMessage().contains("../other/model.safetensors") && e.getMessage().contains("outside"),
                e.getMessage());
        assertThrows(CheckpointException.class, () -> DecoderModel.load(dir, CpuBackend.INSTANCE).close());
        assertTrue(Files.exists(other.resolve("model.safetensors")));
    }

    @Test
    void absoluteIndexEntriesAreRefused() throws Exception {
        Path dir = modelDir(tmp.resolve("m"));
        Path elsewhere = Files.writeString(tmp.resolve("passwd"), "root:x:0:0:root:/root:/bin/bash\n");
        indexPointingAt(dir, elsewhere.toAbsolutePath().toString());
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(dir).close());
        assertTrue(e.getMessage().contains("absolute path"), e.getMessage());
    }

    @Test
    void linksOutOfTheDirectoryAreRefused() throws Exception {
        Path other = modelDir(tmp.resolve("other"));
        Path dir = Files.createDirectories(tmp.resolve("linked"));
        Files.copy(other.resolve("config.json"), dir.resolve("config.json"));
        Files.createSymbolicLink(dir.resolve("model.safetensors"), other.resolve("model.safetensors"));
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(dir).close());
        assertTrue(e.getMessage().contains("outside the model directory"), e.getMessage());
        // the same through an index entry that names a link inside the folder
        Files.delete(dir.resolve("model.safetensors"));
        Files.createSymbolicLink(dir.resolve("shard.safetensors"), other.resolve("model.safetensors"));
        indexPointingAtShard(dir, other);
        CheckpointException e2 = assertThrows(CheckpointException.class, () -> SafeTensors.open(dir).close());
        assertTrue(e2.getMessage().contains("outside the model directory"), e2.getMessage());
    }

    private static void indexPointingAtShard(Path dir, Path other) throws Exception {
        StringBuilder map = new StringBuilder();
        try (SafeTensors st = SafeTensors.open(other.resolve(Files.exists(other.resolve("model.safetensors")) ? "model.safetensors" : "part.safetensors"))) {
            for (String n : st.names()) {
                map.append(map.isEmpty() ? "" : ", ").append('"').append(n).append("\": \"shard.safetensors\"");
            }
        }
        Files.writeString(dir.resolve(SafeTensors.INDEX_FILE), "{\"weight_map\": {" + map + "}}");
    }

    /** The Hugging Face hub cache links snapshots/REV/file to blobs/HASH of the same repository: allowed. */
    @Test
    void theHubCacheLayoutStillLoads() throws Exception {
        Path repo = tmp.resolve("models--org--tiny");
        Path built = modelDir(tmp.resolve("built"));
        Path blobs = Files.createDirectories(repo.resolve("blobs"));
        Path snap = Files.createDirectories(repo.resolve("snapshots").resolve("abc123"));
        for (String f : new String[]{"config.json", "model.safetensors"}) {
            Path blob = Files.copy(built.resolve(f), blobs.resolve("hash-" + f));
            Files.createSymbolicLink(snap.resolve(f), Path.of("../../blobs").resolve(blob.getFileName()));
        }
        try (DecoderModel m = DecoderModel.load(snap, CpuBackend.INSTANCE)) {
            assertEquals(1, m.config().numLayers());
        }
        // and sub-folders inside the model directory are fine
        Path nested = modelDir(tmp.resolve("nested"));
        Files.createDirectories(nested.resolve("weights"));
        Files.move(nested.resolve("model.safetensors"), nested.resolve("weights/part.safetensors"));
        indexPointingAtShard(nested, nested.resolve("weights"));
        String idx = Files.readString(nested.resolve(SafeTensors.INDEX_FILE)).replace("\"shard.safetensors\"",
                "\"weights/part.safetensors\"");
        Files.writeString(nested.resolve(SafeTensors.INDEX_FILE), idx);
        try (DecoderModel m = DecoderModel.load(nested, CpuBackend.INSTANCE)) {
            assertEquals(64, m.config().vocabSize());
        }
    }
}
