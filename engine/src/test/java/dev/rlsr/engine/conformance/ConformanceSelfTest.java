package dev.rlsr.engine.conformance;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cpu.CpuTensor;
import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.AttentionShape;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.GrpoSpec;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The conformance suite must fail on a faulty backend: each case here injects one fault into the CPU backend (an
 * ignored mask, a dropped bias, TF32 products, an unwritten element, a write past the output, a modified input,
 * reads of stale KV-cache rows, ...) and checks that the suite's cases of that op report it, with the backend name
 * and the seed in the message. Guards against a harness that passes whatever the backend does.
 */
class ConformanceSelfTest {

    /** One fault: a backend that has it, the op whose cases must catch it, and a phrase the failure must contain. */
    record Fault(String name, Backend backend, Function<BackendConformance, Stream<DynamicTest>> op, String expect) {}

    private static final Backend CPU = CpuBackend.INSTANCE;

    private static float[] arr(Tensor t) {
        return ((CpuTensor) t).array();
    }

    private static int off(Tensor t) {
        return ((CpuTensor) t).off();
    }

    /** x rounded to TF32 (11 significant bits), as tensor-core fp32 GEMMs with TF32 enabled read their inputs. */
    private static Tensor tf32(Tensor x) {
        float[] v = CPU.download(x);
        for (int i = 0; i < v.length; i++) {
            v[i] = Float.intBitsToFloat((Float.floatToRawIntBits(v[i]) + 0x1000) & 0xffffe000);
        }
        return CPU.upload(v, x.shape());
    }

    static List<Fault> faults() {
        List<Fault> f = new ArrayList<>();
        f.add(new Fault("attention ignores the key mask", new ForwardingBackend(CPU) {
            @Override
            public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor m) {
                d.attention(q, k, v, out, lse, s, null);
            }
        }, BackendConformance::attention, "outside |got-ref|"));
        f.add(new Fault("attention multiplies zero probabilities with the stale KV-cache rows past kLen",
                new ForwardingBackend(CPU) {
            @Override
            public void attention(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, Tensor m) {
                d.attention(q, k, v, out, lse, s, m);
                // what a kernel does that runs P·V over whole tiles of the cache: 0 * (whatever is stored there)
                if (s.kStride() > s.kLen()) {
                    float stale = arr(v)[off(v) + s.kLen() * s.kvHeads() * s.headDim()];
                    for (int i = 0; i < out.numel(); i++) {
                        arr(out)[off(out) + i] += 0f * stale;
                    }
                }
            }
        }, BackendConformance::attention, "KV"));
        f.add(new Fault("attentionBackward leaves dk past kLen unwritten", new ForwardingBackend(CPU) {
            @Override
            public void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, Tensor dq,
                                          Tensor dk, Tensor dv, AttentionShape s, Tensor m) {
                d.attentionBackward(q, k, v, out, lse, dOut, dq, dk, dv, s, m);
                int kw = s.kvHeads() * s.headDim();
                for (int b = 0; b < s.batch(); b++) {
                    int from = off(dk) + (b * s.kStride() + s.kLen()) * kw;
                    Arrays.fill(arr(dk), from, off(dk) + (b + 1) * s.kStride() * kw, Float.NaN);
                }
            }
        }, BackendConformance::attentionBackward, "dk"));
        f.add(new Fault("linear drops the bias", new ForwardingBackend(CPU) {
            @Override
            public void linear(Tensor x, Tensor w, Tensor bias, Tensor residual, Tensor y) {
                d.linear(x, w, null, residual, y);
            }
        }, BackendConformance::linear, "bias"));
        f.add(new Fault("linear multiplies in TF32", new ForwardingBackend(CPU) {
            @Override
            public void linear(Tensor x, Tensor w, Tensor bias, Tensor residual, Tensor y) {
                try (Tensor xt = tf32(x); Tensor wt = tf32(w)) {
                    d.linear(xt, wt, bias, residual, y);
                }
            }
        }, BackendConformance::linear, "outside |got-ref|"));
        f.add(new Fault("rmsNorm leaves its last output element unwritten", new ForwardingBackend(CPU) {
            @Override
            public void rmsNorm(Tensor x, Tensor w, float eps, Tensor out, Tensor rstd) {
                d.rmsNorm(x, w, eps, out, rstd);
                arr(out)[off(out) + (int) out.numel() - 1] = Float.NaN;
            }
        }, BackendConformance::rmsNorm, "NaN"));
        f.add(new Fault("add writes one element past its output", new ForwardingBackend(CPU) {
            @Override
            public void add(Tensor a, Tensor b, Tensor out) {
                d.add(a, b, out);
                arr(out)[off(out) + (int) out.numel()] = 0f;
            }
        }, BackendConformance::add, "outside the tensor"));
        f.add(new Fault("swiglu overwrites its gate input", new ForwardingBackend(CPU) {
            @Override
            public void swiglu(Tensor g, Tensor u, Tensor h) {
                d.swiglu(g, u, h);
                d.fill(g, 0f);
            }
        }, BackendConformance::swiglu, "was modified"));
        f.add(new Fault("inverse rope rotates forward", new ForwardingBackend(CPU) {
            @Override
            public void rope(Tensor x, Tensor table, int heads, boolean inverse) {
                d.rope(x, table, heads, false);
            }
        }, BackendConformance::rope, "inverse"));
        f.add(new Fault("logProbGather ignores the temperature", new ForwardingBackend(CPU) {
            @Override
            public void logProbGather(Tensor logits, Tensor targets, float t, Tensor logp, Tensor lse) {
                d.logProbGather(logits, targets, 1f, logp, lse);
            }
        }, BackendConformance::logProbGather, "T=0.7"));
        f.add(new Fault("crossEntropy counts ignored targets as token 0", new ForwardingBackend(CPU) {
            @Override
            public void crossEntropy(Tensor logits, Tensor targets, float gs, Tensor dLogits, Tensor lossSum) {
                int[] t = d.downloadInts(targets);
                for (int i = 0; i < t.length; i++) {
                    t[i] = Math.max(t[i], 0);
                }
                try (Tensor fixed = d.upload(t, t.length)) {
                    d.crossEntropy(logits, fixed, gs, dLogits, lossSum);
                }
            }
        }, BackendConformance::crossEntropy, "ignored"));
        f.add(new Fault("grpoLoss always aggregates per token", new ForwardingBackend(CPU) {
            @Override
            public void grpoLoss(GrpoSpec s, Tensor logp, Tensor old, Tensor ref, Tensor adv, Tensor mask,
                                 Tensor dLogp, Tensor stats) {
                d.grpoLoss(new GrpoSpec(s.clipLow(), s.clipHigh(), s.beta(), GrpoSpec.Aggregation.TOKEN,
                        s.maxCompletionLength()), logp, old, ref, adv, mask, dLogp, stats);
            }
        }, BackendConformance::grpoLoss, "SEQUENCE"));
        f.add(new Fault("adamW decays every element", new ForwardingBackend(CPU) {
            @Override
            public void adamW(Tensor p, Tensor g, Tensor m, Tensor v, Tensor copy, long decayEnd, AdamWParams hp,
                              Tensor clip) {
                d.adamW(p, g, m, v, copy, p.numel(), hp, clip);
            }
        }, BackendConformance::adamW, "decayEnd 700"));
        f.add(new Fault("bf16 upload truncates instead of rounding to nearest even", new ForwardingBackend(CPU) {
            @Override
            public void upload(float[] data, Tensor dst) {
                if (dst.dtype() != DType.BF16) {
                    d.upload(data, dst);
                    return;
                }
                float[] t = new float[data.length];
                for (int i = 0; i < t.length; i++) {
                    t[i] = Float.isNaN(data[i]) ? data[i]
                            : Float.intBitsToFloat(Float.floatToRawIntBits(data[i]) & 0xffff0000);
                }
                d.upload(t, dst);
            }
        }, BackendConformance::uploadDownload, "BF16"));
        f.add(new Fault("cosineSimilarity compares every row with the first reference", new ForwardingBackend(CPU) {
            @Override
            public void cosineSimilarity(Tensor ref, Tensor x, Tensor out) {
                d.cosineSimilarity(ref.view(0, 1, ref.dim(-1)), x, out);
            }
        }, BackendConformance::cosineSimilarity, "outside |got-ref|"));
        f.add(new Fault("groupAdvantages divides by the population std (G, not G-1)", new ForwardingBackend(CPU) {
            @Override
            public void groupAdvantages(Tensor rewards, int groupSize, boolean scaleByStd, float eps, Tensor out) {
                d.groupAdvantages(rewards, groupSize, scaleByStd, eps, out);
                if (scaleByStd && groupSize > 1) {
                    d.scale(out, (float) Math.sqrt((double) groupSize / (groupSize - 1)));
                }
            }
        }, BackendConformance::groupAdvantages, "outside |got-ref|"));
        return f;
    }

    /** Runs every case of one op of the suite on a backend; returns the failures. */
    static List<Throwable> run(Backend backend, Function<BackendConformance, Stream<DynamicTest>> op) {
        BackendConformance suite = new BackendConformance("faulty-cpu", DType.F32) {
            @Override
            protected Backend openBackend() {
                return backend;
            }
        };
        suite.open();
        List<Throwable> failures = new ArrayList<>();
        try {
            op.apply(suite).forEach(t -> {
                try {
                    t.getExecutable().execute();
                } catch (Throwable e) {
                    failures.add(e);
                }
            });
        } finally {
            suite.close();
        }
        return failures;
    }

    @TestFactory
    Stream<DynamicTest> faultsAreCaught() {
        return faults().stream().map(fault -> DynamicTest.dynamicTest("cpu with fault: " + fault.name(), () -> {
            List<Throwable> failures = run(fault.backend(), fault.op());
            assertFalse(failures.isEmpty(), "the suite passed a backend whose " + fault.name());
            assertTrue(failures.stream().anyMatch(e -> String.valueOf(e.getMessage()).contains(fault.expect())),
                    "no failure mentions '" + fault.expect() + "': " + failures.getFirst().getMessage());
            for (Throwable e : failures) {
                String m = String.valueOf(e.getMessage());
                assertTrue(e instanceof AssertionError && m.contains("faulty-cpu") && m.contains("seed"),
                        "a failure without the backend name and seed: " + e);
            }
            System.out.println("  caught '" + fault.name() + "' in " + failures.size() + " case(s): "
                    + failures.getFirst().getMessage().lines().findFirst().orElse(""));
        }));
    }

    @TestFactory
    Stream<DynamicTest> unchangedBackendPasses() {
        // the same runner without a fault: the failures above come from the faults, not from the runner
        List<Function<BackendConformance, Stream<DynamicTest>>> ops = List.of(BackendConformance::attention,
                BackendConformance::linear, BackendConformance::uploadDownload);
        return ops.stream().map(op -> DynamicTest.dynamicTest("cpu without a fault: " + op, () -> {
            List<Throwable> failures = run(new ForwardingBackend(CPU), op);
            assertTrue(failures.isEmpty(), () -> "unexpected failure: " + failures.getFirst());
        }));
    }
}
