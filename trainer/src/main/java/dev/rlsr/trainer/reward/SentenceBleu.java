package dev.rlsr.trainer.reward;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Sentence BLEU exactly as sacreBLEU 2.6 {@code sentence_bleu(hypothesis, [reference])} at its defaults:
 * {@code tokenize='13a'}, {@code lowercase=False}, {@code smooth_method='exp'}, {@code use_effective_order=True},
 * {@code max_ngram_order=4}, score in 0..100.
 *
 * <p>Per sacrebleu/metrics/bleu.py ({@code compute_bleu}): both sides are {@code rstrip()}-ed and 13a-tokenized;
 * n-gram matches are clipped by the reference counts; the brevity penalty is {@code exp(1 - r/h)} when
 * {@code h < r} (0 when {@code h = 0}); if no n-gram of any order matches the score is 0; otherwise for
 * n = 1..4, stopping at the first order with no hypothesis n-grams (the effective order), a zero match count
 * gets the "exp" (NIST) smoothing {@code 100 / (2^k * total_n)} with k counting the zero orders so far, and the
 * score is {@code bp * exp(mean(log p_n))} over the effective orders.
 */
public final class SentenceBleu {
    public static final int MAX_ORDER = 4;

    private SentenceBleu() {
    }

    /** The sufficient statistics and result of one sentence. */
    public record Result(double score, int[] correct, int[] total, int hypLength, int refLength, double brevityPenalty) {
    }

    /** BLEU in 0..100. */
    public static double score(String hypothesis, String reference) {
        return compute(hypothesis, reference).score();
    }

    public static Result compute(String hypothesis, String reference) {
        List<String> hyp = PyStrings.split(Tokenizer13a.tokenize(PyStrings.rstrip(hypothesis)));
        List<String> ref = PyStrings.split(Tokenizer13a.tokenize(PyStrings.rstrip(reference)));
        Map<String, Integer> refCounts = ngramCounts(ref);
        Map<String, Integer> hypCounts = ngramCounts(hyp);
        int[] correct = new int[MAX_ORDER];
        int[] total = new int[MAX_ORDER];
        for (Map.Entry<String, Integer> e : hypCounts.entrySet()) {
            int n = order(e.getKey()) - 1;
            total[n] += e.getValue();
            Integer inRef = refCounts.get(e.getKey());
            if (inRef != null) {
                correct[n] += Math.min(e.getValue(), inRef);
            }
        }
        int sysLen = hyp.size();
        int refLen = ref.size();
        double bp;
        if (sysLen < refLen) {
            bp = sysLen > 0 ? Math.exp(1.0 - (double) refLen / sysLen) : 0.0;
        } else {
            bp = 1.0;
        }
        boolean anyCorrect = false;
        for (int c : correct) {
            anyCorrect |= c != 0;
        }
        if (!anyCorrect) {
            return new Result(0.0, correct, total, sysLen, refLen, bp);
        }
        double[] precisions = new double[MAX_ORDER];
        double smoothMteval = 1.0;
        int effOrder = MAX_ORDER;
        for (int n = 1; n <= MAX_ORDER; n++) {
            if (total[n - 1] == 0) {
                break;
            }
            effOrder = n; // use_effective_order=True
            if (correct[n - 1] == 0) {
                smoothMteval *= 2;
                precisions[n - 1] = 100.0 / (smoothMteval * total[n - 1]);
            } else {
                precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
            }
        }
        double logSum = 0;
        for (int n = 0; n < effOrder; n++) {
            logSum += myLog(precisions[n]);
        }
        return new Result(bp * Math.exp(logSum / effOrder), correct, total, sysLen, refLen, bp);
    }

    /** sacrebleu.utils.my_log: log with log(0) = -9999999999. */
    private static double myLog(double x) {
        return x == 0.0 ? -9999999999.0 : Math.log(x);
    }

    /** All 1..4-grams of the tokens, keyed by the tokens joined with single spaces (tokens contain no spaces). */
    private static Map<String, Integer> ngramCounts(List<String> tokens) {
        Map<String, Integer> counts = new HashMap<>();
        int len = tokens.size();
        for (int n = 1; n <= MAX_ORDER; n++) {
            for (int i = 0; i + n <= len; i++) {
                String key = String.join(" ", tokens.subList(i, i + n));
                counts.merge(key, 1, Integer::sum);
            }
        }
        return counts;
    }

    private static int order(String key) {
        int n = 1;
        for (int i = 0; i < key.length(); i++) {
            if (key.charAt(i) == ' ') {
                n++;
            }
        }
        return n;
    }
}
