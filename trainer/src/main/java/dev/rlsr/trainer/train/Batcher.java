package dev.rlsr.trainer.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * Turns tokenized sequences into (B,T) micro-batches for the supervised trainers, in a seeded per-epoch order.
 * Padding: B sequences per batch, right-padded to the longest of the batch. Packing: the epoch's sequences are
 * concatenated and cut into rows of exactly maxSeqLen tokens (only the last row is padded), B rows per batch; no
 * attention reset at document boundaries (TRL's packing without position ids), so a row's tokens may attend to the
 * previous document — cheap and the usual choice for small models.
 */
public final class Batcher {
    private Batcher() {}

    /** One training sequence: ids (T) and labels (T), label -100 where a token is not trained (prompt). */
    public record Sequence(int[] ids, int[] labels) {
        public Sequence {
            if (ids.length != labels.length || ids.length == 0) {
                throw new IllegalArgumentException("a sequence needs as many labels as ids (and at least one), got "
                        + ids.length + " ids and " + labels.length + " labels");
            }
        }

        /** Labels that count as targets after the causal shift (label >= 0 at positions 1..T-1). */
        public int targets() {
            int n = 0;
            for (int t = 1; t < labels.length; t++) {
                n += labels[t] >= 0 ? 1 : 0;
            }
            return n;
        }
    }

    /**
     * A micro-batch: (rows, len) ids, labels (-100 = ignored) and attention mask (1 = token).
     *
     * @param tokens real (non-padding) tokens
     */
    public record Batch(int rows, int len, int[] ids, int[] labels, int[] mask, long tokens) {}

    /** The order of an epoch: a permutation of 0..n-1 that depends only on (seed, epoch). */
    public static int[] epochOrder(int n, long seed, int epoch) {
        List<Integer> idx = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            idx.add(i);
        }
        Collections.shuffle(idx, new Random(seed * 1_000_003L + epoch));
        return idx.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The micro-batches of one epoch. */
    public static List<Batch> epoch(List<Sequence> seqs, int batchSize, boolean packing, int maxSeqLen, long seed,
                                    int epoch, int padId) {
        return epoch(seqs, batchSize, packing, false, maxSeqLen, seed, epoch, padId);
    }

    /** Batches per group of {@link #grouped}: the shuffled order is sorted by length within such groups. */
    static final int GROUP_BATCHES = 64;

    /**
     * The micro-batches of one epoch; with {@code groupByLength} (padding only) batches hold sequences of similar
     * length (see {@link #grouped}).
     *
     * @param seqs          the training sequences
     * @param batchSize     sequences (or packed rows) per batch
     * @param packing       pack into rows of maxSeqLen instead of padding
     * @param groupByLength batch sequences of similar length together (ignored with packing)
     * @param maxSeqLen     row length when packing
     * @param seed          data-order seed
     * @param epoch         the epoch (0-based)
     * @param padId         padding token id
     * @return the epoch's batches, as many every epoch
     */
    public static List<Batch> epoch(List<Sequence> seqs, int batchSize, boolean packing, boolean groupByLength,
                                    int maxSeqLen, long seed, int epoch, int padId) {
        int[] order = epochOrder(seqs.size(), seed, epoch);
        List<Sequence> ordered = new ArrayList<>(seqs.size());
        for (int i : order) {
            ordered.add(seqs.get(i));
        }
        if (packing) {
            return packed(ordered, batchSize, maxSeqLen, padId);
        }
        return groupByLength ? grouped(ordered, batchSize, padId, seed, epoch) : padded(ordered, batchSize, padId);
    }

    /**
     * Padded batches of similar-length sequences (as transformers' {@code group_by_length}): the epoch's shuffled
     * sequences are cut into groups of {@value #GROUP_BATCHES} batches, each group is sorted by length (stable) and cut
     * into batches, and the order of all the epoch's batches is then shuffled (seeded by seed and epoch) so that
     * lengths do not rise through the epoch. Random batches of the demo's chat examples are ~29% padding; grouped,
     * under 1%. The batch count is the same as {@link #padded}'s.
     */
    static List<Batch> grouped(List<Sequence> seqs, int batchSize, int padId, long seed, int epoch) {
        List<Batch> out = new ArrayList<>();
        int group = batchSize * GROUP_BATCHES;
        for (int from = 0; from < seqs.size(); from += group) {
            List<Sequence> g = new ArrayList<>(seqs.subList(from, Math.min(seqs.size(), from + group)));
            g.sort(java.util.Comparator.comparingInt(x -> x.ids().length));
            out.addAll(padded(g, batchSize, padId));
        }
        Collections.shuffle(out, new Random((seed * 1_000_003L + epoch) ^ 0x6A09E667F3BCC909L));
        return out;
    }

    /** Batches of the sequences in the given order, right-padded per batch. */
    public static List<Batch> padded(List<Sequence> seqs, int batchSize, int padId) {
        List<Batch> out = new ArrayList<>();
        for (int from = 0; from < seqs.size(); from += batchSize) {
            List<Sequence> part = seqs.subList(from, Math.min(seqs.size(), from + batchSize));
            int T = 0;
            for (Sequence s : part) {
                T = Math.max(T, s.ids().length);
            }
            out.add(assemble(part.size(), T, part, padId));
        }
        return out;
    }

    static List<Batch> packed(List<Sequence> seqs, int batchSize, int maxSeqLen, int padId) {
        long total = 0;
        for (Sequence s : seqs) {
            total += s.ids().length;
        }
        int[] ids = new int[Math.toIntExact(total)], labels = new int[ids.length];
        int o = 0;
        for (Sequence s : seqs) {
            System.arraycopy(s.ids(), 0, ids, o, s.ids().length);
            System.arraycopy(s.labels(), 0, labels, o, s.labels().length);
            o += s.ids().length;
        }
        List<Sequence> rows = new ArrayList<>();
        for (int from = 0; from < ids.length; from += maxSeqLen) {
            int to = Math.min(ids.length, from + maxSeqLen);
            rows.add(new Sequence(Arrays.copyOfRange(ids, from, to), Arrays.copyOfRange(labels, from, to)));
        }
        List<Batch> out = new ArrayList<>();
        for (int from = 0; from < rows.size(); from += batchSize) {
            List<Sequence> part = rows.subList(from, Math.min(rows.size(), from + batchSize));
            out.add(assemble(part.size(), maxSeqLen, part, padId));
        }
        return out;
    }

    private static Batch assemble(int B, int T, List<Sequence> part, int padId) {
        int[] ids = new int[B * T], labels = new int[B * T], mask = new int[B * T];
        Arrays.fill(ids, padId);
        Arrays.fill(labels, -100);
        long tokens = 0;
        for (int b = 0; b < B; b++) {
            Sequence s = part.get(b);
            int n = s.ids().length;
            System.arraycopy(s.ids(), 0, ids, b * T, n);
            System.arraycopy(s.labels(), 0, labels, b * T, n);
            Arrays.fill(mask, b * T, b * T + n, 1);
            tokens += n;
        }
        return new Batch(B, T, ids, labels, mask, tokens);
    }
}
