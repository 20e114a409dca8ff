package dev.rlsr.engine.model;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything one forward of shape (B,T) produces and reads, on the model's backend: the inputs as I32 tensors, the
 * activations in the compute dtype, the statistics (rstd, lse) in F32. With {@code saved} each layer has its own
 * buffers (kept for the backward); without, all layers share one set (inference) and the residual stream is updated
 * in place. Buffers are allocated once per shape and reused by every later call of that shape, so a training loop
 * allocates nothing per step ({@link Cache} keeps the four most recently used shapes, at most two of them saved).
 *
 * <p>Legend: N = B*T rows, C hidden, H query heads, Hkv key/value heads, D head dim, F intermediate size, V vocabulary.
 */
final class DecoderActivations implements AutoCloseable {
    final int B, T, N;
    final boolean saved;
    private final Backend be;
    private final DType act;
    private final int C, H, KH, D, F, V, L;

    // inputs, I32 (N)
    final Tensor ids, positions, mask, targets;
    /** Whether the last upload into this set had an attention mask (else attention sees no key mask). */
    boolean masked;
    /** A recorded step (a device graph) uses these buffers: the cache never evicts a pinned set. */
    boolean pinned;
    final Tensor[] res;                 // (N,C) residual stream entering layer l; res[L] enters the final norm
    final Tensor[] ln1, rstd1, qPre, kPre, rstdQ, rstdK, q, k, v, att, lse, x1, ln2, rstd2, g, u, h;
    final Tensor lnf, rstdf, rope;      // (N,C), (N) F32, (N,D) F32
    private Tensor logits;              // (N,V), lazily
    Tensor lastRows, lastHidden, lastLogits;  // I32 (B), (B,C), (B,V) for generation, lazily
    Tensor logp, lse2, dlogp;           // F32 (N) for log-prob gathers, lazily
    Tensor dres, dln, dq, dk, dv, datt, dg, du, dh;  // backward scratch, lazily

    DecoderActivations(ModelConfig cfg, Backend be, DType act, int B, int T, boolean saved) {
        this.be = be;
        this.act = act;
        this.B = B;
        this.T = T;
        this.N = Math.multiplyExact(B, T);
        this.saved = saved;
        this.C = cfg.hiddenSize();
        this.H = cfg.numHeads();
        this.KH = cfg.numKvHeads();
        this.D = cfg.headDim();
        this.F = cfg.intermediateSize();
        this.V = cfg.vocabSize();
        this.L = cfg.numLayers();
        int sets = saved ? L : 1;
        ids = be.zeros(DType.I32, N);
        positions = be.zeros(DType.I32, N);
        mask = be.zeros(DType.I32, N);
        targets = be.zeros(DType.I32, N);
        res = new Tensor[L + 1];
        for (int l = 0; l <= L; l++) {
            res[l] = saved || l == 0 ? be.zeros(act, N, C) : res[0];
        }
        ln1 = per(sets, act, N, C);
        rstd1 = per(sets, DType.F32, N);
        qPre = cfg.qkNorm() ? per(sets, act, N, (long) H * D) : null;
        kPre = cfg.qkNorm() ? per(sets, act, N, (long) KH * D) : null;
        rstdQ = cfg.qkNorm() ? per(sets, DType.F32, (long) N * H) : null;
        rstdK = cfg.qkNorm() ? per(sets, DType.F32, (long) N * KH) : null;
        q = per(sets, act, N, (long) H * D);
        k = per(sets, act, N, (long) KH * D);
        v = per(sets, act, N, (long) KH * D);
        att = per(sets, act, N, (long) H * D);
        lse = per(sets, DType.F32, (long) B * H * T);
        x1 = saved ? per(sets, act, N, C) : new Tensor[]{res[0]};
        ln2 = per(sets, act, N, C);
        rstd2 = per(sets, DType.F32, N);
        g = per(sets, act, N, F);
        u = per(sets, act, N, F);
        h = per(sets, act, N, F);
        lnf = be.zeros(act, N, C);
        rstdf = be.zeros(DType.F32, N);
        rope = be.zeros(DType.F32, N, D);
    }

    private Tensor[] per(int sets, DType dtype, long... shape) {
        Tensor[] t = new Tensor[sets];
        for (int i = 0; i < sets; i++) {
            t[i] = be.zeros(dtype, shape);
        }
        return t;
    }

    /** Layer l's buffer (layer 0's when activations are not saved). */
    Tensor at(Tensor[] t, int l) {
        return t[t.length == 1 ? 0 : l];
    }

    /** (N,V) logits in the compute dtype (never fp32 in bf16 mode). */
    Tensor logits() {
        if (logits == null) {
            logits = be.zeros(act, N, V);
        }
        return logits;
    }

    void ensureBackwardScratch() {
        if (dres == null) {
            dres = be.zeros(act, N, C);
            dln = be.zeros(act, N, C);
            dq = be.zeros(act, N, (long) H * D);
            dk = be.zeros(act, N, (long) KH * D);
            dv = be.zeros(act, N, (long) KH * D);
            datt = be.zeros(act, N, (long) H * D);
            dg = be.zeros(act, N, F);
            du = be.zeros(act, N, F);
            dh = be.zeros(act, N, F);
        }
    }

    void ensureLogp() {
        if (logp == null) {
            logp = be.zeros(DType.F32, N);
            lse2 = be.zeros(DType.F32, N);
            dlogp = be.zeros(DType.F32, N);
        }
    }

    void ensureLastRows() {
        if (lastHidden == null) {
            lastRows = be.zeros(DType.I32, B);
            lastHidden = be.zeros(act, B, C);
            lastLogits = be.zeros(act, B, V);
        }
    }

    @Override
    public void close() {
        IdentityHashMap<Tensor, Boolean> seen = new IdentityHashMap<>();
        for (Tensor[] arr : new Tensor[][]{res, ln1, rstd1, qPre, kPre, rstdQ, rstdK, q, k, v, att, lse, x1, ln2,
                rstd2, g, u, h}) {
            if (arr != null) {
                for (Tensor t : arr) {
                    seen.put(t, true);
                }
            }
        }
        for (Tensor t : new Tensor[]{ids, positions, mask, targets, lnf, rstdf, rope, logits, lastRows, lastHidden,
                lastLogits, logp, lse2, dlogp, dres, dln, dq, dk, dv, datt, dg, du, dh}) {
            if (t != null) {
                seen.put(t, true);
            }
        }
        seen.keySet().forEach(Tensor::close);
    }

    /** Activation buffers per (B, T, saved), least recently used first; at most {@link #MAX_SHAPES} kept. */
    static final class Cache implements AutoCloseable {
        private static final int MAX_SHAPES = 4;
        /**
         * Saved (training) sets hold every layer's buffers, L times an inference set: an RL update whose length
         * changes every step would otherwise keep four of them alive (~1 GB for the demo's 64 x 112 tokens).
         */
        private static final int MAX_SAVED_SHAPES = 2;
        private final LinkedHashMap<Long, DecoderActivations> map = new LinkedHashMap<>(8, 0.75f, true);

        /**
         * The buffers of a shape, allocated on first use; evicts the least recently used shape beyond four, and the
         * least recently used saved shape beyond two.
         */
        DecoderActivations get(ModelConfig cfg, Backend be, DType act, int B, int T, boolean saved,
                               DecoderActivations keep) {
            long key = ((long) B << 33) | ((long) T << 1) | (saved ? 1 : 0);
            DecoderActivations a = map.get(key);
            if (a == null) {
                // a new batch geometry: free the least recently used buffers rather than growing without bound
                if (saved && map.values().stream().filter(x -> x.saved).count() >= MAX_SAVED_SHAPES) {
                    evictOne(true, keep);
                }
                if (map.size() >= MAX_SHAPES) {
                    evictOne(false, keep);
                }
                a = new DecoderActivations(cfg, be, act, B, T, saved);
                map.put(key, a);
            }
            return a;
        }

        /**
         * Frees the least recently used set (a saved one when {@code savedOnly}) other than {@code keep} and other
         * than a pinned one (a recorded graph uses its buffers).
         */
        private void evictOne(boolean savedOnly, DecoderActivations keep) {
            for (Map.Entry<Long, DecoderActivations> e : map.entrySet()) {
                if (e.getValue() != keep && !e.getValue().pinned && (!savedOnly || e.getValue().saved)) {
                    map.remove(e.getKey()).close();
                    return;
                }
            }
        }

        boolean contains(DecoderActivations a) {
            return map.containsValue(a);
        }

        @Override
        public void close() {
            map.values().forEach(DecoderActivations::close);
            map.clear();
        }
    }
}
