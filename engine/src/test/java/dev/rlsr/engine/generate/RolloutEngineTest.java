package dev.rlsr.engine.generate;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.model.Generator;
import dev.rlsr.engine.model.KvCache;
import dev.rlsr.engine.tensor.Backend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Batched sampling with a shared prefill on a small random model (untied llama with GQA). */
class RolloutEngineTest {
    private static final Backend BE = CpuBackend.INSTANCE;
    private static final int V = 61;
    private static DecoderModel model;
    /** Token i decodes to one letter, so texts and stop strings are easy to reason about. */
    private static final Function<int[], String> DECODE = ids -> {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append((char) ('a' + id % 26));
        }
        return sb.toString();
    };

    @BeforeAll
    static void init() {
        // larger init than HF's 0.02 so the next-token distributions are far from uniform
        model = DecoderModel.init(ModelConfig.of("llama", V, 32, 64, 2, 4, 2, 8, false), 3, BE);
        for (var t : model.parameters().values()) {
            if (t.rank() == 2) {
                BE.scale(t, 10f);
            }
        }
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static List<int[]> prompts() {
        return List.of(new int[]{5, 9, 2, 33, 17}, new int[]{40, 1}, new int[]{7, 7, 8});
    }

    private static RolloutEngine engine(int[] stops) {
        return new RolloutEngine(model, stops, 0, DECODE);
    }

    @Test
    void sameSeedSameTokensDifferentSeedDifferentTokens() {
        SamplingConfig c = new SamplingConfig(1.0, 0.95, 40, 12, List.of(), 1234);
        Rollouts a = engine(new int[0]).generate(prompts(), 4, c);
        Rollouts b = engine(new int[0]).generate(prompts(), 4, c);
        Rollouts d = engine(new int[0]).generate(prompts(), 4, c.withSeed(99));
        assertArrayEquals(a.completionIds(), b.completionIds(), "same seed");
        assertFalse(Arrays.equals(a.completionIds(), d.completionIds()), "another seed");
        // the G samples of a group differ (independent streams), with 12 tokens from ~60
        assertFalse(Arrays.equals(a.completion(0), a.completion(1)), "two samples of one group");
        assertEquals(12 * 12, a.sampledTokens());
        assertTrue(a.meanEntropy() > 0 && a.meanEntropy() < Math.log(V) + 1e-9, "entropy " + a.meanEntropy());
    }

    @Test
    void topKOneAndTinyTopPEqualGreedyDecoding() {
        List<int[]> ps = prompts();
        for (SamplingConfig c : List.of(new SamplingConfig(0.7, 1.0, 1, 10, List.of(), 5),
                new SamplingConfig(1.3, 1e-9, 0, 10, List.of(), 6))) {
            for (int G : new int[]{1, 2}) {
                Rollouts r = engine(new int[0]).generate(ps, G, c);
                for (int p = 0; p < ps.size(); p++) {
                    int[] g = Generator.greedy(model, 1, ps.get(p), null, 10, List.of(), 0);
                    int[] expected = Arrays.copyOfRange(g, ps.get(p).length, g.length);
                    for (int k = 0; k < G; k++) {
                        assertArrayEquals(expected, r.completion(p * G + k), "prompt " + p + " copy " + k + " of "
                                + G + " under " + c);
                    }
                }
            }
        }
    }

    @Test
    void stopTokensAndStopStringsEndRowsAndPad() {
        SamplingConfig free = new SamplingConfig(1.0, 1.0, 0, 16, List.of(), 77);
        Rollouts r = engine(new int[0]).generate(prompts(), 3, free);
        // pick, as stop token, the 4th token of row 0: row 0 must end there (or earlier, on an earlier occurrence)
        int stop = r.completion(0)[3];
        Rollouts s = engine(new int[]{stop}).generate(prompts(), 3, free);
        for (int row = 0; row < s.rows(); row++) {
            int[] full = r.completion(row);
            int first = -1;
            for (int i = 0; i < full.length; i++) {
                if (full[i] == stop) {
                    first = i;
                    break;
                }
            }
            int expectLen = first < 0 ? 16 : first + 1;
            assertEquals(expectLen, s.completionLengths()[row], "row " + row);
            assertArrayEquals(Arrays.copyOf(full, expectLen), s.completion(row), "same tokens up to the stop");
            for (int i = expectLen; i < 16; i++) {
                assertEquals(0, s.completionIds()[row * 16 + i], "padding after the stop, row " + row);
            }
            assertEquals(first < 0 ? Rollouts.FinishReason.LENGTH : Rollouts.FinishReason.STOP_TOKEN, s.finish()[row]);
            String text = DECODE.apply(Arrays.copyOf(full, first < 0 ? 16 : first));
            assertEquals(text, s.texts().get(row), "text without the stop token");
        }
        // stop string: two letters of row 1's text starting at index 5
        String t1 = r.texts().get(1);
        String stopStr = t1.substring(5, 7);
        Rollouts ss = engine(new int[0]).generate(prompts(), 3, new SamplingConfig(1.0, 1.0, 0, 16,
                List.of(stopStr), 77));
        for (int row = 0; row < ss.rows(); row++) {
            String full = r.texts().get(row);
            int at = full.indexOf(stopStr);
            if (at < 0) {
                assertEquals(16, ss.completionLengths()[row]);
                assertEquals(full, ss.texts().get(row));
            } else {
                assertEquals(at + stopStr.length(), ss.completionLengths()[row], "row " + row + " text " + full);
                assertEquals(Rollouts.FinishReason.STOP_STRING, ss.finish()[row]);
                assertEquals(full.substring(0, at), ss.texts().get(row));
            }
        }
        assertTrue(ss.completionLengths()[1] <= 7);
    }

    @Test
    void sharedPrefillEqualsPerRowPrefill() {
        List<int[]> ps = prompts();
        int P = ps.size(), G = 3, R = P * G, Tp = 5;
        int[] ids = new int[P * Tp], mask = new int[P * Tp];
        for (int p = 0; p < P; p++) {
            int[] x = ps.get(p);
            System.arraycopy(x, 0, ids, (p + 1) * Tp - x.length, x.length);
            Arrays.fill(mask, (p + 1) * Tp - x.length, (p + 1) * Tp, 1);
        }
        int[] ridsR = new int[R * Tp], rmask = new int[R * Tp];
        for (int r = 0; r < R; r++) {
            System.arraycopy(ids, (r / G) * Tp, ridsR, r * Tp, Tp);
            System.arraycopy(mask, (r / G) * Tp, rmask, r * Tp, Tp);
        }
        int[] tok = new int[R], pos = new int[R];
        for (int r = 0; r < R; r++) {
            tok[r] = (r * 7 + 3) % V;
            pos[r] = ps.get(r / G).length;
        }
        List<float[]> shared = new ArrayList<>(), separate = new ArrayList<>();
        try (KvCache small = model.newKvCache(P, Tp); KvCache big = model.newKvCache(R, Tp + 4)) {
            shared.add(BE.download(model.prefill(small, ids, mask, null)));
            big.replicateFrom(small, G);
            assertEquals(Tp, big.length());
            shared.add(BE.download(model.decode(big, tok, pos)));
            for (int r = 0; r < R; r++) {
                tok[r] = (tok[r] + 11) % V;
                pos[r]++;
            }
            shared.add(BE.download(model.decode(big, tok, pos)));
        }
        for (int r = 0; r < R; r++) {
            tok[r] = (r * 7 + 3) % V;
            pos[r] = ps.get(r / G).length;
        }
        try (KvCache big = model.newKvCache(R, Tp + 4)) {
            separate.add(BE.download(model.prefill(big, ridsR, rmask, null)));
            separate.add(BE.download(model.decode(big, tok, pos)));
            for (int r = 0; r < R; r++) {
                tok[r] = (tok[r] + 11) % V;
                pos[r]++;
            }
            separate.add(BE.download(model.decode(big, tok, pos)));
        }
        // prefill logits: shared row p is the logits of each of its G copies
        for (int r = 0; r < R; r++) {
            assertClose(Arrays.copyOfRange(shared.get(0), (r / G) * V, (r / G + 1) * V),
                    Arrays.copyOfRange(separate.get(0), r * V, (r + 1) * V), "prefill row " + r);
        }
        assertClose(shared.get(1), separate.get(1), "first decode step");
        assertClose(shared.get(2), separate.get(2), "second decode step");
    }

    private static void assertClose(float[] a, float[] b, String what) {
        assertEquals(a.length, b.length);
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        // same arithmetic on the same rows: fp32 noise at most (GEMM blocking may differ with the batch size)
        assertTrue(max <= 1e-5, what + ": max |shared - separate| = " + max);
    }
}
