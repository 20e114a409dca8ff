package dev.rlsr.engine.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** config.json against the weights' headers, and non-finite weights, are caught at load and named. */
class CheckpointChecksTest {

    @TempDir
    Path tmp;

    private Path modelDir(String name) {
        Path dir = tmp.resolve(name);
        try (DecoderModel m = DecoderModel.init(ModelConfig.of("qwen3", 64, 16, 32, 2, 2, 1, 8, true), 1,
                CpuBackend.INSTANCE)) {
            m.save(dir);
        }
        return dir;
    }

    private static void setConfig(Path dir, String key, long value) throws Exception {
        ObjectMapper json = new ObjectMapper();
        ObjectNode n = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        n.put(key, value);
        json.writeValue(dir.resolve("config.json").toFile(), n);
    }

    @Test
    void moreLayersThanTheWeightsHoldIsNamedBeforeAnythingIsAllocated() throws Exception {
        for (long layers : new long[]{3, 1_000_000_000L}) {
            Path dir = modelDir("layers" + layers);
            setConfig(dir, "num_hidden_layers", layers);
            for (boolean backbone : new boolean[]{false, true}) {
                CheckpointException e = assertThrows(CheckpointException.class, () -> (backbone
                        ? DecoderModel.loadBackbone(dir, CpuBackend.INSTANCE)
                        : DecoderModel.load(dir, CpuBackend.INSTANCE)).close());
                assertTrue(e.getMessage().contains("num_hidden_layers is " + layers), e.getMessage());
                assertTrue(e.getMessage().contains("holds 2 decoder layers (layers 0..1)"), e.getMessage());
                assertTrue(e.getMessage().contains("config.json"), e.getMessage());
            }
        }
    }

    @Test
    void embeddingShapeAgainstVocabAndHiddenSize() throws Exception {
        Path dir = modelDir("vocab");
        setConfig(dir, "vocab_size", 100);
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> DecoderModel.load(dir, CpuBackend.INSTANCE).close());
        assertTrue(e.getMessage().contains("vocab_size 100") && e.getMessage().contains("[64, 16]"), e.getMessage());
    }

    @Test
    void aNanWeightIsReportedWithFileAndTensor() throws Exception {
        Path dir = modelDir("nan");
        Path file = dir.resolve("model.safetensors");
        TreeMap<String, float[]> all = new TreeMap<>();
        try (SafeTensors st = SafeTensors.open(file)) {
            for (String n : st.names()) {
                all.put(n, st.floats(n));
            }
            SafeTensorsWriter w = new SafeTensorsWriter();
            for (var e : all.entrySet()) {
                float[] v = e.getValue();
                if (e.getKey().equals("model.layers.1.mlp.up_proj.weight")) {
                    v[7] = Float.NaN;
                }
                w.putF32(e.getKey(), st.info(e.getKey()).shape(), v);
            }
            Path rewritten = tmp.resolve("rewritten.safetensors");
            w.write(rewritten);
            Files.move(rewritten, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> DecoderModel.load(dir, CpuBackend.INSTANCE).close());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("'model.layers.1.mlp.up_proj.weight' holds NaN at element 7"),
                e.getMessage());
    }
}
