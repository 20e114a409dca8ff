package dev.rlsr.trainer.reward;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device path of the cosine reward (embeddings and cached references in backend tensors, one gather and one
 * {@code Backend.cosineSimilarity} per batch) on the CPU backend, so its bookkeeping is tested on every build: every
 * case of {@link CosineRewardTest}, and rewards equal to the host path's, bit for bit, on batches that exercise the
 * grouped and the row-by-row layouts, slot reuse after evictions and the growth of the slot buffer. On the CPU both
 * paths compute each cosine with the same reference function on the same floats, so equality is exact; the
 * GPU-against-CPU comparison is {@code CosineRewardGpuTest}.
 */
class CosineRewardDevicePathTest extends CosineRewardTest {

    @Override
    CosineReward reward(FakeEncoder encoder, CosineReward.Options options) {
        CosineReward r = CosineReward.onBackend(encoder, options);
        assertTrue(r.onDevice());
        return r;
    }

    /** Random batches: ids repeated in and across batches, interleaved or grouped, some blank responses. */
    static List<List<RewardInput>> randomBatches(long seed, int count) {
        Random rnd = new Random(seed);
        String[] words = {"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"};
        List<List<RewardInput>> out = new ArrayList<>();
        for (int t = 0; t < count; t++) {
            List<RewardInput> batch = new ArrayList<>();
            int p = 1 + rnd.nextInt(6), g = 1 + rnd.nextInt(5);
            for (int a = 0; a < p; a++) {
                int id = rnd.nextInt(12);
                for (int k = 0; k < g; k++) {
                    StringBuilder resp = new StringBuilder();
                    for (int w = rnd.nextInt(5); w >= 0; w--) {
                        resp.append(words[rnd.nextInt(words.length)]).append(' ');
                    }
                    String response = rnd.nextInt(9) == 0 ? " " : resp.toString();
                    batch.add(new RewardInput("id" + id, "prompt " + id, response, "reference " + id + " "
                            + words[id % words.length]));
                }
            }
            if (t % 3 == 1) {
                Collections.shuffle(batch, rnd);     // groups broken up: the row-by-row layout
            }
            out.add(batch);
        }
        return out;
    }

    @Test
    void equalToTheHostPathOnRandomBatchesForEveryCacheSize() {
        for (int capacity : new int[]{0, 1, 3, 8192}) {
            CosineReward.Options o = CosineReward.Options.defaults().withCacheCapacity(capacity);
            CosineReward host = new CosineReward(new FakeEncoder(), o);
            CosineReward device = reward(new FakeEncoder(), o);
            int t = 0;
            for (List<RewardInput> batch : randomBatches(7 + capacity, 60)) {
                assertArrayEquals(host.score(batch), device.score(batch), "capacity " + capacity + ", batch " + t++);
            }
            assertEquals(host.cacheHits(), device.cacheHits(), "capacity " + capacity);
            assertEquals(host.referencesEmbedded(), device.referencesEmbedded(), "capacity " + capacity);
            assertEquals(host.cacheSize(), device.cacheSize(), "capacity " + capacity);
        }
    }

    @Test
    void slotBufferGrowsAndKeepsItsRows() {
        // 150 ids in one batch: more than the first 64 slots, so the buffer grows twice while references are cached
        List<RewardInput> batch = new ArrayList<>();
        for (int p = 0; p < 150; p++) {
            batch.add(new RewardInput("g" + p, "prompt " + p, "answer " + p + " words", "reference " + (p * 7)));
        }
        CosineReward host = new CosineReward(new FakeEncoder(), CosineReward.Options.defaults());
        FakeEncoder enc = new FakeEncoder();
        CosineReward device = reward(enc, CosineReward.Options.defaults());
        double[] want = host.score(batch);
        assertArrayEquals(want, device.score(batch));
        assertArrayEquals(want, device.score(batch), "every reference read back from the grown buffer");
        assertEquals(150, device.cacheHits());
        assertEquals(150, enc.calls.get(1).size(), "the second call embeds the responses only");
    }

    @Test
    void groupedBatchesTakeOneReferencePerGroup() {
        // the CPU backend behind a proxy that records the shapes of every cosineSimilarity call
        List<String> calls = new ArrayList<>();
        Backend recording = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(),
                new Class<?>[]{Backend.class}, (proxy, method, args) -> {
                    if (method.getName().equals("cosineSimilarity")) {
                        calls.add(Tensor.describe(((Tensor) args[0]).shape()) + " x "
                                + Tensor.describe(((Tensor) args[1]).shape()));
                    }
                    try {
                        return method.invoke(CpuBackend.INSTANCE, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        CosineReward host = new CosineReward(new FakeEncoder(), CosineReward.Options.defaults());
        CosineReward device = reward(new FakeEncoder(recording), CosineReward.Options.defaults());
        List<RewardInput> grouped = groups(3, 4, "q");
        assertArrayEquals(host.score(grouped), device.score(grouped));
        List<RewardInput> shuffled = new ArrayList<>(grouped);
        Collections.shuffle(shuffled, new Random(3));
        assertArrayEquals(host.score(shuffled), device.score(shuffled));
        List<RewardInput> unequal = new ArrayList<>(grouped.subList(0, 11));   // the last group is one row short
        assertArrayEquals(host.score(unequal), device.score(unequal));
        assertEquals(List.of("(3, 32) x (12, 32)", "(12, 32) x (12, 32)", "(11, 32) x (11, 32)"), calls,
                "P references against P*G rows for the GRPO layout, one reference per row otherwise");
    }

    @Test
    void aFailedCallCachesNothing() {
        FakeEncoder enc = new FakeEncoder();
        CosineReward reward = reward(enc, CosineReward.Options.defaults());
        reward.score(List.of(new RewardInput("fine", "p", "y", "ref")));
        assertEquals(1, reward.cacheSize());
        assertThrows(IllegalStateException.class, () -> reward.score(List.of(new RewardInput("new-ok", "p", "y", "r2"),
                new RewardInput("new-bad", "p", "y", "NAN"))));
        assertEquals(1, reward.cacheSize(), "neither reference of the failed call is cached");
        double[] r = reward.score(List.of(new RewardInput("new-ok", "p", "y", "r2")));
        assertTrue(Double.isFinite(r[0]));
        assertEquals(3, enc.calls.size());
        assertTrue(enc.calls.get(2).contains("p\nr2"), "re-embedded after the failed call: " + enc.calls.get(2));
    }
}
