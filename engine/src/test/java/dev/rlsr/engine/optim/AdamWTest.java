package dev.rlsr.engine.optim;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.function.Predicate;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

/** AdamW and global-norm clipping against an independent double-precision transcription of torch's formulas. */
class AdamWTest {
    private final Backend be = CpuBackend.INSTANCE;

    /** torch.optim.AdamW (single-tensor path), in double. */
    static final class Reference {
        final double lr, b1, b2, eps, wd;
        final double[] p, m, v;
        int t;

        Reference(double lr, double b1, double b2, double eps, double wd, float[] p0) {
            this.lr = lr;
            this.b1 = b1;
            this.b2 = b2;
            this.eps = eps;
            this.wd = wd;
            p = new double[p0.length];
            for (int i = 0; i < p0.length; i++) {
                p[i] = p0[i];
            }
            m = new double[p0.length];
            v = new double[p0.length];
        }

        void step(float[] g) {
            t++;
            double bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
            for (int i = 0; i < p.length; i++) {
                p[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * g[i];
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
                double denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + eps;
                p[i] -= lr / bc1 * m[i] / denom;
            }
        }
    }

    private static float[] gaussian(SplittableRandom r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (scale * r.nextGaussian());
        }
        return x;
    }

    /** A trainable fp32 parameter store with the given (name, initial values), each a 1-D parameter. */
    private Parameterized store(Map<String, float[]> init) {
        LinkedHashMap<String, long[]> shapes = new LinkedHashMap<>();
        init.forEach((k, v) -> shapes.put(k, new long[]{v.length}));
        ParamStore st = ParamStore.allocate(be, ParamLayout.of(shapes, AdamW.DEFAULT_DECAY),
                dev.rlsr.engine.tensor.Precision.FP32, true);
        init.forEach((k, v) -> be.upload(v, st.weights().get(k)));
        return () -> st;
    }

    @Test
    void matchesTorchFormulaWithDecayFilter() {
        checkAgainstTorch(AdamW.DEFAULT_DECAY, 1234);
    }

    @Test
    void aDecayFilterThatDoesNotMatchTheLayoutStillDecaysTheRightParameters() {
        // the layout groups by DEFAULT_DECAY; this filter decays everything, so AdamW takes its per-parameter path
        checkAgainstTorch(name -> true, 99);
        checkAgainstTorch(name -> name.contains("bias"), 5);
    }

    private void checkAgainstTorch(Predicate<String> decayFilter, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float lr = 3e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
        Map<String, float[]> init = new LinkedHashMap<>();
        init.put("model.layers.0.mlp.up_proj.weight", gaussian(rng, 1000, 0.5));
        init.put("model.layers.0.self_attn.q_proj.bias", gaussian(rng, 37, 0.5));
        init.put("model.norm.weight", gaussian(rng, 64, 0.5));
        Parameterized model = store(init);
        Map<String, Reference> refs = new LinkedHashMap<>();
        init.forEach((name, p0) -> refs.put(name, new Reference(lr, b1, b2, eps, decayFilter.test(name) ? wd : 0, p0)));
        try (AdamW opt = new AdamW(new AdamW.Config(lr, b1, b2, eps, wd), decayFilter)) {
            for (int step = 0; step < 5; step++) {
                for (String name : init.keySet()) {
                    // includes tiny and zero gradients, where eps dominates the denominator
                    float[] g = gaussian(rng, init.get(name).length, step == 2 ? 1e-9 : 1.0);
                    g[0] = 0f;
                    be.upload(g, model.grads().get(name));
                    refs.get(name).step(g);
                }
                opt.step(model);
                for (String name : init.keySet()) {
                    float[] got = be.download(model.parameters().get(name));
                    double[] want = refs.get(name).p;
                    for (int i = 0; i < got.length; i++) {
                        double err = Math.abs(got[i] - want[i]);
                        if (err > 1e-6 + 1e-5 * Math.abs(want[i])) {
                            fail("step " + (step + 1) + " " + name + "[" + i + "]: got " + got[i] + ", expected "
                                    + want[i] + " (error " + err + ")");
                        }
                    }
                }
            }
            assertEquals(5, opt.stepCount());
        } finally {
            model.store().close();
        }
    }

    @Test
    void clipGlobalNormMatchesTorch() {
        SplittableRandom rng = new SplittableRandom(7);
        float[] a = gaussian(rng, 300, 2.0), b = gaussian(rng, 17, 2.0);
        double ss = 0;
        for (float x : a) {
            ss += (double) x * x;
        }
        for (float x : b) {
            ss += (double) x * x;
        }
        double norm = Math.sqrt(ss);
        Map<String, float[]> init = new LinkedHashMap<>();
        init.put("a.weight", new float[a.length]);
        init.put("b.bias", new float[b.length]);
        Parameterized model = store(init);
        be.upload(a, model.grads().get("a.weight"));
        be.upload(b, model.grads().get("b.bias"));
        float maxNorm = 1.5f;
        float total = GradClip.clipGlobalNorm(model, maxNorm);
        assertEquals(norm, total, 1e-5 * norm);
        double coef = maxNorm / (norm + 1e-6);
        float[] ga = be.download(model.grads().get("a.weight"));
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i] * coef, ga[i], 1e-6 * Math.abs(a[i]) + 1e-7, "clipped element " + i);
        }
        // below the threshold nothing changes
        float again = GradClip.clipGlobalNorm(model, 100f);
        assertEquals(maxNorm, again, 1e-4);
        float[] ga2 = be.download(model.grads().get("a.weight"));
        for (int i = 0; i < a.length; i++) {
            assertEquals(ga[i], ga2[i]);
        }
        model.store().close();
    }

    @Test
    void theDeviceClipFactorGivesTheSameUpdateAsClippingTheGradients() {
        SplittableRandom rng = new SplittableRandom(11);
        Map<String, float[]> init = new LinkedHashMap<>();
        init.put("w.weight", gaussian(rng, 129, 1.0));
        init.put("w.bias", gaussian(rng, 7, 1.0));
        Parameterized viaFactor = store(init), viaClip = store(init);
        for (String n : init.keySet()) {
            float[] g = gaussian(rng, init.get(n).length, 3.0);
            be.upload(g, viaFactor.grads().get(n));
            be.upload(g, viaClip.grads().get(n));
        }
        AdamW.Config cfg = new AdamW.Config(1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f);
        try (AdamW o1 = new AdamW(cfg); AdamW o2 = new AdamW(cfg);
             Tensor norm = be.zeros(1); Tensor scale = be.zeros(1)) {
            GradClip.clipScale(viaFactor, 0.5f, norm, scale);
            float factor = be.download(scale)[0];
            assertEquals(0.5 / (Math.sqrt(be.download(norm)[0]) + 1e-6), factor, 1e-7, "the factor is max/(norm+eps)");
            o1.step(viaFactor, scale);
            GradClip.clipGlobalNorm(viaClip, 0.5f);
            o2.step(viaClip);
            for (String n : init.keySet()) {
                assertArrayEquals(be.download(viaClip.parameters().get(n)), be.download(viaFactor.parameters().get(n)),
                        0f, n + ": scaling inside AdamW must be bit-identical to scaling the gradients first");
            }
        }
        viaFactor.store().close();
        viaClip.store().close();
    }

    @Test
    void rejectsBadConfig() {
        assertThrows(IllegalArgumentException.class, () -> new AdamW.Config(-1f, 0.9f, 0.999f, 1e-8f, 0f));
        assertThrows(IllegalArgumentException.class, () -> new AdamW.Config(1e-3f, 1f, 0.999f, 1e-8f, 0f));
        Parameterized model = store(Map.of("x.weight", new float[3]));
        assertThrows(IllegalArgumentException.class, () -> GradClip.clipGlobalNorm(model, 0f));
    }
}
