package dev.rlsr.engine.generate;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.model.DecodeState;
import dev.rlsr.engine.model.KvCache;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.SamplingState;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.engine.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Batched sampling with the KV cache: P prompts are left-padded and prefilled once (P rows), the cache rows are then
 * replicated G times ({@link KvCache#replicateFrom}) and all P*G rows decode together, one token per row per step,
 * until every row has stopped or maxNewTokens is reached. Finished rows are fed the pad id (their outputs are
 * ignored) so the batch shape never changes and the model's buffers are reused.
 *
 * <p>Reproducible: row r's token at step t is drawn with the Philox4x32-10 numbers of (seed, r, t) by
 * {@link Sampler} ({@link dev.rlsr.kernels.SamplingReference}, the CPU twin of the device's sampling kernel), so the
 * tokens are a function of (seed, model, prompts, G, config) only, a row's tokens do not depend on when the other rows
 * stop, and the device draws the same tokens from the same logits. Device-independent: only {@link DecoderModel} and
 * {@link dev.rlsr.engine.tensor.Backend} calls; the 8-byte read of the sampling counters per step (rows still
 * sampling, rows with non-finite logits) is the only host-device synchronisation point of the loop, and the token
 * and log-prob histories are read once at the end.
 */
public final class RolloutEngine implements AutoCloseable {
    private final DecoderModel model;
    private final int[] stopIds;
    private final int padId;
    private final Function<int[], String> decoder;
    /** Whether decode steps are recorded and replayed ({@link Backend#capture}); false runs every step eagerly. */
    private boolean recordSteps = !Boolean.getBoolean("rlsr.decode.eager");

    /**
     * An engine over a model with explicit stop and pad ids.
     *
     * @param model        the policy
     * @param stopTokenIds ids that end a completion (EOS / {@code <|im_end|>}); may be empty
     * @param padTokenId   id written after a completion ends and into prompt padding
     * @param decoder      ids to text (for stop strings and {@link Rollouts#texts()}), or null
     */
    public RolloutEngine(DecoderModel model, int[] stopTokenIds, int padTokenId, Function<int[], String> decoder) {
        this.model = model;
        this.stopIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
        if (padTokenId < 0 || padTokenId >= model.config().vocabSize()) {
            throw new IllegalArgumentException("pad token id " + padTokenId + " is outside the model's vocabulary [0, "
                    + model.config().vocabSize() + ")");
        }
        this.padId = padTokenId;
        this.decoder = decoder;
    }

    /**
     * An engine with the stop ids, pad id (pad, else eos, else 0) and decoder of a tokenizer.
     *
     * @param model     the policy
     * @param tokenizer the model's tokenizer
     * @return the engine
     */
    public static RolloutEngine of(DecoderModel model, Tokenizer tokenizer) {
        var sp = tokenizer.specialTokens();
        int pad = sp.hasPad() ? sp.padId() : sp.hasEos() ? sp.eosId() : 0;
        // a model's embedding is often padded past the tokenizer's vocabulary (Qwen: 151936 rows for 151669 tokens);
        // a sampled id in that padding has no text, so it decodes to nothing instead of failing the run
        int known = tokenizer.vocabSize();
        return new RolloutEngine(model, sp.stopIds(), pad, ids -> tokenizer.decode(
                Arrays.stream(ids).filter(id -> id < known).toArray(), false));
    }

    /**
     * Chooses between recording the decode step once per geometry and replaying it (the default; a CUDA graph on a
     * GPU) and running every step eagerly (for debugging; {@code -Drlsr.decode.eager=true} sets it for a whole run).
     * Both give the same tokens.
     *
     * @param record true to record and replay
     * @return this engine
     */
    public RolloutEngine recordDecodeSteps(boolean record) {
        if (record != recordSteps) {
            close();
            recordSteps = record;
        }
        return this;
    }

    /** {@return the id written into prompt padding and after a completion ended} */
    public int padId() {
        return padId;
    }

    /**
     * Samples {@code groupSize} completions for each prompt.
     *
     * <p>Everything happens on the model's backend: the prompts are prefilled once (P rows) and their KV replicated G
     * times; the first token of every row is sampled from its prompt's logits ({@code group = G}); then each step
     * runs {@link DecoderModel#decodeStep} and the backend's sampler ({@link Backend#sample}) on device-resident state.
     * The step is recorded once per batch geometry ({@link Backend#capture}: a CUDA graph on a GPU) and replayed; a
     * geometry's buffers and graph are kept for the next call (a GRPO run samples the same geometry every step, from
     * the policy's own compute weights). Per step the host reads 8 bytes (the number of unfinished rows, and of rows
     * with non-finite logits); the tokens and their log-probs are read once at the end.
     *
     * @param prompts   prompt ids (unpadded, each non-empty)
     * @param groupSize G, completions per prompt
     * @param cfg       sampling settings (its seed fixes the tokens)
     * @return the P*G completions
     */
    public Rollouts generate(List<int[]> prompts, int groupSize, SamplingConfig cfg) {
        int P = prompts.size();
        if (P == 0) {
            throw new IllegalArgumentException("no prompts to sample from");
        }
        if (groupSize < 1) {
            throw new IllegalArgumentException("group size must be >= 1, got " + groupSize);
        }
        if (!cfg.stopStrings().isEmpty() && decoder == null) {
            throw new IllegalArgumentException("stop strings need a decoder (build the engine with a tokenizer)");
        }
        int G = groupSize, R = P * G, Lmax = cfg.maxNewTokens();
        int Tp = 0;
        for (int[] p : prompts) {
            if (p.length == 0) {
                throw new IllegalArgumentException("every prompt needs at least one token");
            }
            Tp = Math.max(Tp, p.length);
        }
        int[] promptIds = new int[P * Tp], promptMask = new int[P * Tp];
        Arrays.fill(promptIds, padId);
        for (int p = 0; p < P; p++) {
            int[] ids = prompts.get(p);
            int off = p * Tp + Tp - ids.length;
            System.arraycopy(ids, 0, promptIds, off, ids.length);
            Arrays.fill(promptMask, off, off + ids.length, 1);
        }
        int[] nextPos = new int[R];
        for (int r = 0; r < R; r++) {
            nextPos[r] = prompts.get(r / G).length;
        }
        Backend be = model.backend();
        long t0 = System.nanoTime(), tPrefill;
        Session s = session(R, Tp + Lmax, Lmax);
        s.cache.reset();
        s.sampling.configure(cfg.temperature(), cfg.topK(), cfg.topP());
        Tensor logits;
        if (G == 1) {
            logits = model.prefill(s.cache, promptIds, promptMask, null);
        } else {
            try (KvCache shared = model.newKvCache(P, Tp)) {
                logits = model.prefill(shared, promptIds, promptMask, null);
                s.cache.replicateFrom(shared, G);
            }
        }
        // step 0 from the prompts' logits: the G rows of a prompt share its logits row
        be.samplingReset(s.sampling, cfg.seed());
        be.sample(logits, G, s.sampling, s.state.ids());
        s.state.set(null, nextPos, Tp);
        tPrefill = System.nanoTime();
        int steps = 1;
        while (steps < Lmax) {
            // host-device sync: 8 bytes, the rows still sampling and the rows that met non-finite logits
            int[] c = be.downloadInts(s.sampling.counters().view(SamplingState.UNFINISHED, 2));
            if (c[1] > 0) {
                throw new NonFiniteLogitsException(c[1] + " of " + R + " rows had NaN or infinite logits at step "
                        + steps + ": the model's weights or activations are not finite");
            }
            if (c[0] == 0) {
                break;
            }
            s.step();
            steps++;
        }
        // the step's own counters are read once more only for the non-finite check of the last step
        int[] c = be.downloadInts(s.sampling.counters().view(SamplingState.UNFINISHED, 2));
        if (c[1] > 0) {
            throw new NonFiniteLogitsException(c[1] + " of " + R + " rows had NaN or infinite logits: the model's"
                    + " weights or activations are not finite");
        }
        int[] history = be.downloadInts(s.sampling.tokenHistory());
        float[] logps = be.download(s.sampling.logprobHistory());
        long t1 = System.nanoTime();

        // lengths and finish reasons from the histories (host): a stop token ends a row; stop strings are cut here
        int[] out = new int[R * Lmax];
        Arrays.fill(out, padId);
        float[] outLogp = new float[R * Lmax];
        int[] lengths = new int[R];
        Rollouts.FinishReason[] finish = new Rollouts.FinishReason[R];
        StopStrings stops = new StopStrings(cfg.stopStrings());
        double entropySum = 0;
        long sampled = 0;
        for (int r = 0; r < R; r++) {
            int n = 0;
            Rollouts.FinishReason f = Rollouts.FinishReason.LENGTH;
            for (int t = 0; t < steps; t++) {
                int id = history[r * Lmax + t];
                out[r * Lmax + t] = id;
                outLogp[r * Lmax + t] = logps[r * Lmax + t];
                n = t + 1;
                if (isStop(id)) {
                    f = Rollouts.FinishReason.STOP_TOKEN;
                    break;
                }
                if (stops.any() && stops.foundAtEnd(decoder, out, r * Lmax, t + 1)) {
                    f = Rollouts.FinishReason.STOP_STRING;
                    break;
                }
            }
            for (int t = n; t < Lmax; t++) {
                out[r * Lmax + t] = padId;
                outLogp[r * Lmax + t] = 0f;
            }
            lengths[r] = n;
            finish[r] = f;
            for (int t = 0; t < n; t++) {
                entropySum -= outLogp[r * Lmax + t];
            }
            sampled += n;
        }
        List<String> texts = null;
        if (decoder != null) {
            String[] decoded = new String[R];
            for (int r = 0; r < R; r++) {
                int n = lengths[r] - (finish[r] == Rollouts.FinishReason.STOP_TOKEN ? 1 : 0);
                String text = decoder.apply(Arrays.copyOfRange(out, r * Lmax, r * Lmax + n));
                decoded[r] = stops.cut(text);
            }
            texts = List.of(decoded);
        }
        return new Rollouts(P, G, Tp, promptIds, promptMask, Lmax, out, lengths, finish, texts, outLogp, entropySum,
                sampled, tPrefill - t0, t1 - tPrefill);
    }

    /**
     * The device buffers of one batch geometry (rows, cache capacity, max new tokens) and its recorded decode step,
     * kept across calls so a run that samples the same geometry every step records the step once.
     */
    private final class Session implements AutoCloseable {
        final KvCache cache;
        final DecodeState state;
        final SamplingState sampling;
        private Backend.StepGraph graph;

        Session(int rows, int capacity, int maxSteps) {
            cache = model.newKvCache(rows, capacity);
            state = new DecodeState(model.backend(), rows);
            sampling = new SamplingState(model.backend(), rows, maxSteps, 1, 0, 1, stopIds, padId);
        }

        /** One decode step: the model on device state, then sampling into the next step's input ids. */
        private void run() {
            Tensor logits = model.decodeStep(cache, state);
            model.backend().sample(logits, 1, sampling, state.ids());
        }

        void step() {
            if (graph == null) {
                // the first step of this geometry runs while it is recorded; later ones replay the record
                graph = recordSteps ? model.backend().capture(this::run) : null;
                if (graph == null) {
                    run();
                }
            } else {
                graph.replay();
            }
            cache.advance(1);
        }

        @Override
        public void close() {
            if (graph != null) {
                graph.close();
            }
            sampling.close();
            state.close();
            cache.close();
        }
    }

    private final java.util.Map<Long, Session> sessions = new java.util.LinkedHashMap<>(4, 0.75f, true);

    private Session session(int rows, int capacity, int maxSteps) {
        long key = ((long) rows << 40) | ((long) capacity << 16) | maxSteps;
        Session s = sessions.get(key);
        if (s == null) {
            if (sessions.size() >= 2) {
                // another geometry (a different prompt length): drop the least recently used session
                var eldest = sessions.entrySet().iterator().next();
                eldest.getValue().close();
                sessions.remove(eldest.getKey());
            }
            s = new Session(rows, capacity, maxSteps);
            sessions.put(key, s);
        }
        return s;
    }

    /** Frees the device buffers and recorded steps kept for later calls. */
    @Override
    public void close() {
        sessions.values().forEach(Session::close);
        sessions.clear();
    }

    private boolean isStop(int id) {
        for (int s : stopIds) {
            if (s == id) {
                return true;
            }
        }
        return false;
    }

    /** Stop-string matching on the tail of a completion, so each check decodes O(longest stop string) tokens. */
    private static final class StopStrings {
        private final List<String> strings;
        private final int window;

        StopStrings(List<String> strings) {
            this.strings = strings;
            int longest = 0;
            for (String s : strings) {
                longest = Math.max(longest, s.length());
            }
            // a token decodes to >= 1 byte and a char to <= 4 bytes (2 UTF-16 units), so a stop string ending in the
            // newest token lies within its last 4*len + 1 tokens; one more for a char split across tokens
            this.window = 4 * longest + 2;
        }

        boolean any() {
            return !strings.isEmpty();
        }

        boolean foundAtEnd(Function<int[], String> decoder, int[] ids, int offset, int length) {
            int from = Math.max(0, length - window);
            String tail = decoder.apply(Arrays.copyOfRange(ids, offset + from, offset + length));
            for (String s : strings) {
                if (tail.contains(s)) {
                    return true;
                }
            }
            return false;
        }

        /** The text before the first stop string, if any. */
        String cut(String text) {
            int cut = text.length();
            for (String s : strings) {
                int i = text.indexOf(s);
                if (i >= 0) {
                    cut = Math.min(cut, i);
                }
            }
            return text.substring(0, cut);
        }
    }
}
