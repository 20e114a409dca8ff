package dev.rlsr.engine.model;

import dev.rlsr.engine.conformance.Bf16StorageBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;

/**
 * HF parity in bf16 (bf16 compute weights and activations, fp32 master weights and accumulation) on the
 * {@link Bf16StorageBackend} test double, with the bf16 tolerance table: checks that the derived bf16 tolerances
 * hold, with headroom, for a model whose every stored activation is rounded to bf16. Not a device result.
 */
class Bf16StorageHfParityTest extends HfParity {
    Bf16StorageHfParityTest() {
        super("cpu-bf16-storage", Precision.BF16, ParityTolerances.BF16);
    }

    @Override
    protected Backend openBackend() {
        return new Bf16StorageBackend();
    }
}
