package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.util.List;

/**
 * An {@link Encoder} whose model runs on an engine {@link Backend} and can hand its embeddings over where they were
 * computed, so that a reward on a GPU keeps them in device memory ({@link #embedOnDevice}) instead of copying every
 * row to the host and back. {@link #embed} is the same computation followed by one copy to the host.
 *
 * <p>Implementations: {@link BertEncoder} (SentenceBERT family) and {@link QwenEmbeddingEncoder} (Qwen-EM).
 */
public interface DeviceEncoder extends Encoder {

    /**
     * The backend the model runs on; the tensors of {@link #embedOnDevice} belong to it.
     *
     * @return the backend
     */
    Backend backend();

    /**
     * The dtype of the embeddings {@link #embedOnDevice} returns: the model's precision (F32, or BF16).
     *
     * @return F32 or BF16
     */
    DType dtype();

    /**
     * {@code texts (N)} to {@code embeddings (N,D)} on {@link #backend()}, rows in input order, each of unit L2 norm
     * (up to the rounding of {@link #dtype()}): the rows {@link #embed} would return, left where they were computed.
     * Asynchronous on a device backend; nothing is copied to the host. The caller owns (closes) the tensor.
     *
     * @param texts the texts, at least one
     * @return a new {@code (N,D)} tensor of {@link #dtype()}
     * @throws IllegalArgumentException for an empty list (there is no empty tensor to return)
     * @throws IllegalStateException    after {@link #close()}
     */
    Tensor embedOnDevice(List<String> texts);
}
