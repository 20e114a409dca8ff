package dev.rlsr.engine.optim;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** AdamW state export/restore: a restored optimizer continues exactly like the original one. */
class AdamWStateTest {
    private final Backend be = CpuBackend.INSTANCE;

    private record Params(Map<String, Tensor> p, Map<String, Tensor> g) implements Parameterized {
        @Override
        public Map<String, Tensor> parameters() {
            return p;
        }

        @Override
        public Map<String, Tensor> grads() {
            return g;
        }
    }

    private Params params(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, Tensor> p = new LinkedHashMap<>(), g = new LinkedHashMap<>();
        for (String name : new String[]{"w.weight", "norm.weight"}) {
            float[] x = new float[12];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            p.put(name, be.upload(x, 3, 4));
            g.put(name, be.zeros(3, 4));
        }
        return new Params(p, g);
    }

    private void randomGrads(Params m, SplittableRandom r) {
        for (Tensor g : m.grads().values()) {
            float[] x = new float[(int) g.numel()];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            be.upload(x, g);
        }
    }

    @Test
    void restoredStateContinuesIdentically() {
        AdamW.Config cfg = new AdamW.Config(0.05f, 0.9f, 0.99f, 1e-8f, 0.1f);
        Params a = params(1);
        SplittableRandom ra = new SplittableRandom(2);
        try (AdamW opt = new AdamW(cfg)) {
            for (int s = 0; s < 3; s++) {
                randomGrads(a, ra);
                opt.step(a);
            }
            AdamW.State saved = opt.state();
            assertEquals(3, saved.step());
            Params b = params(99);
            for (String n : a.p().keySet()) {
                be.upload(be.download(a.p().get(n)), b.p().get(n));
            }
            SplittableRandom ra2 = new SplittableRandom(7), rb2 = new SplittableRandom(7);
            try (AdamW restored = new AdamW(cfg)) {
                restored.loadState(saved, b);
                assertEquals(3, restored.stepCount());
                for (int s = 0; s < 3; s++) {
                    randomGrads(a, ra2);
                    opt.step(a);
                    randomGrads(b, rb2);
                    restored.step(b);
                }
                for (String n : a.p().keySet()) {
                    assertArrayEquals(be.download(a.p().get(n)), be.download(b.p().get(n)), 0f, n);
                }
                // a fresh optimizer (no state) would differ: bias correction restarts at step 1
                assertEquals(6, restored.stepCount());
            }
            Params wrong = new Params(Map.of("w.weight", be.zeros(2, 2)), Map.of());
            assertThrows(IllegalArgumentException.class, () -> new AdamW(cfg).loadState(saved, wrong));
        }
    }
}
