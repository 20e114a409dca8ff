package dev.rlsr.trainer.reward;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;
import dev.rlsr.trainer.encoder.DeviceEncoder;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Batching, caching and error behaviour of the cosine reward, with a deterministic bag-of-words encoder, on the host
 * path; {@link CosineRewardDevicePathTest} runs the same cases through the device path.
 */
class CosineRewardTest {

    /**
     * Hashes words into D buckets, L2-normalises; records every embed call. "NAN" in a text poisons its row. As a
     * {@link DeviceEncoder} on the CPU backend it hands the same rows over as a tensor.
     */
    static final class FakeEncoder implements DeviceEncoder {
        static final int D = 32;
        final List<List<String>> calls = new ArrayList<>();
        final Backend backend;
        boolean closed;

        FakeEncoder() {
            this(CpuBackend.INSTANCE);
        }

        /** An encoder whose tensors belong to {@code backend} (a recording wrapper of the CPU backend). */
        FakeEncoder(Backend backend) {
            this.backend = backend;
        }

        @Override
        public float[][] embed(List<String> texts) {
            calls.add(List.copyOf(texts));
            return rows(texts);
        }

        @Override
        public Tensor embedOnDevice(List<String> texts) {
            calls.add(List.copyOf(texts));
            float[][] r = rows(texts);
            float[] flat = new float[r.length * D];
            for (int i = 0; i < r.length; i++) {
                System.arraycopy(r[i], 0, flat, i * D, D);
            }
            return backend().upload(flat, r.length, D);
        }

        @Override
        public Backend backend() {
            return backend;
        }

        @Override
        public DType dtype() {
            return DType.F32;
        }

        static float[][] rows(List<String> texts) {
            float[][] out = new float[texts.size()][];
            for (int i = 0; i < out.length; i++) {
                float[] v = new float[D];
                v[0] = 1e-3f; // keeps the empty text finite, as a real encoder would
                for (String w : texts.get(i).split("\\s+")) {
                    if (!w.isEmpty()) {
                        v[Math.floorMod(w.hashCode(), D)] += 1;
                    }
                }
                double n = 0;
                for (float x : v) {
                    n += x * x;
                }
                for (int c = 0; c < D; c++) {
                    v[c] = (float) (v[c] / Math.sqrt(n));
                }
                if (texts.get(i).contains("NAN")) {
                    v[3] = Float.NaN;
                }
                out[i] = v;
            }
            return out;
        }

        @Override
        public String name() {
            return "fake-bow";
        }

        @Override
        public int dimension() {
            return D;
        }

        @Override
        public int maxTokens() {
            return 1 << 20;
        }

        @Override
        public int batchSize() {
            return 1 << 20;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** The reward under test: the host path here (the fake encoder's backend is the CPU). */
    CosineReward reward(FakeEncoder encoder, CosineReward.Options options) {
        CosineReward r = new CosineReward(encoder, options);
        assertFalse(r.onDevice(), "an encoder on the CPU backend takes the host path");
        return r;
    }

    static List<RewardInput> groups(int prompts, int g, String idPrefix) {
        List<RewardInput> batch = new ArrayList<>();
        for (int p = 0; p < prompts; p++) {
            for (int k = 0; k < g; k++) {
                batch.add(new RewardInput(idPrefix + p, "prompt " + p, "response " + p + " number " + k, "reference answer " + p));
            }
        }
        return batch;
    }

    @Test
    void oneEncoderCallPerBatchAndReferencesCached() {
        FakeEncoder enc = new FakeEncoder();
        CosineReward reward = reward(enc, CosineReward.Options.defaults());
        List<RewardInput> batch = groups(2, 3, "ex");
        double[] r = reward.score(batch);
        assertEquals(6, r.length);
        assertEquals(1, enc.calls.size());
        List<String> texts = enc.calls.getFirst();
        assertEquals(8, texts.size(), "6 responses + 2 references, each reference once");
        assertEquals("prompt 0\nresponse 0 number 0", texts.get(0));
        assertEquals("prompt 0\nreference answer 0", texts.get(6));
        assertEquals("prompt 1\nreference answer 1", texts.get(7));
        double[] again = reward.score(batch);
        assertEquals(2, enc.calls.size());
        assertEquals(6, enc.calls.get(1).size(), "cached references are not embedded again");
        assertEquals(2, reward.cacheHits());
        for (int i = 0; i < r.length; i++) {
            assertEquals(r[i], again[i], 0.0, "cached and fresh references give the same reward");
        }
    }

    /** Repeated samples (same prompt, same text) are embedded once and get the same reward as when embedded alone. */
    @Test
    void aRepeatedResponseIsEmbeddedOnce() {
        FakeEncoder enc = new FakeEncoder();
        CosineReward reward = new CosineReward(enc, CosineReward.Options.defaults());
        List<RewardInput> batch = List.of(
                new RewardInput("a", "Q1", "same words", "ref one"),
                new RewardInput("a", "Q1", "other words", "ref one"),
                new RewardInput("a", "Q1", "same words", "ref one"),
                new RewardInput("b", "Q2", "same words", "ref two"));
        double[] r = reward.score(batch);
        List<String> texts = enc.calls.getFirst();
        assertEquals(List.of("Q1\nsame words", "Q1\nother words", "Q2\nsame words", "Q1\nref one", "Q2\nref two"),
                texts, "three distinct responses, then the two references");
        assertEquals(r[0], r[2], 0.0);
        CosineReward alone = new CosineReward(new FakeEncoder(), CosineReward.Options.defaults());
        for (int i = 0; i < batch.size(); i++) {
            assertEquals(alone.score(List.of(batch.get(i)))[0], r[i], 0.0, "row " + i);
        }
    }

    @Test
    void rewardIsTheCosineOfPromptResponseAndPromptReference() {
        FakeEncoder enc = new FakeEncoder();
        CosineReward reward = reward(enc, CosineReward.Options.defaults());
        List<RewardInput> batch = List.of(
                new RewardInput("a", "Q: capital?", "Paris is the capital", "Paris is the capital"),
                new RewardInput("a", "Q: capital?", "totally different words here", "Paris is the capital"));
        double[] r = reward.score(batch);
        assertEquals(1.0, r[0], 1e-6);
        float[][] e = new FakeEncoder().embed(List.of("Q: capital?\ntotally different words here", "Q: capital?\nParis is the capital"));
        double dot = 0;
        for (int c = 0; c < FakeEncoder.D; c++) {
            dot += (double) e[0][c] * e[1][c];
        }
        assertEquals(dot, r[1], 1e-6);
        assertTrue(r[1] < r[0]);
    }

    @Test
    void responsesOnlyAndSeparator() {
        FakeEncoder enc = new FakeEncoder();
        reward(enc, CosineReward.Options.defaults().withResponsesOnly(true)).score(groups(1, 2, "x"));
        assertEquals(List.of("response 0 number 0", "response 0 number 1", "reference answer 0"), enc.calls.getFirst());
        FakeEncoder enc2 = new FakeEncoder();
        reward(enc2, CosineReward.Options.defaults().withSeparator(" || ")).score(groups(1, 1, "x"));
        assertEquals(List.of("prompt 0 || response 0 number 0", "prompt 0 || reference answer 0"), enc2.calls.getFirst());
    }

    @Test
    void lruCacheIsBounded() {
        FakeEncoder enc = new FakeEncoder();
        CosineReward reward = reward(enc, CosineReward.Options.defaults().withCacheCapacity(2));
        for (int round = 0; round < 3; round++) {
            for (String id : List.of("a", "b", "c")) {
                reward.score(List.of(new RewardInput(id, "p" + id, "y", "ref " + id)));
                assertTrue(reward.cacheSize() <= 2);
            }
        }
        // a, b, c cycled through a cache of 2 under LRU: every lookup misses
        assertEquals(9, reward.referencesEmbedded());
        assertEquals(0, reward.cacheHits());
        reward.score(List.of(new RewardInput("c", "pc", "y", "ref c")));
        assertEquals(1, reward.cacheHits());
        CosineReward noCache = reward(new FakeEncoder(), CosineReward.Options.defaults().withCacheCapacity(0));
        noCache.score(groups(2, 4, "n"));
        noCache.score(groups(2, 4, "n"));
        assertEquals(4, noCache.referencesEmbedded(), "without a cache: once per id per batch");
        assertEquals(0, noCache.cacheSize());
    }

    @Test
    void blankResponsesScoreZeroWithoutEmbedding() {
        FakeEncoder enc = new FakeEncoder();
        CosineReward reward = reward(enc, CosineReward.Options.defaults());
        double[] r = reward.score(List.of(new RewardInput("a", "p", "", "ref"), new RewardInput("a", "p", " \n", "ref"),
                new RewardInput("b", "p", "ref", "ref")));
        assertEquals(0.0, r[0]);
        assertEquals(0.0, r[1]);
        assertEquals(1.0, r[2], 1e-6);
        assertEquals(List.of("p\nref", "p\nref"), enc.calls.getFirst(), "one response and one reference (id b)");
        assertEquals(1, reward.score(List.of(new RewardInput("a", "p", "", "ref"))).length);
        assertEquals(1, enc.calls.size(), "a batch of blank responses makes no encoder call");

        FakeEncoder enc2 = new FakeEncoder();
        double[] embedded = reward(enc2, CosineReward.Options.defaults().withEmbedBlankResponses(true))
                .score(List.of(new RewardInput("a", "p", "", "ref")));
        assertEquals(List.of("p\n", "p\nref"), enc2.calls.getFirst());
        assertTrue(Double.isFinite(embedded[0]));
    }

    @Test
    void nonFiniteEmbeddingNamesTheExample() {
        CosineReward reward = reward(new FakeEncoder(), CosineReward.Options.defaults());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> reward.score(List.of(
                new RewardInput("ok-1", "p", "fine", "ref"), new RewardInput("bad-7", "p", "NAN here", "ref"))));
        assertTrue(e.getMessage().contains("'bad-7'") && e.getMessage().contains("response"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> reward.score(List.of(new RewardInput("bad-ref", "p", "fine", "NAN"))));
        assertTrue(e.getMessage().contains("'bad-ref'") && e.getMessage().contains("reference"), e.getMessage());
    }

    @Test
    void conflictingReferencesForOneIdAreReported() {
        CosineReward reward = reward(new FakeEncoder(), CosineReward.Options.defaults());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> reward.score(List.of(
                new RewardInput("dup", "p", "y", "ref one"), new RewardInput("dup", "p", "y", "ref two"))));
        assertTrue(e.getMessage().contains("'dup'"), e.getMessage());
        reward.score(List.of(new RewardInput("k", "p", "y", "ref one")));
        e = assertThrows(IllegalArgumentException.class, () -> reward.score(List.of(new RewardInput("k", "other prompt", "y", "ref one"))));
        assertTrue(e.getMessage().contains("'k'") && e.getMessage().contains("before"), e.getMessage());
    }

    @Test
    void emptyBatchAndOwnership() {
        FakeEncoder enc = new FakeEncoder();
        CosineReward borrowed = reward(enc, CosineReward.Options.defaults());
        assertEquals(0, borrowed.score(List.of()).length);
        assertTrue(enc.calls.isEmpty());
        borrowed.close();
        borrowed.close();
        assertFalse(enc.closed, "a borrowed encoder stays open");
        assertThrows(IllegalStateException.class, () -> borrowed.score(List.of()));
        Reward owned = Reward.fromSpec("0.5*cosine+0.5*rougeL", () -> enc);
        owned.score(groups(1, 2, "o"));
        owned.close();
        assertTrue(enc.closed, "fromSpec's reward owns the encoder it asked for");
    }

    @Test
    void neverNaNOnRandomBatches() {
        Random rnd = new Random(21);
        CosineReward reward = reward(new FakeEncoder(), CosineReward.Options.defaults().withEmbedBlankResponses(true));
        String[] words = {"", " ", "a", "b c", "the cat", "\n"};
        for (int t = 0; t < 50; t++) {
            List<RewardInput> batch = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int id = rnd.nextInt(4);
                batch.add(new RewardInput("id" + id, words[id], words[rnd.nextInt(words.length)], words[(id + 2) % words.length]));
            }
            for (double v : reward.score(batch)) {
                assertTrue(Double.isFinite(v) && v >= -1 && v <= 1, "cosine " + v);
            }
        }
    }

    @Test
    void optionsAreValidated() {
        assertThrows(IllegalArgumentException.class, () -> CosineReward.Options.defaults().withCacheCapacity(-1));
        assertThrows(NullPointerException.class, () -> CosineReward.Options.defaults().withSeparator(null));
        assertThrows(IllegalArgumentException.class, () -> new CosineReward.Options("\n", false, 1, false, Double.NaN));
    }
}
