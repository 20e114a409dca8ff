package dev.rlsr.engine.model;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

/**
 * Incremental decoding of a {@link DecoderModel} with a {@link KvCache}: prefill of left-padded prompts, then one
 * token per row per step. Each call returns the logits of every row's last position (B, V) in the compute dtype, a
 * model-owned buffer valid until the next call.
 */
final class DecoderDecoding {
    private final DecoderModel m;

    DecoderDecoding(DecoderModel model) {
        this.m = model;
    }

    Tensor forwardCached(KvCache cache, int[] ids, int[] positionIds, int[] attentionMask) {
        int B = cache.batch;
        m.checkInputs(B, ids, positionIds, attentionMask);
        int T = ids.length / B;
        Backend be = m.backend();
        DecoderActivations a = m.activations(B, T, false);
        boolean masked = m.uploadInputs(a, ids, positionIds, attentionMask, cache.length);
        m.run(a, masked, cache);
        if (a.lastHidden == null) {
            a.ensureLastRows();
            int[] rows = new int[B];
            for (int b = 0; b < B; b++) {
                rows[b] = b * T + T - 1;
            }
            be.upload(rows, a.lastRows);
        }
        be.gatherRows(a.lnf, a.lastRows, a.lastHidden);
        be.linear(a.lastHidden, m.weights.lmHead, null, null, a.lastLogits);
        m.setLast(a);
        return a.lastLogits;
    }

    Tensor prefill(KvCache cache, int[] promptIds, int[] attentionMask, int[] positionIds) {
        if (cache.length != 0) {
            throw new IllegalStateException("prefill needs an empty KV cache (it holds " + cache.length
                    + " positions); call reset() first");
        }
        int[] pos = positionIds != null ? positionIds
                : Generator.positionsFromMask(cache.batch, promptIds.length / cache.batch, attentionMask);
        return forwardCached(cache, promptIds, pos, attentionMask);
    }

    Tensor decode(KvCache cache, int[] tokens, int[] positionIds) {
        if (tokens.length != cache.batch) {
            throw new IllegalArgumentException("decode takes one token per row: " + tokens.length + " tokens for "
                    + cache.batch + " rows");
        }
        return forwardCached(cache, tokens, positionIds, null);
    }

    /**
     * One token per row from device-resident state: the T = 1 forward reading {@code st}'s ids and positions,
     * appending keys, values and the key mask at the device's cache length, attention against the cache up to that
     * length, the LM head; then positions and lengths advance by one on the device. Reads no host value that changes
     * between steps, so {@link Backend#capture} can record it once and replay it. The host's {@code cache.length} is
     * not changed: the caller advances it ({@link KvCache#advance}) by the number of steps run.
     */
    Tensor decodeStep(KvCache cache, DecodeState st) {
        int B = cache.batch;
        if (st.batch() != B) {
            throw new IllegalArgumentException("decode state of " + st.batch() + " rows for a KV cache of " + B);
        }
        Backend be = m.backend();
        DecoderActivations a = m.activations(B, 1, false);
        a.pinned = true; // a recorded step keeps using these buffers: never evict them
        DecoderWeights w = m.weights;
        int H = m.H, KH = m.KH, D = m.D;
        dev.rlsr.engine.tensor.AttentionShape shape = new dev.rlsr.engine.tensor.AttentionShape(B, 1, cache.capacity,
                cache.capacity, cache.capacity - 1, H, KH, D, (float) (1.0 / Math.sqrt(D)));
        be.embedding(st.ids(), w.embed, a.res[0]);
        be.ropeTable(st.positions(), w.invFreq, a.rope);
        be.appendRowsAt(st.ones(), cache.keyMask, cache.capacity, st.row());
        m.layers(a, (l, k, v, q, att, lse) -> {
            be.appendRowsAt(k, cache.k[l], cache.capacity, st.row());
            be.appendRowsAt(v, cache.v[l], cache.capacity, st.row());
            be.attentionDecode(q, cache.k[l], cache.v[l], att, lse, shape, st.cacheLen(), cache.keyMask);
        });
        if (a.lastLogits == null) {
            a.ensureLastRows();
        }
        be.linear(a.lnf, w.lmHead, null, null, a.lastLogits);
        be.addInt(st.positions(), 1);
        be.addInt(st.row(), 1);
        be.addInt(st.cacheLen(), 1);
        return a.lastLogits;
    }
}
