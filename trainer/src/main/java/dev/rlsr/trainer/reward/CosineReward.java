package dev.rlsr.trainer.reward;

import dev.rlsr.trainer.encoder.Encoder;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * {@code cosine}: the RLSR reward (arXiv 2510.14200) {@code r_i = cos(E(x ⊕ y_i), E(x ⊕ y*))}, range [-1, 1].
 *
 * <p>{@code x ⊕ y} is the prompt, then {@link Options#separator()} (default {@code "\n"}), then the response;
 * with {@link Options#responsesOnly()} the prompt is left out on both sides ({@code cos(E(y_i), E(y*))}).
 *
 * <p>Per call of {@link #score}: exactly one {@link Encoder#embed} call (none if there is nothing to embed),
 * holding every distinct response text of the batch (a text sampled several times is embedded once) followed by
 * the reference texts {@code x ⊕ y*} of the example ids not yet cached, each id once. Reference embeddings are kept in a bounded LRU cache keyed by example id,
 * so the G rollouts of a prompt and later epochs reuse them. The cache also keeps the reference text: an id
 * that comes back with a different prompt or reference is a data error and is reported, never silently mixed up.
 *
 * <p>Empty responses: a response that is empty or whitespace only scores {@link Options#blankResponseScore()}
 * (default 0, "no similarity") without being embedded, because {@code E(x ⊕ "")} is the embedding of the prompt
 * alone, which is usually close to {@code E(x ⊕ y*)} and would pay the policy for saying nothing. Set
 * {@code embedBlankResponses} to score them like any other text instead.
 *
 * <p>The cosines of one batch are computed in one call of the kernels module's CPU reference
 * ({@code dev.rlsr.kernels.CosineSimilarityReference.pairs}, the contract of the GPU cosine kernel), clamped to [-1, 1].
 *
 * <p>Non-finite embeddings raise {@link IllegalStateException} naming the example id (and batch row).
 * Not thread-safe for concurrent {@code score} calls on one instance ({@code score} is synchronized).
 */
public final class CosineReward implements Reward {
    public static final String NAME = "cosine";

    /** Default of {@link Options#cacheCapacity()}: ~25 MB of reference embeddings for MiniLM (see there). */
    public static final int DEFAULT_CACHE_CAPACITY = 8192;

    /**
     * Options of the cosine reward.
     *
     * @param separator           text between prompt and response (and prompt and reference); default "\n"
     * @param responsesOnly       embed y and y* without the prompt
     * @param cacheCapacity       reference embeddings kept (LRU, by example id); 0 disables the cache across calls.
     *                            An entry holds D floats and the reference text: ~4*D + 2*chars bytes (~3 KB for
     *                            MiniLM and a 600-character x ⊕ y*), so the default 8192 is ~25 MB
     * @param embedBlankResponses embed blank responses instead of giving them {@code blankResponseScore}
     * @param blankResponseScore  reward of a blank response when it is not embedded, in [-1, 1]
     */
    public record Options(String separator, boolean responsesOnly, int cacheCapacity,
                          boolean embedBlankResponses, double blankResponseScore) {
        public Options {
            Objects.requireNonNull(separator, "cosine reward separator is null (use \"\" for plain concatenation)");
            if (cacheCapacity < 0) {
                throw new IllegalArgumentException("cosine reward cacheCapacity must be >= 0, got " + cacheCapacity);
            }
            if (!(blankResponseScore >= -1.0 && blankResponseScore <= 1.0)) {
                throw new IllegalArgumentException("cosine reward blankResponseScore must be in [-1, 1], got "
                        + blankResponseScore);
            }
        }

        public static Options defaults() {
            return new Options("\n", false, DEFAULT_CACHE_CAPACITY, false, 0.0);
        }

        public Options withResponsesOnly(boolean value) {
            return new Options(separator, value, cacheCapacity, embedBlankResponses, blankResponseScore);
        }

        public Options withCacheCapacity(int value) {
            return new Options(separator, responsesOnly, value, embedBlankResponses, blankResponseScore);
        }

        public Options withSeparator(String value) {
            return new Options(value, responsesOnly, cacheCapacity, embedBlankResponses, blankResponseScore);
        }

        public Options withEmbedBlankResponses(boolean value) {
            return new Options(separator, responsesOnly, cacheCapacity, value, blankResponseScore);
        }
    }

    private record CachedReference(String text, float[] embedding) {
    }

    private final Encoder encoder;
    private final Options options;
    private final boolean ownsEncoder;
    private final LinkedHashMap<String, CachedReference> cache;
    private long encoderCalls;
    private long cacheHits;
    private long referencesEmbedded;
    private boolean closed;

    /** A reward that uses {@code encoder} but does not close it. */
    public CosineReward(Encoder encoder, Options options) {
        this(encoder, options, false);
    }

    private CosineReward(Encoder encoder, Options options, boolean ownsEncoder) {
        this.encoder = Objects.requireNonNull(encoder, "encoder");
        this.options = Objects.requireNonNull(options, "options");
        this.ownsEncoder = ownsEncoder;
        int capacity = options.cacheCapacity();
        this.cache = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, CachedReference> eldest) {
                return size() > capacity;
            }
        };
    }

    /** A reward that closes {@code encoder} when it is closed. */
    public static CosineReward owning(Encoder encoder, Options options) {
        return new CosineReward(encoder, options, true);
    }

    @Override
    public String name() {
        return NAME;
    }

    public Options options() {
        return options;
    }

    public Encoder encoder() {
        return encoder;
    }

    /** The text embedded for the response side, {@code x ⊕ y} (or y). */
    public String responseText(RewardInput in) {
        return options.responsesOnly() ? in.response() : in.prompt() + options.separator() + in.response();
    }

    /** The text embedded for the reference side, {@code x ⊕ y*} (or y*). */
    public String referenceText(RewardInput in) {
        return options.responsesOnly() ? in.reference() : in.prompt() + options.separator() + in.reference();
    }

    @Override
    public synchronized double[] score(List<RewardInput> batch) {
        Objects.requireNonNull(batch, "batch");
        if (closed) {
            throw new IllegalStateException("cosine reward is closed");
        }
        int n = batch.size();
        double[] rewards = new double[n];        // rewards (N)
        int[] queryRow = new int[n];             // row of E(x ⊕ y_i) in the embed call, -1 = not embedded
        List<String> texts = new ArrayList<>(n + 8);
        // a text sampled several times (the G samples of a prompt often agree) is embedded once
        Map<String, Integer> responseRow = new HashMap<>();
        int embedded = 0;
        for (int i = 0; i < n; i++) {
            RewardInput in = batch.get(i);
            if (!options.embedBlankResponses() && PyStrings.isBlank(in.response())) {
                queryRow[i] = -1;
                rewards[i] = options.blankResponseScore();
                continue;
            }
            String text = responseText(in);
            Integer row = responseRow.get(text);
            if (row == null) {
                row = texts.size();
                responseRow.put(text, row);
                texts.add(text);
            }
            queryRow[i] = row;
            embedded++;
        }
        Map<String, float[]> references = new HashMap<>();
        Map<String, String> referenceTexts = new HashMap<>();
        Map<String, Integer> pending = new LinkedHashMap<>(); // example id -> row in the embed call
        for (int i = 0; i < n; i++) {
            if (queryRow[i] < 0) {
                continue;
            }
            RewardInput in = batch.get(i);
            String id = in.exampleId();
            String refText = referenceText(in);
            String seen = referenceTexts.get(id);
            if (seen != null) {
                if (!seen.equals(refText)) {
                    throw new IllegalArgumentException("example id '" + id + "' appears in one batch with two different "
                            + (options.responsesOnly() ? "references" : "prompts or references")
                            + " (batch row " + i + "); example ids must name one (prompt, reference) pair");
                }
                continue;
            }
            referenceTexts.put(id, refText);
            CachedReference cached = cache.get(id);
            if (cached != null) {
                if (!cached.text().equals(refText)) {
                    throw new IllegalArgumentException("example id '" + id + "' was scored before with a different "
                            + (options.responsesOnly() ? "reference" : "prompt or reference")
                            + " (batch row " + i + "); example ids must name one (prompt, reference) pair");
                }
                cacheHits++;
                references.put(id, cached.embedding());
            } else {
                pending.put(id, texts.size());
                texts.add(refText);
            }
        }
        if (texts.isEmpty()) {
            return rewards;
        }
        float[][] embeddings = encoder.embed(texts); // embeddings (responses + new references, D)
        encoderCalls++;
        if (embeddings.length != texts.size()) {
            throw new IllegalStateException("encoder " + encoder.name() + " returned " + embeddings.length
                    + " embeddings for " + texts.size() + " texts");
        }
        int d = encoder.dimension();
        for (int row = 0; row < embeddings.length; row++) {
            if (embeddings[row] == null || embeddings[row].length != d) {
                throw new IllegalStateException("encoder " + encoder.name() + " returned an embedding of width "
                        + (embeddings[row] == null ? "null" : embeddings[row].length) + " (row " + row
                        + "), expected its dimension " + d);
            }
        }
        for (Map.Entry<String, Integer> e : pending.entrySet()) {
            float[] v = embeddings[e.getValue()];
            if (!Cosine.isFinite(v)) {
                throw new IllegalStateException("encoder " + encoder.name() + " produced a non-finite embedding for the"
                        + " reference of example id '" + e.getKey() + "'");
            }
            references.put(e.getKey(), v);
            referencesEmbedded++;
            if (options.cacheCapacity() > 0) {
                cache.put(e.getKey(), new CachedReference(referenceTexts.get(e.getKey()), v));
            }
        }
        int m = embedded;                         // batch rows whose response was embedded
        float[][] responseRows = new float[m][];  // (M,D)
        float[][] referenceRows = new float[m][]; // (M,D), the reference of each response's example
        int[] target = new int[m];
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (queryRow[i] < 0) {
                continue;
            }
            float[] v = embeddings[queryRow[i]];
            String id = batch.get(i).exampleId();
            if (!Cosine.isFinite(v)) {
                throw new IllegalStateException("encoder " + encoder.name() + " produced a non-finite embedding for the"
                        + " response of example id '" + id + "' (batch row " + i + ")");
            }
            responseRows[k] = v;
            referenceRows[k] = references.get(id);
            target[k++] = i;
        }
        double[] cos = Cosine.pairs(responseRows, referenceRows, d);
        for (int j = 0; j < m; j++) {
            rewards[target[j]] = cos[j];
        }
        return rewards;
    }

    /** Number of {@link Encoder#embed} calls made so far. */
    public synchronized long encoderCalls() {
        return encoderCalls;
    }

    /** Reference embeddings served from the cache so far (one per example id per batch). */
    public synchronized long cacheHits() {
        return cacheHits;
    }

    /** Reference texts sent to the encoder so far. */
    public synchronized long referencesEmbedded() {
        return referencesEmbedded;
    }

    public synchronized int cacheSize() {
        return cache.size();
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        cache.clear();
        if (ownsEncoder) {
            encoder.close();
        }
    }
}
