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
}
