package dev.rlsr.trainer.encoder;

import java.util.List;

/**
 * A sentence encoder E used by the RLSR reward {@code cos(E(x ⊕ y), E(x ⊕ y*))}.
 *
 * <p>Contract every implementation keeps, so rewards never need to know which encoder they use:
 * <ul>
 *   <li>{@link #embed(List)} returns {@code embeddings (N,D)}: one row per input text, in input order,
 *       {@code D == dimension()}, each row L2-normalised (unit length up to float rounding). A row that
 *       comes out non-finite is returned as is (never silently replaced); callers decide how to report it.</li>
 *   <li>Batching and truncation happen inside: callers pass any number of texts in one call; the
 *       implementation splits them into batches of at most {@link #batchSize()} texts and truncates each
 *       text to {@link #maxTokens()} tokens (special tokens included) the way the reference
 *       implementation of that model does. The result does not depend on how texts are batched,
 *       up to float rounding.</li>
 *   <li>An empty string is a valid input and yields a finite embedding.</li>
 *   <li>{@link #close()} frees native resources and is idempotent; {@code embed} after close throws
 *       {@link IllegalStateException}.</li>
 * </ul>
 *
 * <p>This is a plain (non-sealed) interface on purpose: the engine-native BERT encoder and the Qwen
 * embedding model (decoder, last-token pooling) live in other packages and modules, and a sealed
 * interface in the unnamed module would force every implementation into this package.
 * Implementations: {@link MiniLmOnnxEncoder} (SentenceBERT all-MiniLM-L6-v2 on ONNX Runtime, CPU), {@link BertEncoder}
 * (the same family on the engine's own BERT, any backend) and {@link QwenEmbeddingEncoder} (Qwen-EM: last-token pooling);
 * the last two are {@link DeviceEncoder}s, which can also leave their embeddings on a GPU.
 */
public interface Encoder extends AutoCloseable {

    /** {@code texts (N)} to {@code embeddings (N,D)}, each row of unit L2 norm. */
    float[][] embed(List<String> texts);

    /** Human-readable model name, e.g. {@code all-MiniLM-L6-v2}; used in logs and reports. */
    String name();

    /** D, the embedding width. */
    int dimension();

    /** Longest input in tokens (special tokens included); longer inputs are truncated. */
    int maxTokens();

    /** Largest number of texts run through the model at once inside one {@link #embed} call. */
    int batchSize();

    /** Frees native resources; idempotent. */
    @Override
    void close();
}
