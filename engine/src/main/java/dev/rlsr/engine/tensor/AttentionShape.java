package dev.rlsr.engine.tensor;

/**
 * Geometry of one causal multi-head attention call with grouped-query heads.
 *
 * <p>Layouts (row-major): queries and output {@code (batch, qLen, heads*headDim)}; keys and values
 * {@code (batch, kStride, kvHeads*headDim)} of which rows {@code [0, kLen)} are valid; log-sum-exp
 * {@code (batch, heads, qLen)}; key mask {@code (batch, kStride)} (1 = attend, 0 = padding) or null.
 * Query {@code i} sits at key index {@code qOffset + i} and sees keys {@code j <= qOffset + i} (causal). In
 * training {@code qLen = kLen = kStride} and {@code qOffset = 0}; when decoding from a KV cache the keys are the
 * cache, {@code kStride} its capacity and {@code qOffset} the number of cached positions. Query head {@code h}
 * reads key/value head {@code h / (heads / kvHeads)}, as HF {@code repeat_kv}.
 *
 * @param batch   B, sequences
 * @param qLen    query positions per sequence
 * @param kLen    valid key positions per sequence
 * @param kStride key rows per sequence in the key/value buffers (&gt;= kLen)
 * @param qOffset key index of the first query
 * @param heads   query heads
 * @param kvHeads key/value heads (divides heads)
 * @param headDim D, the size of one head
 * @param scale   factor of the scores, usually {@code 1/sqrt(headDim)}
 */
public record AttentionShape(int batch, int qLen, int kLen, int kStride, int qOffset, int heads, int kvHeads,
                             int headDim, float scale) {

    /** Checks that the sizes are positive and consistent, naming the one that is not. */
    public AttentionShape {
        if (batch < 1 || qLen < 1 || kLen < 1 || heads < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("attention sizes must be positive: batch=" + batch + " qLen=" + qLen
                    + " kLen=" + kLen + " heads=" + heads + " kvHeads=" + kvHeads + " headDim=" + headDim);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("query heads (" + heads + ") must be a multiple of key/value heads ("
                    + kvHeads + ")");
        }
        if (kLen > kStride) {
            throw new IllegalArgumentException("kLen " + kLen + " exceeds the key buffer's " + kStride + " rows");
        }
        if (qOffset < 0 || qOffset + qLen > kLen) {
            throw new IllegalArgumentException("queries at key positions [" + qOffset + ", " + (qOffset + qLen)
                    + ") do not fit the " + kLen + " valid keys");
        }
    }

    /**
     * Training / full-sequence self-attention: queries and keys are the same T positions, scale {@code 1/sqrt(D)}.
     *
     * @param batch   B
     * @param seqLen  T
     * @param heads   query heads
     * @param kvHeads key/value heads
     * @param headDim D
     * @return the shape
     */
    public static AttentionShape selfAttention(int batch, int seqLen, int heads, int kvHeads, int headDim) {
        return new AttentionShape(batch, seqLen, seqLen, seqLen, 0, heads, kvHeads, headDim,
                (float) (1.0 / Math.sqrt(headDim)));
    }
}
