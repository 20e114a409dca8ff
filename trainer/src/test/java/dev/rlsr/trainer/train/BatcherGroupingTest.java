package dev.rlsr.trainer.train;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Length-grouped padded batches: every sequence once per epoch, as many batches, far less padding, seeded order. */
class BatcherGroupingTest {

    /** n sequences of lengths 20..119 whose first id is their index. */
    private static List<Batcher.Sequence> sequences(int n) {
        Random r = new Random(3);
        List<Batcher.Sequence> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 20 + r.nextInt(100);
            int[] ids = new int[len];
            Arrays.fill(ids, 7);
            ids[0] = i;
            out.add(new Batcher.Sequence(ids, ids.clone()));
        }
        return out;
    }

    private static long padded(List<Batcher.Batch> batches) {
        long slots = 0, tokens = 0;
        for (Batcher.Batch b : batches) {
            slots += (long) b.rows() * b.len();
            tokens += b.tokens();
        }
        return slots - tokens;
    }

    @Test
    void everySequenceOnceWithTheSameBatchCountAndLessPadding() {
        List<Batcher.Sequence> seqs = sequences(3000);
        for (int epoch = 0; epoch < 2; epoch++) {
            List<Batcher.Batch> random = Batcher.epoch(seqs, 16, false, false, 256, 5, epoch, 0);
            List<Batcher.Batch> grouped = Batcher.epoch(seqs, 16, false, true, 256, 5, epoch, 0);
            assertEquals(random.size(), grouped.size(), "batches per epoch");
            Map<Integer, Integer> seen = new HashMap<>();
            for (Batcher.Batch b : grouped) {
                for (int row = 0; row < b.rows(); row++) {
                    seen.merge(b.ids()[row * b.len()], 1, Integer::sum);
                    int real = 0;
                    for (int t = 0; t < b.len(); t++) {
                        real += b.mask()[row * b.len() + t];
                    }
                    // the row is its sequence, right-padded
                    assertEquals(seqs.get(b.ids()[row * b.len()]).ids().length, real);
                }
            }
            assertEquals(seqs.size(), seen.size());
            assertTrue(seen.values().stream().allMatch(c -> c == 1));
            // lengths 20..119 in random batches of 16 pad ~45% of the tokens; sorted groups of 1024 pad ~1%
            long tokens = grouped.stream().mapToLong(Batcher.Batch::tokens).sum();
            assertTrue(padded(grouped) < 0.03 * tokens, "grouped padding " + padded(grouped) + " of " + tokens);
            assertTrue(padded(random) > 0.3 * tokens, "random padding " + padded(random) + " of " + tokens);
        }
    }

    @Test
    void theOrderDependsOnSeedAndEpochOnly() {
        List<Batcher.Sequence> seqs = sequences(500);
        List<Integer> a = firstIds(Batcher.epoch(seqs, 8, false, true, 256, 1, 0, 0));
        assertEquals(a, firstIds(Batcher.epoch(seqs, 8, false, true, 256, 1, 0, 0)));
        assertNotEquals(a, firstIds(Batcher.epoch(seqs, 8, false, true, 256, 1, 1, 0)));
        assertNotEquals(a, firstIds(Batcher.epoch(seqs, 8, false, true, 256, 2, 0, 0)));
        // batch lengths do not rise through the epoch: the batch order is shuffled after sorting
        List<Batcher.Batch> b = Batcher.epoch(seqs, 8, false, true, 256, 1, 0, 0);
        int rises = 0;
        for (int i = 1; i < b.size(); i++) {
            rises += b.get(i).len() > b.get(i - 1).len() ? 1 : 0;
        }
        assertTrue(rises < 0.8 * b.size() && rises > 0.2 * b.size(), rises + " rises in " + b.size());
    }

    private static List<Integer> firstIds(List<Batcher.Batch> batches) {
        return batches.stream().map(x -> x.ids()[0]).toList();
    }
}
