package dev.rlsr.engine.io;

import dev.rlsr.kernels.DType;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The FFM reader against a naive decoder, on the Hugging Face fixture checkpoints. */
class SafeTensorsFixtureTest {

    static List<Path> cases() {
        return CheckpointFixtures.modelCases();
    }

    @Test
    void fixturesArePresent() {
        assertFalse(cases().isEmpty(), "no fixture case (a folder with model.safetensors) under "
                + CheckpointFixtures.root());
    }

    @ParameterizedTest
    @MethodSource("cases")
    void readsEveryTensorLikeANaiveDecoder(Path dir) throws Exception {
        Path file = dir.resolve("model.safetensors");
        Map<String, CheckpointFixtures.Naive> naive = CheckpointFixtures.naiveRead(file);
        try (SafeTensors st = SafeTensors.open(file)) {
            assertEquals(new ArrayList<>(naive.keySet()), new ArrayList<>(st.names()), "names in header order");
            assertEquals("pt", st.metadata().get("format"));
            for (var e : naive.entrySet()) {
                TensorInfo info = st.info(e.getKey());
                assertEquals(DType.parse(e.getValue().dtype()), info.dtype());
                assertArrayEquals(e.getValue().shape(), info.shape(), e.getKey());
                assertEquals(info.numel() * info.dtype().bytes(), info.byteLength());
                float[] expected = e.getValue().f32();
                float[] got = st.floats(e.getKey(), e.getValue().shape());
                assertArrayEquals(expected, got, e.getKey());
                assertEquals(info.byteLength(), st.segment(e.getKey()).byteSize());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void opensAModelDirectory(Path dir) {
        try (SafeTensors a = SafeTensors.open(dir); SafeTensors b = SafeTensors.open(dir.resolve("model.safetensors"))) {
            assertEquals(b.names(), a.names());
            String first = a.names().iterator().next();
            assertArrayEquals(b.floats(first), a.floats(first));
        }
    }

    /** expected.safetensors (written by HF, no __metadata__) carries I64 tensors: read them as longs and ints. */
    @Test
    void readsHfIntegerAndFloatTensorsOfExpectedFiles() throws Exception {
        int i64 = 0;
        for (Path dir : cases()) {
            Path file = dir.resolve("expected.safetensors");
            if (!Files.isRegularFile(file)) {
                continue;
            }
            Map<String, CheckpointFixtures.Naive> naive = CheckpointFixtures.naiveRead(file);
            try (SafeTensors st = SafeTensors.open(file)) {
                assertEquals(new ArrayList<>(naive.keySet()), new ArrayList<>(st.names()));
                for (var e : naive.entrySet()) {
                    if (e.getValue().dtype().equals("I64")) {
                        long[] expected = e.getValue().i64();
                        assertArrayEquals(expected, st.longs(e.getKey()), e.getKey());
                        assertArrayEquals(Arrays.stream(expected).mapToInt(Math::toIntExact).toArray(),
                                st.ints(e.getKey()), e.getKey());
                        i64++;
                    } else {
                        assertArrayEquals(e.getValue().f32(), st.floats(e.getKey()), e.getKey());
                    }
                }
            }
        }
        assertTrue(i64 > 0, "no I64 tensor found in any expected.safetensors under " + CheckpointFixtures.root());
    }

    @Test
    void fixtureParamNamesAreAllInTheCheckpoint() throws Exception {
        int checked = 0;
        for (Path dir : CheckpointFixtures.decoderCases()) {
            JsonNode names = CheckpointFixtures.json(dir.resolve("fixture.json")).get("param_names");
            try (SafeTensors st = SafeTensors.open(dir)) {
                assertEquals(names.size(), st.size(), dir.toString());
                for (JsonNode n : names) {
                    assertTrue(st.contains(n.asText()), n.asText());
                    checked++;
                }
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    void shapeMismatchNamesTensorFileAndBothShapes() {
        Path file = CheckpointFixtures.bundled("qwen2_tiny").resolve("model.safetensors");
        try (SafeTensors st = SafeTensors.open(file)) {
            String name = "model.layers.0.mlp.up_proj.weight";
            CheckpointException e = assertThrows(CheckpointException.class, () -> st.floats(name, 64, 176));
            assertEquals("tensor '" + name + "' in " + file + ": expected shape [64, 176], found [176, 64]",
                    e.getMessage());
            assertEquals(176 * 64, st.floats(name, 176, 64).length);
        }
    }

    @Test
    void missingTensorNamesTensorAndCheckpoint() {
        Path file = CheckpointFixtures.bundled("llama_tiny").resolve("model.safetensors");
        try (SafeTensors st = SafeTensors.open(file)) {
            assertFalse(st.contains("model.layers.0.self_attn.q_proj.bias"));
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> st.info("model.layers.0.self_attn.q_proj.bias"));
            assertTrue(e.getMessage().contains("'model.layers.0.self_attn.q_proj.bias'"), e.getMessage());
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
            assertThrows(CheckpointException.class, () -> st.floats("model.layers.9.mlp.up_proj.weight"));
        }
    }

    @Test
    void integerReadOfAFloatTensorIsRefused() {
        try (SafeTensors st = SafeTensors.open(CheckpointFixtures.bundled("qwen3_tiny"))) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> st.longs("model.norm.weight"));
            assertTrue(e.getMessage().contains("F32"), e.getMessage());
        }
    }

    @Test
    void directoryWithoutCheckpointIsNamed(@TempDir Path empty) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(empty));
        assertTrue(e.getMessage().contains(empty.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
    }

    @Test
    void closeIsIdempotentAndInvalidatesReads() {
        SafeTensors st = SafeTensors.open(CheckpointFixtures.bundled("qwen2_tiny"));
        String name = st.names().iterator().next();
        var seg = st.segment(name);
        st.close();
        st.close();
        assertThrows(IllegalStateException.class, () -> st.floats(name));
        assertThrows(IllegalStateException.class, () -> seg.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
    }
}
