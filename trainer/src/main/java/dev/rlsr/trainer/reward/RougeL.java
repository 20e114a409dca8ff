package dev.rlsr.trainer.reward;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * ROUGE-L as torchmetrics 1.9 {@code ROUGEScore(rouge_keys=('rougeL',), use_stemmer=False)} and Google's
 * rouge-score compute it for one (prediction, target) pair: lowercase, every run of characters outside
 * {@code [a-z0-9]} becomes a space (so accented letters split words), whitespace tokens; the longest common
 * subsequence (LCS) of the token lists gives precision = LCS/|pred|, recall = LCS/|target| and
 * F1 = 2PR/(P+R); all three are 0 when either side has no token or when P = R = 0.
 */
public final class RougeL {
    private static final Pattern NON_ALNUM = Pattern.compile("[^a-z0-9]+");

    private RougeL() {
    }

    public record Score(double precision, double recall, double f1) {
        static final Score ZERO = new Score(0, 0, 0);
    }

    public static Score score(String prediction, String target) {
        List<String> pred = tokenize(prediction);
        List<String> tgt = tokenize(target);
        if (pred.isEmpty() || tgt.isEmpty()) {
            return Score.ZERO;
        }
        int lcs = lcsLength(pred, tgt);
        double precision = (double) lcs / pred.size();
        double recall = (double) lcs / tgt.size();
        if (precision == 0.0 && recall == 0.0) {
            return Score.ZERO;
        }
        return new Score(precision, recall, 2 * precision * recall / (precision + recall));
    }

    /** torchmetrics' {@code _normalize_and_tokenize_text} without a stemmer. */
    public static List<String> tokenize(String text) {
        String normalized = NON_ALNUM.matcher(text.toLowerCase(Locale.ROOT)).replaceAll(" ");
        List<String> tokens = new ArrayList<>();
        for (String t : normalized.split(" ")) {
            if (!t.isEmpty()) {
                tokens.add(t);
            }
        }
        return tokens;
    }

    /** Length of the longest common subsequence, O(|a|*|b|) time, O(|b|) memory. */
    static int lcsLength(List<String> a, List<String> b) {
        int[] prev = new int[b.size() + 1];
        int[] cur = new int[b.size() + 1];
        for (String x : a) {
            for (int j = 1; j <= b.size(); j++) {
                cur[j] = x.equals(b.get(j - 1)) ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.size()];
    }
}
