package dev.rlsr.engine.optim;

import dev.rlsr.engine.tensor.Tensor;

import java.util.Map;

/** Something with named trainable parameters and same-named gradient tensors (same shapes, same backend). */
public interface Parameterized {
    /** {@return the parameters in a stable order (HF {@code named_parameters()} order for models)} */
    Map<String, Tensor> parameters();

    /** {@return the gradients, keyed like {@link #parameters()}} */
    Map<String, Tensor> grads();
}
