package dev.rlsr.engine.model;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.io.CheckpointFixtures;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.io.SafeTensorsWriter;
import dev.rlsr.engine.tensor.Backend;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicContainer.dynamicContainer;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

/**
 * The decoder-embedding backbone ({@link DecoderModel#hiddenStates}, last-token pooling) against Hugging Face on
 * every decoder fixture case: the final-norm hidden state at a row's last position times the output projection
 * (the tied embedding, or lm_head) must reproduce HF's {@code logits} there, so the pooled vector is HF's without
 * new golden files. Also for the left-padded batch ({@code lp_logits}), and for a checkpoint saved without the
 * {@code model.} prefix and without lm_head (as Qwen3-Embedding ships), loaded by {@link DecoderModel#loadBackbone}.
 */
class DecoderEmbeddingParityTest {
    static final double TOL = 1e-4;

    @TempDir
    Path tmp;

    @TestFactory
    Stream<DynamicNode> lastTokenHiddenTimesOutputProjectionIsHfLogits() {
        List<Path> cases = CheckpointFixtures.decoderCases();
        assertFalse(cases.isEmpty(), "no decoder fixture cases under " + CheckpointFixtures.root());
        return cases.stream().map(dir -> {
            String name = dir.getFileName().toString();
            return dynamicContainer(name, Stream.of(
                    dynamicTest(name + ": last position, no padding", () -> check(dir, false, false)),
                    dynamicTest(name + ": last position, left-padded batch", () -> check(dir, true, false)),
                    dynamicTest(name + ": backbone without 'model.' prefix and lm_head", () -> check(dir, false, true))));
        });
    }

    private void check(Path dir, boolean leftPadded, boolean bareBackbone) throws IOException {
        Backend be = CpuBackend.INSTANCE;
        String p = leftPadded ? "lp_" : "";
        int[] ids, mask = null, pos = null;
        float[] logits;
        int batch;
        try (SafeTensors exp = SafeTensors.open(dir.resolve("expected.safetensors"))) {
            ids = exp.ints(p + "input_ids");
            batch = (int) exp.info(p + "input_ids").shape()[0];
            logits = exp.floats(p + "logits");
            if (leftPadded) {
                mask = exp.ints("lp_attention_mask");
                pos = exp.ints("lp_position_ids");
            }
        }
        // the output projection, straight from the checkpoint file (not from the model under test)
        float[] proj;
        int vocab;
        try (SafeTensors st = SafeTensors.open(dir)) {
            String w = st.contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
            proj = st.floats(w);
            vocab = (int) st.info(w).shape()[0];
        }
        Path modelDir = bareBackbone ? bareCopy(dir) : dir;
        int T = ids.length / batch;
        try (DecoderModel m = bareBackbone ? DecoderModel.loadBackbone(modelDir, be) : DecoderModel.load(modelDir, be)) {
            float[] hidden = be.download(m.hiddenStates(batch, ids, pos, mask));
            int C = m.config().hiddenSize();
            assertEquals(batch * T * C, hidden.length, "hidden states (B,T,C)");
            double worst = 0;
            for (int b = 0; b < batch; b++) {
                int row = b * T + T - 1; // left padding: the last position is a real token in every row
                for (int v = 0; v < vocab; v++) {
                    double dot = 0;
                    for (int c = 0; c < C; c++) {
                        dot += hidden[row * C + c] * proj[v * C + c];
                    }
                    worst = Math.max(worst, Math.abs(dot - logits[row * vocab + v]));
                }
            }
            assertTrue(worst <= TOL, dir.getFileName() + ": max |h_last·Wᵀ - HF " + p + "logits| = " + worst
                    + " > " + TOL);
        }
    }

    /** The checkpoint re-saved with names lacking 'model.' and without lm_head.weight. */
    private Path bareCopy(Path dir) throws IOException {
        Path out = Files.createDirectories(tmp.resolve(dir.getFileName() + "_bare"));
        SafeTensorsWriter w = new SafeTensorsWriter();
        try (SafeTensors st = SafeTensors.open(dir)) {
            for (String n : st.names()) {
                if (n.equals("lm_head.weight")) {
                    continue;
                }
                w.putF32(n.startsWith("model.") ? n.substring("model.".length()) : n, st.info(n).shape(), st.floats(n));
            }
        }
        w.write(out.resolve("model.safetensors"));
        Files.copy(dir.resolve("config.json"), out.resolve("config.json"));
        return out;
    }
}
