package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.AdamWParams;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;

import java.util.Collections;
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
 * State (m, v) is created lazily per parameter name on the parameter's backend. Gradients are not zeroed.
 */
public final class AdamW implements AutoCloseable {

    /**
     * Hyper-parameters; torch defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
     *
     * @param lr          learning rate, finite and &gt;= 0
     * @param beta1       decay of the first moment, in [0, 1)
     * @param beta2       decay of the second moment, in [0, 1)
     * @param eps         added to the denominator, &gt; 0
     * @param weightDecay decoupled weight decay, &gt;= 0
     */
    public record Config(float lr, float beta1, float beta2, float eps, float weightDecay) {
        /** Checks every value, naming the bad one. */
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

        /** {@return torch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01} */
        public static Config defaults() {
            return new Config(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
        }

        /**
         * This config with another learning rate.
         *
         * @param newLr the learning rate
         * @return the new config
         */
        public Config withLr(float newLr) {
            return new Config(newLr, beta1, beta2, eps, weightDecay);
        }
    }

    /** No decay on biases and norm weights. */
    public static final Predicate<String> DEFAULT_DECAY = name -> !name.endsWith(".bias") && !name.contains("norm");

    private Config config;
    private final Predicate<String> decay;
    private final Map<String, Tensor[]> state = new LinkedHashMap<>();
    private long step;

    /**
     * An optimizer that decays every parameter but biases and norm weights ({@link #DEFAULT_DECAY}).
     *
     * @param config the hyper-parameters
     */
    public AdamW(Config config) {
        this(config, DEFAULT_DECAY);
    }

    /**
     * An optimizer with a custom choice of decayed parameters.
     *
     * @param config      the hyper-parameters
     * @param decayFilter true for the parameter names that get weight decay
     */
    public AdamW(Config config, Predicate<String> decayFilter) {
        this.config = config;
        this.decay = decayFilter;
    }

    /** {@return the current hyper-parameters} */
    public Config config() {
        return config;
    }

    /**
     * Changes the learning rate from the next step on (schedules).
     *
     * @param lr the learning rate
     */
    public void setLr(float lr) {
        config = config.withLr(lr);
    }

    /** {@return the number of steps taken} */
    public long stepCount() {
        return step;
    }

    /**
     * The moments of one parameter.
     *
     * @param name the parameter's name
     * @return {m, v}, or null before its first step
     */
    public Tensor[] state(String name) {
        Tensor[] s = state.get(name);
        return s == null ? null : s.clone();
    }

    /** {@return the moments {m, v} of every parameter that has taken a step, by name (read-only view)} */
    public Map<String, Tensor[]> states() {
        return Collections.unmodifiableMap(state);
    }

    /**
     * Everything needed to continue optimisation identically after a restart: the step count (bias correction) and
     * the moments m, v of every parameter that has taken a step, as host copies keyed by parameter name.
     *
     * @param step steps taken, &gt;= 0
     * @param m    first moments by parameter name
     * @param v    second moments, the same names
     */
    public record State(long step, Map<String, float[]> m, Map<String, float[]> v) {
        /** Checks the step count and that m and v name the same parameters; copies the maps. */
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

    /** {@return a host copy of the optimizer state} (see {@link State}); the learning rate is the schedule's business. */
    public State state() {
        Map<String, float[]> m = new LinkedHashMap<>(), v = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : state.entrySet()) {
            Tensor[] mv = e.getValue();
            m.put(e.getKey(), mv[0].backend().download(mv[0]));
            v.put(e.getKey(), mv[1].backend().download(mv[1]));
        }
        return new State(step, m, v);
    }

    /**
     * Replaces the state with a saved one; moments are uploaded to the backend of the same-named parameter of
     * {@code model} and must match its size.
     *
     * @param saved the state from {@link #state()}
     * @param model the model being optimised
     */
    public void loadState(State saved, Parameterized model) {
        Map<String, Tensor> params = model.parameters();
        for (String name : saved.m().keySet()) {
            Tensor p = params.get(name);
            if (p == null) {
                throw new IllegalArgumentException("saved optimizer state has moments for '" + name
                        + "', which the model does not have");
            }
            if (saved.m().get(name).length != p.numel() || saved.v().get(name).length != p.numel()) {
                throw new IllegalArgumentException("saved optimizer moments of '" + name + "' have "
                        + saved.m().get(name).length + " values, the parameter " + p.numel());
            }
        }
        close();
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            float[] m = saved.m().get(e.getKey());
            if (m != null) {
                Backend be = e.getValue().backend();
                long[] shape = e.getValue().shape();
                state.put(e.getKey(), new Tensor[]{be.upload(m, shape), be.upload(saved.v().get(e.getKey()), shape)});
            }
        }
        step = saved.step();
    }

    /**
     * One update of every parameter of the model from its current gradients.
     *
     * @param model the parameters and their gradients
     */
    public void step(Parameterized model) {
        step(model.parameters(), model.grads());
    }

    /**
     * One update of every parameter from its same-named gradient.
     *
     * @param params parameters by name, updated in place
     * @param grads  gradients, the same names
     */
    public void step(Map<String, Tensor> params, Map<String, Tensor> grads) {
        step++;
        double bc1 = 1.0 - Math.pow(config.beta1(), step);
        double bc2 = 1.0 - Math.pow(config.beta2(), step);
        AdamWParams withDecay = new AdamWParams(config.lr(), config.beta1(), config.beta2(), config.eps(),
                config.weightDecay(), bc1, bc2);
        AdamWParams noDecay = new AdamWParams(config.lr(), config.beta1(), config.beta2(), config.eps(), 0f, bc1, bc2);
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            String name = e.getKey();
            Tensor p = e.getValue();
            Tensor g = grads.get(name);
            if (g == null) {
                throw new IllegalArgumentException("no gradient for parameter '" + name + "'");
            }
            Backend be = p.backend();
            Tensor[] mv = state.computeIfAbsent(name, k -> new Tensor[]{be.zeros(p.shape()), be.zeros(p.shape())});
            be.adamW(p, g, mv[0], mv[1], decay.test(name) ? withDecay : noDecay);
        }
    }

    @Override
    public void close() {
        for (Tensor[] mv : state.values()) {
            mv[0].close();
            mv[1].close();
        }
        state.clear();
    }
}
