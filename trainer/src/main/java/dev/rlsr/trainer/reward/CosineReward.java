package dev.rlsr.trainer.reward;

import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;
import dev.rlsr.trainer.encoder.DeviceEncoder;
import dev.rlsr.trainer.encoder.Encoder;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
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
 * <p>Per call of {@link #score}: exactly one encoder call (none if there is nothing to embed), holding every
 * distinct response text of the batch (a text sampled several times is embedded once) followed by the reference
 * texts {@code x ⊕ y*} of the example ids not yet cached, each id once. Reference embeddings are kept in a bounded
 * LRU cache keyed by example id,
 * so the G rollouts of a prompt and later epochs reuse them. The cache also keeps the reference text: an id
 * that comes back with a different prompt or reference is a data error and is reported, never silently mixed up.
 *
 * <p>Empty responses: a response that is empty or whitespace only scores {@link Options#blankResponseScore()}
 * (default 0, "no similarity") without being embedded, because {@code E(x ⊕ "")} is the embedding of the prompt
 * alone, which is usually close to {@code E(x ⊕ y*)} and would pay the policy for saying nothing. Set
 * {@code embedBlankResponses} to score them like any other text instead.
 *
 * <p><b>Two paths, one result.</b> On the host path ({@link Encoder#embed}: ONNX Runtime, or an engine encoder on
 * the CPU) the embeddings come to the host, the reference cache holds {@code float[]} rows and the cosines of one batch
 * are one call of the kernels module's CPU reference ({@code CosineSimilarityReference.pairs}, the contract of the GPU
 * cosine kernel). On the device path (a {@link DeviceEncoder} on a device backend, e.g. the engine BERT on
 * {@code CudaBackend}: {@link #onDevice()}) the embeddings of the batch stay in device memory
 * ({@link DeviceEncoder#embedOnDevice}), the cached references are rows of one device buffer, and the cosines are one
 * launch of the cosine kernel ({@link Backend#cosineSimilarity}: each of the P references against its G responses
 * when the batch is P groups of G rows, as GRPO's is; row against row otherwise); only the rewards are copied to the
 * host. Either way the result is clamped to [-1, 1].
 *
 * <p>Non-finite embeddings raise {@link IllegalStateException} naming the example id (and batch row); on the device
 * path they are found through the cosine they produce, and a failed call leaves no new reference in the cache.
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
    private final DevicePath device;          // null: the host path
    private long encoderCalls;
    private long cacheHits;
    private long referencesEmbedded;
    private boolean closed;

    /** A reward that uses {@code encoder} but does not close it. */
    public CosineReward(Encoder encoder, Options options) {
        this(encoder, options, false, onDevice(encoder));
    }

    private CosineReward(Encoder encoder, Options options, boolean ownsEncoder, boolean onDevice) {
        this.encoder = Objects.requireNonNull(encoder, "encoder");
        this.options = Objects.requireNonNull(options, "options");
        this.ownsEncoder = ownsEncoder;
        this.device = onDevice ? new DevicePath((DeviceEncoder) encoder) : null;
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
        return new CosineReward(encoder, options, true, onDevice(encoder));
    }

    /** The device path for a {@link DeviceEncoder} on any backend but the CPU, where the host path is the one. */
    private static boolean onDevice(Encoder encoder) {
        return encoder instanceof DeviceEncoder de && !(de.backend() instanceof CpuBackend);
    }

    /**
     * The device path whatever the encoder's backend, the CPU's included: for tests of that path without a device.
     *
     * @param encoder the encoder (not closed by the reward)
     * @param options the options
     * @return a reward that keeps embeddings and cached references on {@code encoder.backend()}
     */
    static CosineReward onBackend(DeviceEncoder encoder, Options options) {
        return new CosineReward(encoder, options, false, true);
    }

    /**
     * Whether this reward keeps embeddings and cached references on the encoder's device (a {@link DeviceEncoder}
     * on a device backend) rather than on the host.
     *
     * @return true on the device path
     */
    public boolean onDevice() {
        return device != null;
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
        // on the host a text sampled several times (the G samples of a prompt often agree) is embedded once; the
        // device path keeps one row per response (its cosine launch pairs rows with references in batch order)
        Map<String, Integer> responseRow = device == null ? new HashMap<>() : null;
        for (int i = 0; i < n; i++) {
            RewardInput in = batch.get(i);
            if (!options.embedBlankResponses() && PyStrings.isBlank(in.response())) {
                queryRow[i] = -1;
                rewards[i] = options.blankResponseScore();
                continue;
            }
            String text = responseText(in);
            Integer row = responseRow == null ? null : responseRow.get(text);
            if (row == null) {
                row = texts.size();
                if (responseRow != null) {
                    responseRow.put(text, row);
                }
                texts.add(text);
            }
            queryRow[i] = row;
        }
        // the example ids of the embedded responses, each once in order of first appearance, with its reference text
        // (one per id in a batch) and the first batch row that names it
        Map<String, String> referenceTexts = new LinkedHashMap<>();
        Map<String, Integer> firstRow = new HashMap<>();
        for (int i = 0; i < n; i++) {
            if (queryRow[i] < 0) {
                continue;
            }
            RewardInput in = batch.get(i);
            String id = in.exampleId();
            String refText = referenceText(in);
            String seen = referenceTexts.putIfAbsent(id, refText);
            if (seen == null) {
                firstRow.put(id, i);
            } else if (!seen.equals(refText)) {
                throw new IllegalArgumentException("example id '" + id + "' appears in one batch with two different "
                        + (options.responsesOnly() ? "references" : "prompts or references")
                        + " (batch row " + i + "); example ids must name one (prompt, reference) pair");
            }
        }
        if (texts.isEmpty()) {
            return rewards;
        }
        if (device != null) {
            device.score(batch, queryRow, texts, referenceTexts, firstRow, rewards);
        } else {
            scoreOnHost(batch, queryRow, texts, referenceTexts, firstRow, rewards);
        }
        return rewards;
    }

    /** The reference texts of a cached id must not change: an id names one (prompt, reference) pair. */
    private void checkCachedText(String id, String cachedText, String refText, int row) {
        if (!cachedText.equals(refText)) {
            throw new IllegalArgumentException("example id '" + id + "' was scored before with a different "
                    + (options.responsesOnly() ? "reference" : "prompt or reference")
                    + " (batch row " + row + "); example ids must name one (prompt, reference) pair");
        }
    }

    private IllegalStateException nonFinite(String side, String id, int row) {
        return new IllegalStateException("encoder " + encoder.name() + " produced a non-finite embedding for the "
                + side + " of example id '" + id + "'" + (row < 0 ? "" : " (batch row " + row + ")"));
    }

    /** The CPU path: embeddings on the host, the cosines by the kernels module's reference. */
    private void scoreOnHost(List<RewardInput> batch, int[] queryRow, List<String> texts,
                             Map<String, String> referenceTexts, Map<String, Integer> firstRow, double[] rewards) {
        int n = batch.size();
        Map<String, float[]> references = new HashMap<>();
        Map<String, Integer> pending = new LinkedHashMap<>(); // example id -> row in the embed call
        for (Map.Entry<String, String> e : referenceTexts.entrySet()) {
            String id = e.getKey();
            CachedReference cached = cache.get(id);
            if (cached != null) {
                checkCachedText(id, cached.text(), e.getValue(), firstRow.get(id));
                cacheHits++;
                references.put(id, cached.embedding());
            } else {
                pending.put(id, texts.size());
                texts.add(e.getValue());
            }
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
                throw nonFinite("reference", e.getKey(), -1);
            }
            references.put(e.getKey(), v);
            referencesEmbedded++;
            if (options.cacheCapacity() > 0) {
                cache.put(e.getKey(), new CachedReference(referenceTexts.get(e.getKey()), v));
            }
        }
        int m = (int) java.util.Arrays.stream(queryRow).filter(r -> r >= 0).count(); // rows whose response was embedded
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
                throw nonFinite("response", id, i);
            }
            responseRows[k] = v;
            referenceRows[k] = references.get(id);
            target[k++] = i;
        }
        double[] cos = Cosine.pairs(responseRows, referenceRows, d);
        for (int j = 0; j < m; j++) {
            rewards[target[j]] = cos[j];
        }
    }

    /**
     * The device path: a {@link DeviceEncoder}'s embeddings stay on its backend, reference embeddings are cached
     * there ({@link ReferenceRows}, one row per example id), and one cosine launch
     * ({@link Backend#cosineSimilarity}) scores every embedded response; only the M rewards are copied back.
     */
    private final class DevicePath implements AutoCloseable {
        private record Entry(String text, int slot) {}

        private final DeviceEncoder enc;
        private final Backend be;
        private final ReferenceRows slots;
        /** example id -> cached reference, access order (eldest = least recently used); trimmed by hand. */
        private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);

        DevicePath(DeviceEncoder enc) {
            this.enc = enc;
            this.be = enc.backend();
            this.slots = new ReferenceRows(be, enc.dtype(), enc.dimension());
        }

        int size() {
            return entries.size();
        }

        void score(List<RewardInput> batch, int[] queryRow, List<String> texts, Map<String, String> referenceTexts,
                   Map<String, Integer> firstRow, double[] rewards) {
            int m = texts.size();                                     // responses embedded, rows 0..M-1
            int d = enc.dimension();
            Map<String, Integer> pending = new LinkedHashMap<>();     // example id -> row in the embed call
            Map<String, Integer> slotOf = new HashMap<>();            // example id -> its reference's slot
            for (Map.Entry<String, String> e : referenceTexts.entrySet()) {
                Entry cached = entries.get(e.getKey());               // a use: moves the id to the LRU's young end
                if (cached != null) {
                    checkCachedText(e.getKey(), cached.text(), e.getValue(), firstRow.get(e.getKey()));
                    cacheHits++;
                    slotOf.put(e.getKey(), cached.slot());
                } else {
                    pending.put(e.getKey(), texts.size());
                    texts.add(e.getValue());
                }
            }
            // room for this batch's references: least recently used entries of other ids go first. A batch with more
            // ids than the capacity keeps all of them until it is scored, then the cache is cut back.
            int keep = Math.max(options.cacheCapacity(), referenceTexts.size());
            for (var it = entries.entrySet().iterator(); entries.size() + pending.size() > keep && it.hasNext(); ) {
                Map.Entry<String, Entry> e = it.next();
                if (!referenceTexts.containsKey(e.getKey())) {
                    slots.release(e.getValue().slot());
                    it.remove();
                }
            }
            List<String> added = new ArrayList<>(pending.size());
            boolean ok = false;
            try (Tensor emb = enc.embedOnDevice(texts)) {   // (M + new references, D) on the device
                encoderCalls++;
                if (emb.numel() != (long) texts.size() * d || emb.dtype() != enc.dtype()) {
                    throw new IllegalStateException("encoder " + encoder.name() + " returned " + emb + " for "
                            + texts.size() + " texts, expected (" + texts.size() + ", " + d + ") " + enc.dtype());
                }
                cacheNew(emb, texts.size(), pending, referenceTexts, added, slotOf);
                float[] cos = cosines(batch, queryRow, emb, m, d, slotOf);
                int j = 0;
                for (int i = 0; i < batch.size(); i++) {
                    if (queryRow[i] >= 0) {
                        float c = cos[j++];
                        if (!Float.isFinite(c)) {
                            throw explainNonFinite(batch, i, emb.view((long) queryRow[i] * d, d));
                        }
                        rewards[i] = Math.max(-1.0, Math.min(1.0, c));
                    }
                }
                ok = true;
            } finally {
                if (!ok) {
                    // a failed call caches nothing: every cached reference has given finite cosines
                    for (String id : added) {
                        slots.release(entries.remove(id).slot());
                    }
                }
                // back to the capacity (0 = no cache across calls), least recently used first
                for (var it = entries.entrySet().iterator(); entries.size() > options.cacheCapacity()
                        && it.hasNext(); ) {
                    slots.release(it.next().getValue().slot());
                    it.remove();
                }
            }
        }

        /** Copies the new references' rows of {@code emb (K,D)} into their slots, consecutive rows in one copy. */
        private void cacheNew(Tensor emb, int k, Map<String, Integer> pending, Map<String, String> referenceTexts,
                              List<String> added, Map<String, Integer> slotOf) {
            int d = enc.dimension();
            int[] row = new int[pending.size()];
            int[] slot = new int[pending.size()];
            int c = 0;
            for (Map.Entry<String, Integer> e : pending.entrySet()) {
                row[c] = e.getValue();
                slot[c] = slots.take();
                entries.put(e.getKey(), new Entry(referenceTexts.get(e.getKey()), slot[c]));
                slotOf.put(e.getKey(), slot[c]);
                added.add(e.getKey());
                c++;
            }
            referencesEmbedded += c;
            for (int a = 0; a < c; ) {
                int b = a + 1;
                while (b < c && row[b] == row[b - 1] + 1 && slot[b] == slot[b - 1] + 1) {
                    b++;
                }
                be.copyRows(emb, k, row[a], slots.tensor(), slots.capacity(), slot[a], 1, b - a, d);
                a = b;
            }
        }

        /**
         * {@code cos (M)} of the M response rows of {@code emb} against their references: one gather of the
         * references from the slots and one cosine launch. When the rows come as P runs of G rows of one example id
         * each (a GRPO batch: every id one run), the P references are gathered once and compared with their G rows;
         * otherwise each row gets its own copy of its reference.
         */
        private float[] cosines(List<RewardInput> batch, int[] queryRow, Tensor emb, int m, int d,
                                Map<String, Integer> slotOf) {
            String[] rowId = new String[m];                 // example id of each embedded response, in row order
            for (int i = 0; i < batch.size(); i++) {
                if (queryRow[i] >= 0) {
                    rowId[queryRow[i]] = batch.get(i).exampleId();
                }
            }
            List<String> runs = new ArrayList<>();
            int g = 0;
            boolean grouped = true;
            for (int j = 0, len = 0; j <= m; j++, len++) {
                if (j == m || (j > 0 && !rowId[j].equals(rowId[j - 1]))) {
                    grouped &= g == 0 || len == g;
                    g = len;
                    len = 0;
                }
                if (j < m && len == 0) {
                    runs.add(rowId[j]);
                }
            }
            grouped &= runs.size() == new HashSet<>(runs).size();
            String[] refIds = grouped ? runs.toArray(String[]::new) : rowId;
            int[] refSlots = new int[refIds.length];        // I32 (P) or (M): the slot of each reference row
            for (int r = 0; r < refIds.length; r++) {
                refSlots[r] = slotOf.get(refIds[r]);
            }
            try (Tensor idx = be.upload(refSlots, refSlots.length);
                 Tensor refs = be.alloc(enc.dtype(), refSlots.length, d);
                 Tensor out = be.alloc(DType.F32, m)) {
                be.gatherRows(slots.tensor(), idx, refs);
                be.cosineSimilarity(refs, emb.view(0, m, d), out);
                return be.download(out);   // host sync point: the M rewards, the reward's only copy to the host
            }
        }

        /** Which side of row i is not finite: the response when it is, else its reference. */
        private IllegalStateException explainNonFinite(List<RewardInput> batch, int i, Tensor response) {
            String id = batch.get(i).exampleId();
            if (!Cosine.isFinite(be.download(response))) {
                return nonFinite("response", id, i);
            }
            return nonFinite("reference", id, -1);
        }

        @Override
        public void close() {
            entries.clear();
            slots.close();
        }
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

    /** Reference embeddings cached now (on the device for the device path). */
    public synchronized int cacheSize() {
        return device != null ? device.size() : cache.size();
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        cache.clear();
        try {
            if (device != null) {
                device.close();
            }
        } finally {
            if (ownsEncoder) {
                encoder.close();
            }
        }
    }
}
