package dev.rlsr.engine.model;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.io.CheckpointFixtures;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.tensor.Backend;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.DynamicContainer.dynamicContainer;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

/**
 * The engine BERT against Hugging Face transformers on every fixture case with model_type bert (test resources
 * {@code fixtures/}, or the folder in {@code RLSR_FIXTURES}, whatever the case names). Golden values
 * ({@code last_hidden_state}, {@code mean_pooled}, {@code embedding}, {@code cosine}) come from transformers.
 */
class BertParityTest {
    static final double TOL = 1e-5;

    @TestFactory
    Stream<DynamicNode> bertParity() {
        // decoder cases are not routed here at all (no skipped tests); a folder without any BERT case fails
        List<Path> cases = CheckpointFixtures.modelCases().stream().filter(dir -> {
            try {
                return CheckpointFixtures.json(dir.resolve("config.json")).path("model_type").asText().equals("bert");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).toList();
        assertFalse(cases.isEmpty(), "no BERT fixture case (model_type bert) under " + CheckpointFixtures.root());
        return cases.stream().map(dir -> {
            String name = dir.getFileName().toString();
            return dynamicContainer(name, Stream.of(
                    dynamicTest(name + ": last_hidden_state, mean_pooled, embedding, cosine", () -> parity(dir)),
                    dynamicTest(name + ": each row alone equals its padded-batch row", () -> rowsAlone(dir))));
        });
    }

    private record Expected(int batch, int[] ids, int[] mask, float[] hidden, float[] pooled, float[] embedding,
                            float[] cosine) {
        static Expected read(Path dir) {
            try (SafeTensors e = SafeTensors.open(dir.resolve("expected.safetensors"))) {
                int batch = (int) e.info("input_ids").shape()[0];
                return new Expected(batch, e.ints("input_ids"), e.ints("attention_mask"),
                        e.floats("last_hidden_state"), e.floats("mean_pooled"), e.floats("embedding"),
                        e.floats("cosine"));
            }
        }
    }

    private static void parity(Path dir) {
        Expected x = Expected.read(dir);
        Backend be = CpuBackend.INSTANCE;
        try (BertModel m = BertModel.load(dir, be)) {
            float[] hidden = be.download(m.forward(x.batch, x.ids, x.mask));
            close("last_hidden_state", x.hidden, hidden);
            close("mean_pooled", x.pooled, flat(m.embed(x.batch, x.ids, x.mask, BertPooling.MEAN, false)));
            float[][] emb = m.embed(x.batch, x.ids, x.mask, BertPooling.MEAN, true);
            close("embedding", x.embedding, flat(emb));
            float[] cos = new float[x.batch * x.batch];
            for (int i = 0; i < x.batch; i++) {
                for (int j = 0; j < x.batch; j++) {
                    double dot = 0;
                    for (int c = 0; c < emb[i].length; c++) {
                        dot += emb[i][c] * emb[j][c];
                    }
                    cos[i * x.batch + j] = (float) dot;
                }
            }
            close("cosine", x.cosine, cos);
        }
    }

    /** Padding must not leak: a row run alone (unpadded) gives the batch row's embedding and hidden states. */
    private static void rowsAlone(Path dir) {
        Expected x = Expected.read(dir);
        int T = x.ids.length / x.batch;
        try (BertModel m = BertModel.load(dir, CpuBackend.INSTANCE)) {
            for (int b = 0; b < x.batch; b++) {
                int len = 0;
                for (int t = 0; t < T; t++) {
                    len += x.mask[b * T + t];
                }
                int[] ids = Arrays.copyOfRange(x.ids, b * T, b * T + len);
                float[] alone = CpuBackend.INSTANCE.download(m.forward(1, ids, null));
                close("row " + b + " hidden alone vs HF batch", Arrays.copyOfRange(x.hidden, b * T * alone.length / len,
                        b * T * alone.length / len + alone.length), alone);
            }
        }
    }

    private static float[] flat(float[][] rows) {
        float[] out = new float[rows.length * rows[0].length];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, out, i * rows[0].length, rows[0].length);
        }
        return out;
    }

    static void close(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + ": element count");
        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs(expected[i] - actual[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        if (!(worst <= TOL)) {
            fail(what + ": max |engine - HF| = " + worst + " at " + at + " (HF " + expected[at] + ", engine "
                    + actual[at] + "), tolerance " + TOL);
        }
    }
}
