package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * AdamW as {@code torch.optim.AdamW} (decoupled weight decay, bias correction, no amsgrad):
 * {@code p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)}.
 *
 * <p>Weight decay applies to the parameters accepted by the decay filter; {@link #DEFAULT_DECAY} excludes biases
 * and normalisation weights (names ending in {@code .bias} or containing {@code norm}), the usual LLM recipe
 * (pass {@code name -> true} to decay everything, as a bare torch AdamW over {@code model.parameters()} does).
 * The moments m and v are two flat fp32 buffers with the model's {@link ParamLayout}, created on the first step, so
 * a step is ONE backend launch over the flat master weights, gradients and moments (which also writes the bf16
 * compute copy when the model has one), whatever the number of parameters. A decay filter that does not match the
 * model's layout falls back to one launch per parameter. Gradients are not zeroed.
 */
public final class AdamW implements AutoCloseable {

    /** torch defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
    public record Config(float lr, float beta1, float beta2, float eps, float weightDecay) {
        public Config {
            if (!(lr >= 0) || !Float.isFinite(lr)) {
                throw new IllegalArgumentException("learning rate must be a finite number >= 0, got " + lr);
            }
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("betas must be in [0, 1), got (" + beta1 + ", " + beta2 + ")");
            }
            if (!(eps > 0)) {
                throw new IllegalArgumentException("eps must be > 0, got " + eps);
            }
            if (!(weightDecay >= 0)) {
                throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay);
            }
        }

        public static Config defaults() {
            return new Config(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
        }

        public Config withLr(float newLr) {
            return new Config(newLr, beta1, beta2, eps, weightDecay);
        }
    }

    /** No decay on biases and norm weights. */
    public static final Predicate<String> DEFAULT_DECAY = name -> !name.endsWith(".bias") && !name.contains("norm");

    private Config config;
    private final Predicate<String> decay;
    private ParamLayout layout;
    private Backend backend;
    private Tensor m;
    private Tensor v;
    private long step;

    /**
     * AdamW with {@link #DEFAULT_DECAY}.
     *
     * @param config hyper-parameters
     */
    public AdamW(Config config) {
        this(config, DEFAULT_DECAY);
    }

    /**
     * AdamW with a decay filter.
     *
     * @param config      hyper-parameters
     * @param decayFilter which parameter names get weight decay
     */
    public AdamW(Config config, Predicate<String> decayFilter) {
        this.config = config;
        this.decay = decayFilter;
    }

    /** @return the hyper-parameters */
    public Config config() {
        return config;
    }

    /** @return the decay filter */
    public Predicate<String> decayFilter() {
        return decay;
    }

    /**
     * Changes the learning rate from the next step on (schedules).
     *
     * @param lr the new learning rate
     */
    public void setLr(float lr) {
        config = config.withLr(lr);
    }

    /** @return the number of steps taken */
    public long stepCount() {
        return step;
    }

    /**
     * The moments of one parameter, or null before the first step.
     *
     * @param name a parameter
     * @return {m, v} views into the flat moment buffers
     */
    public Tensor[] state(String name) {
        if (m == null) {
            return null;
        }
        long off = layout.offset(name);
        long[] shape = layout.shape(name);
        return new Tensor[]{m.view(off, shape), v.view(off, shape)};
    }

    /**
     * Everything needed to continue optimisation identically after a restart: the step count (bias correction) and
     * the moments m, v of every parameter that has taken a step, as host copies keyed by parameter name.
     *
     * @param step the step count
     * @param m    first moments by name
     * @param v    second moments by name
     */
    public record State(long step, Map<String, float[]> m, Map<String, float[]> v) {
        public State {
            if (step < 0) {
                throw new IllegalArgumentException("AdamW step count must be >= 0, got " + step);
            }
            m = Map.copyOf(m);
            v = Map.copyOf(v);
            if (!m.keySet().equals(v.keySet())) {
                throw new IllegalArgumentException("AdamW state has first moments for " + m.keySet()
                        + " but second moments for " + v.keySet());
            }
        }
    }

    /**
     * A host copy of the optimizer state (see {@link State}); the learning rate is the schedule's business.
     *
     * @return the state
     */
    public State state() {
        Map<String, float[]> ms = new LinkedHashMap<>(), vs = new LinkedHashMap<>();
        if (m != null) {
            for (String name : layout.shapes().keySet()) {
                Tensor[] mv = state(name);
                ms.put(name, backend.download(mv[0]));
                vs.put(name, backend.download(mv[1]));
            }
        }
        return new State(step, ms, vs);
    }

    /**
     * Replaces the state with a saved one; the moments must match the model's parameters in name and size.
     *
     * @param saved the state
     * @param model the model it belongs to
     */
    public void loadState(State saved, Parameterized model) {
        ParamStore store = model.store();
        Map<String, long[]> shapes = store.layout().shapes();
        for (String name : saved.m().keySet()) {
            long[] shape = shapes.get(name);
            if (shape == null) {
                throw new IllegalArgumentException("saved optimizer state has moments for '" + name
                        + "', which the model does not have");
            }
            long n = Tensor.count(shape);
            if (saved.m().get(name).length != n || saved.v().get(name).length != n) {
                throw new IllegalArgumentException("saved optimizer moments of '" + name + "' have "
                        + saved.m().get(name).length + " values, the parameter " + n);
            }
        }
        close();
        if (!saved.m().isEmpty()) {
            ensureState(store);
            for (Map.Entry<String, float[]> e : saved.m().entrySet()) {
                Tensor[] mv = state(e.getKey());
                backend.upload(e.getValue(), mv[0]);
                backend.upload(saved.v().get(e.getKey()), mv[1]);
            }
        }
        step = saved.step();
    }

    private void ensureState(ParamStore store) {
        if (m != null && layout == store.layout() && backend == store.backend()) {
            return;
        }
        if (m != null) {
            throw new IllegalStateException("this optimizer already holds moments for another model");
        }
        layout = store.layout();
        backend = store.backend();
        m = backend.zeros(DType.F32, layout.total());
        v = backend.zeros(DType.F32, layout.total());
    }

    /**
     * One update of every parameter of the model from its current gradients, without clipping.
     *
     * @param model the model
     */
    public void step(Parameterized model) {
        step(model, null);
    }

    /**
     * One update of every parameter of the model from its current gradients times a device-resident clip factor
     * (see {@link GradClip#clipScale}).
     *
     * @param model     the model
     * @param clipScale F32 (1) factor applied to every gradient, or null
     */
    public void step(Parameterized model, Tensor clipScale) {
        ParamStore store = model.store();
        if (!store.trainable()) {
            throw new IllegalArgumentException("the model is frozen: it has no gradients or master weights to update");
        }
        ensureState(store);
        step++;
        double bc1 = 1.0 - Math.pow(config.beta1(), step);
        double bc2 = 1.0 - Math.pow(config.beta2(), step);
        AdamWParams hp = new AdamWParams(config.lr(), config.beta1(), config.beta2(), config.eps(),
                config.weightDecay(), bc1, bc2);
        Tensor master = store.masterFlat(), grad = store.gradFlat();
        Tensor copy = store.computeFlat() == master ? null : store.computeFlat();
        if (layout.matches(decay)) {
            backend.adamW(master, grad, m, v, copy, layout.decayEnd(), hp, clipScale);
            return;
        }
        for (Map.Entry<String, long[]> e : layout.shapes().entrySet()) {
            long off = layout.offset(e.getKey()), n = Tensor.count(e.getValue());
            backend.adamW(master.view(off, n), grad.view(off, n), m.view(off, n), v.view(off, n),
                    copy == null ? null : copy.view(off, n), decay.test(e.getKey()) ? n : 0, hp, clipScale);
        }
    }

    @Override
    public void close() {
        if (m != null) {
            m.close();
            v.close();
        }
        m = null;
        v = null;
        layout = null;
        backend = null;
    }
}
