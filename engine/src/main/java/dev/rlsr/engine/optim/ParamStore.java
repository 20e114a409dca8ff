package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The parameters of one model in flat buffers laid out by a {@link ParamLayout}, with a named view per parameter:
 * <ul>
 * <li>{@link #computeFlat()}: what the forward and backward read, in the precision's compute dtype;</li>
 * <li>{@link #masterFlat()}: the fp32 master copy AdamW updates (the same buffer as the compute copy in fp32; absent
 * for a frozen bf16 model);</li>
 * <li>{@link #gradFlat()}: fp32 gradients (absent for a frozen model).</li>
 * </ul>
 * A frozen model (the GRPO reference, an encoder, a model being evaluated) has no gradients and no master copy beyond
 * its compute weights. Closing frees every buffer (and with them every view).
 */
public final class ParamStore implements AutoCloseable {
    private final Backend backend;
    private final ParamLayout layout;
    private final Precision precision;
    private final boolean trainable;
    private final Tensor master;
    private final Tensor compute;
    private final Tensor grad;
    private final Map<String, Tensor> masterViews = new LinkedHashMap<>();
    private final Map<String, Tensor> computeViews = new LinkedHashMap<>();
    private final Map<String, Tensor> gradViews = new LinkedHashMap<>();
    private boolean closed;

    private ParamStore(Backend backend, ParamLayout layout, Precision precision, boolean trainable) {
        this.backend = backend;
        this.layout = layout;
        this.precision = precision;
        this.trainable = trainable;
        if (!backend.computes(precision.compute())) {
            throw new IllegalArgumentException("the " + backend.name() + " backend does not compute in "
                    + precision + "; use " + backend.defaultPrecision());
        }
        long n = layout.total();
        boolean separateMaster = trainable && precision.hasMasterCopy();
        // zeros: the padding between parameters must stay 0 in every buffer (AdamW and norms run over it)
        this.compute = backend.zeros(precision.compute(), n);
        this.master = separateMaster ? backend.zeros(DType.F32, n) : precision.hasMasterCopy() ? null : compute;
        this.grad = trainable ? backend.zeros(DType.F32, n) : null;
        for (Map.Entry<String, long[]> e : layout.shapes().entrySet()) {
            long off = layout.offset(e.getKey());
            computeViews.put(e.getKey(), compute.view(off, e.getValue()));
            if (master != null) {
                masterViews.put(e.getKey(), master == compute ? computeViews.get(e.getKey())
                        : master.view(off, e.getValue()));
            }
            if (grad != null) {
                gradViews.put(e.getKey(), grad.view(off, e.getValue()));
            }
        }
    }

    /**
     * Allocates the buffers (zeros).
     *
     * @param backend   where they live
     * @param layout    the layout
     * @param precision compute dtype
     * @param trainable whether gradients and a master copy are needed
     * @return the store
     */
    public static ParamStore allocate(Backend backend, ParamLayout layout, Precision precision, boolean trainable) {
        return new ParamStore(backend, layout, precision, trainable);
    }

    /** @return the backend of the buffers */
    public Backend backend() {
        return backend;
    }

    /** @return the layout */
    public ParamLayout layout() {
        return layout;
    }

    /** @return the precision */
    public Precision precision() {
        return precision;
    }

    /** @return whether the store has gradients (and a master copy) */
    public boolean trainable() {
        return trainable;
    }

    /** @return the compute weights, one flat buffer */
    public Tensor computeFlat() {
        checkOpen();
        return compute;
    }

    /** @return the fp32 master weights, one flat buffer (the compute buffer itself in fp32), or null when frozen bf16 */
    public Tensor masterFlat() {
        checkOpen();
        return master;
    }

    /** @return the fp32 gradients, one flat buffer, or null when frozen */
    public Tensor gradFlat() {
        checkOpen();
        return grad;
    }

    /** @return the highest-precision copy of the weights: the master copy, else the compute copy */
    public Tensor weightsFlat() {
        checkOpen();
        return master != null ? master : compute;
    }

    /** @return name -> compute view, in the model's order */
    public Map<String, Tensor> compute() {
        return Collections.unmodifiableMap(computeViews);
    }

    /** @return name -> highest-precision view (master, else compute), in the model's order */
    public Map<String, Tensor> weights() {
        return Collections.unmodifiableMap(master != null ? masterViews : computeViews);
    }

    /** @return name -> gradient view (empty when frozen) */
    public Map<String, Tensor> grads() {
        return Collections.unmodifiableMap(gradViews);
    }

    /**
     * @param name a parameter
     * @return its compute view
     */
    public Tensor compute(String name) {
        return view(computeViews, name);
    }

    /**
     * @param name a parameter
     * @return its gradient view, or null when frozen
     */
    public Tensor grad(String name) {
        return grad == null ? null : view(gradViews, name);
    }

    private Tensor view(Map<String, Tensor> views, String name) {
        Tensor t = views.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no parameter '" + name + "'");
        }
        return t;
    }

    /** Sets every gradient to zero (one fill over the flat buffer). */
    public void zeroGrad() {
        if (grad != null) {
            backend.fill(grad, 0f);
        }
    }

    /** Copies the master weights into the compute copy (after loading or writing the master weights directly). */
    public void syncCompute() {
        if (master != null && master != compute) {
            backend.copy(master, compute);
        }
    }

    /**
     * Copies every weight from another store of the same layout (any backend or precision): from its
     * highest-precision copy into this store's highest-precision copy, then the compute copy.
     *
     * @param other the source
     */
    public void copyFrom(ParamStore other) {
        if (other.layout.total() != layout.total() || !other.layout.shapes().keySet().equals(layout.shapes().keySet())) {
            throw new IllegalArgumentException("parameter layouts differ: cannot copy weights between these models");
        }
        Tensor src = other.weightsFlat(), dst = weightsFlat();
        if (src.backend() == backend) {
            backend.copy(src, dst);
        } else {
            backend.upload(src.backend().download(src), dst);
        }
        syncCompute();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the parameters were released (model closed)");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        compute.close();
        if (master != null && master != compute) {
            master.close();
        }
        if (grad != null) {
            grad.close();
        }
    }
}
