package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.Tensor;

import java.util.Map;

/** Something whose trainable parameters live in a {@link ParamStore} (flat buffers with named views). */
public interface Parameterized {
    /** @return the parameter store */
    ParamStore store();

    /** @return name -> weights (the fp32 master copy when there is one), in a stable order (HF order for models) */
    default Map<String, Tensor> parameters() {
        return store().weights();
    }

    /** @return name -> gradient, keyed like {@link #parameters()} (empty for a frozen model) */
    default Map<String, Tensor> grads() {
        return store().grads();
    }
}
