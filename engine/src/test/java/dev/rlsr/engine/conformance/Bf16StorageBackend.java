package dev.rlsr.engine.conformance;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * A test double of a bf16 device on the CPU: tensors are stored as the CPU backend stores them (BF16 as bits), and
 * every op with BF16 arguments widens them to fp32 (exactly), runs the fp32 CPU op, and rounds its activation
 * outputs back to bf16 (to nearest even). That is the arithmetic a bf16 device performs between kernels (bf16
 * storage, fp32 compute and accumulation) without the roundings some kernels add inside (e.g. flash attention's
 * bf16 probabilities), so it checks the bf16 paths of the conformance and HF parity suites and the bf16 tolerance
 * table's headroom on every machine. It is not a CUDA result.
 */
public final class Bf16StorageBackend extends ForwardingBackend {

    /** A backend over {@link CpuBackend#INSTANCE}. */
    public Bf16StorageBackend() {
        super(CpuBackend.INSTANCE);
    }

    @Override
    public String name() {
        return "cpu-bf16-storage";
    }

    @Override
    public Precision defaultPrecision() {
        return Precision.BF16;
    }

    @Override
    public boolean computes(DType act) {
        return act == DType.F32 || act == DType.BF16;
    }

    /** fp32 stand-ins of one op's BF16 arguments; outputs are rounded back to bf16 when the op is done. */
    private final class Scope implements AutoCloseable {
        private final Map<Tensor, Tensor> temps = new IdentityHashMap<>();
        private final Map<Tensor, Boolean> outputs = new IdentityHashMap<>();

        Tensor in(Tensor t) {
            if (t == null || t.dtype() != DType.BF16) {
                return t;
            }
            return temps.computeIfAbsent(t, k -> {
                Tensor f = d.zeros(DType.F32, k.shape());
                d.copy(k, f);
                return f;
            });
        }

        /** An output (its current values are read too: accumulating and in-place ops). */
        Tensor out(Tensor t) {
            if (t != null && t.dtype() == DType.BF16) {
                outputs.put(t, true);
            }
            return in(t);
        }

        @Override
        public void close() {
            for (Map.Entry<Tensor, Tensor> e : temps.entrySet()) {
                if (outputs.containsKey(e.getKey())) {
                    d.copy(e.getValue(), e.getKey());
                }
                e.getValue().close();
            }
        }
    }

    @Override
    public void gatherRows(Tensor src, Tensor rows, Tensor dst) {
        try (Scope s = new Scope()) {
            d.gatherRows(s.in(src), rows, s.out(dst));
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        try (Scope s = new Scope()) {
            Tensor o = s.out(out);
            d.add(s.in(a), s.in(b), o);
        }
    }

    @Override
    public void scale(Tensor t, float v) {
        try (Scope s = new Scope()) {
            d.scale(s.out(t), v);
        }
    }

    @Override
    public void argmaxRows(Tensor x, Tensor out) {
        try (Scope s = new Scope()) {
            d.argmaxRows(s.in(x), out);
        }
    }

    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor residual, Tensor y) {
        try (Scope s = new Scope()) {
            Tensor yo = s.out(y);
            d.linear(s.in(x), s.in(w), s.in(bias), s.in(residual), yo);
        }
    }

    @Override
    public void linearBackwardInput(Tensor dy, Tensor w, Tensor dx, boolean accumulate) {
        try (Scope s = new Scope()) {
            d.linearBackwardInput(s.in(dy), s.in(w), s.out(dx), accumulate);
        }
    }

    @Override
    public void linearBackwardWeight(Tensor dy, Tensor x, Tensor dw, Tensor dBias) {
        try (Scope s = new Scope()) {
            d.linearBackwardWeight(s.in(dy), s.in(x), dw, dBias);
        }
    }

    @Override
    public void embedding(Tensor ids, Tensor table, Tensor out) {
        try (Scope s = new Scope()) {
            d.embedding(ids, s.in(table), s.out(out));
        }
    }

    @Override
    public void embeddingBackward(Tensor ids, Tensor dOut, Tensor dTable) {
        try (Scope s = new Scope()) {
            d.embeddingBackward(ids, s.in(dOut), dTable);
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd) {
        try (Scope s = new Scope()) {
            d.rmsNorm(s.in(x), s.in(w), eps, s.out(out), rstd);
        }
    }

    @Override
    public void rmsNormBackward(Tensor dOut, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw,
                                boolean accumulateDx) {
        try (Scope s = new Scope()) {
            Tensor dxo = s.out(dx);
            d.rmsNormBackward(s.in(dOut), s.in(x), s.in(w), rstd, dxo, dw, accumulateDx);
        }
    }

    @Override
    public void rope(Tensor x, Tensor table, int heads, boolean inverse) {
        try (Scope s = new Scope()) {
            d.rope(s.out(x), table, heads, inverse);
        }
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape sh, Tensor keyMask) {
        try (Scope s = new Scope()) {
            d.attention(s.in(q), s.in(k), s.in(v), s.out(out), lse, sh, keyMask);
        }
    }

    @Override
    public void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                  Tensor dk, Tensor dv, AttentionShape sh, Tensor keyMask) {
        try (Scope s = new Scope()) {
            d.attentionBackward(s.in(q), s.in(k), s.in(v), s.in(out), lse, s.in(dOut), s.out(dq), s.out(dk),
                    s.out(dv), sh, keyMask);
        }
    }

    @Override
    public void swiglu(Tensor g, Tensor u, Tensor h) {
        try (Scope s = new Scope()) {
            d.swiglu(s.in(g), s.in(u), s.out(h));
        }
    }

    @Override
    public void swigluBackward(Tensor g, Tensor u, Tensor dh, Tensor dg, Tensor du) {
        try (Scope s = new Scope()) {
            d.swigluBackward(s.in(g), s.in(u), s.in(dh), s.out(dg), s.out(du));
        }
    }

    @Override
    public void crossEntropy(Tensor logits, Tensor targets, float gradScale, Tensor dLogits, Tensor lossSum) {
        try (Scope s = new Scope()) {
            Tensor dl = s.out(dLogits);
            d.crossEntropy(s.in(logits), targets, gradScale, dl, lossSum);
        }
    }

    @Override
    public void logProbGather(Tensor logits, Tensor targets, float temperature, Tensor logp, Tensor lse) {
        try (Scope s = new Scope()) {
            d.logProbGather(s.in(logits), targets, temperature, logp, lse);
        }
    }

    @Override
    public void logProbGatherBackward(Tensor logits, Tensor targets, Tensor lse, Tensor dLogp, float temperature,
                                      Tensor dLogits) {
        try (Scope s = new Scope()) {
            Tensor dl = s.out(dLogits);
            d.logProbGatherBackward(s.in(logits), targets, lse, dLogp, temperature, dl);
        }
    }

    @Override
    public void layerNorm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
        try (Scope s = new Scope()) {
            Tensor o = s.out(out);
            d.layerNorm(s.in(x), s.in(w), s.in(b), eps, o);
        }
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        try (Scope s = new Scope()) {
            Tensor o = s.out(out);
            d.gelu(s.in(x), o);
        }
    }

    @Override
    public void bidirectionalAttention(Tensor q, Tensor k, Tensor v, Tensor out, AttentionShape sh, Tensor keyMask) {
        try (Scope s = new Scope()) {
            d.bidirectionalAttention(s.in(q), s.in(k), s.in(v), s.out(out), sh, keyMask);
        }
    }

    @Override
    public void meanPool(Tensor x, Tensor mask, Tensor pooled) {
        try (Scope s = new Scope()) {
            d.meanPool(s.in(x), mask, s.out(pooled));
        }
    }

    @Override
    public void l2NormalizeRows(Tensor x, float eps) {
        try (Scope s = new Scope()) {
            d.l2NormalizeRows(s.out(x), eps);
        }
    }

    @Override
    public void close() {
        // the shared CPU instance stays open
    }
}
