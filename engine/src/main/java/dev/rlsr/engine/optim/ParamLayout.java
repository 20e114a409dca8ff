package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Where each named parameter lives inside one flat buffer (llm.c's {@code malloc_and_point_parameters}): the
 * parameters that get weight decay come first, then the others, so AdamW is one launch over the whole buffer with a
 * single boundary ({@link #decayEnd()}); every offset is a multiple of {@link #ALIGN} elements (256 bytes in fp32), so
 * each view is aligned for vector loads and cuBLASLt. The same layout serves the master weights, the compute copy,
 * the gradients and both AdamW moments, and a later all-reduce is one call over one buffer. Names keep the model's
 * order (Hugging Face {@code named_parameters()}).
 */
public final class ParamLayout {
    /** Alignment of every parameter, in elements. */
    public static final int ALIGN = 64;

    private final LinkedHashMap<String, long[]> shapes;
    private final Map<String, Long> offsets;
    private final Map<String, Boolean> decays;
    private final long decayEnd;
    private final long total;

    private ParamLayout(LinkedHashMap<String, long[]> shapes, Predicate<String> decay) {
        this.shapes = new LinkedHashMap<>();
        shapes.forEach((k, v) -> this.shapes.put(k, v.clone()));
        this.offsets = new LinkedHashMap<>();
        this.decays = new LinkedHashMap<>();
        long at = 0, end = 0;
        for (boolean group : new boolean[]{true, false}) {
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                if (decay.test(e.getKey()) == group) {
                    offsets.put(e.getKey(), at);
                    decays.put(e.getKey(), group);
                    long n = Tensor.count(e.getValue());
                    if (group) {
                        end = at + n;
                    }
                    at = align(at + n);
                }
            }
        }
        // padding between parameters stays zero in every buffer, so decaying it (inside [0, decayEnd)) is harmless
        this.decayEnd = end;
        this.total = Math.max(at, ALIGN);
    }

    /**
     * A layout of the given parameters.
     *
     * @param shapes name -> shape, in the model's order
     * @param decay  which parameters get weight decay
     * @return the layout
     */
    public static ParamLayout of(LinkedHashMap<String, long[]> shapes, Predicate<String> decay) {
        return new ParamLayout(shapes, decay);
    }

    private static long align(long n) {
        return (n + ALIGN - 1) / ALIGN * ALIGN;
    }

    /** @return name -> shape in the model's order (unmodifiable) */
    public Map<String, long[]> shapes() {
        return Collections.unmodifiableMap(shapes);
    }

    /**
     * @param name a parameter name
     * @return its first element in the flat buffer
     */
    public long offset(String name) {
        Long o = offsets.get(name);
        if (o == null) {
            throw new IllegalArgumentException("no parameter '" + name + "' in this layout");
        }
        return o;
    }

    /**
     * @param name a parameter name
     * @return its shape (a copy)
     */
    public long[] shape(String name) {
        long[] s = shapes.get(name);
        if (s == null) {
            throw new IllegalArgumentException("no parameter '" + name + "' in this layout");
        }
        return s.clone();
    }

    /**
     * @param name a parameter name
     * @return whether it gets weight decay
     */
    public boolean decays(String name) {
        return decays.getOrDefault(name, false);
    }

    /** @return elements before this index get weight decay (the end of the last decayed parameter) */
    public long decayEnd() {
        return decayEnd;
    }

    /** @return the flat buffer's element count (padding included) */
    public long total() {
        return total;
    }

    /** @return the number of parameters proper (padding excluded) */
    public long parameterCount() {
        long n = 0;
        for (long[] s : shapes.values()) {
            n += Tensor.count(s);
        }
        return n;
    }

    /**
     * Whether this layout splits decayed and undecayed parameters as {@code decay} would.
     *
     * @param decay a decay filter
     * @return true when every parameter's group matches
     */
    public boolean matches(Predicate<String> decay) {
        for (Map.Entry<String, Boolean> e : decays.entrySet()) {
            if (decay.test(e.getKey()) != e.getValue()) {
                return false;
            }
        }
        return true;
    }
}
