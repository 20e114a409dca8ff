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

    private record Params(ParamStore store) implements Parameterized {
        Map<String, Tensor> p() {
            return store.weights();
        }
    }

    private Params params(long seed) {
        return params(seed, new String[]{"w.weight", "norm.weight"}, 3, 4);
    }

    private Params params(long seed, String[] names, long... shape) {
        SplittableRandom r = new SplittableRandom(seed);
        LinkedHashMap<String, long[]> shapes = new LinkedHashMap<>();
        for (String name : names) {
            shapes.put(name, shape);
        }
        ParamStore st = ParamStore.allocate(be, ParamLayout.of(shapes, AdamW.DEFAULT_DECAY),
                dev.rlsr.engine.tensor.Precision.FP32, true);
        for (String name : names) {
            float[] x = new float[(int) Tensor.count(shape)];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            be.upload(x, st.weights().get(name));
        }
        return new Params(st);
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
            Params wrong = params(5, new String[]{"w.weight"}, 2, 2);
            assertThrows(IllegalArgumentException.class, () -> new AdamW(cfg).loadState(saved, wrong));
        }
    }
}
