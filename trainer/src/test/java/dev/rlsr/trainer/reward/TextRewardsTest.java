package dev.rlsr.trainer.reward;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** 13a tokenizer, BLEU, ROUGE-L, exact match and length penalty: hand-derived cases and properties. */
class TextRewardsTest {

    static RewardInput row(String response, String reference) {
        return new RewardInput("id", "prompt", response, reference);
    }

    static double one(Reward r, String response, String reference) {
        return r.score(List.of(row(response, reference)))[0];
    }

    // expected strings below are derived by hand from the rules of sacrebleu's tokenizer_13a.py / tokenizer_re.py
    @Test
    void tokenizer13aFollowsMteval() {
        assertEquals("Hello , world .", Tokenizer13a.tokenize("Hello, world."));
        assertEquals("It costs $ 3.50 , ok ?", Tokenizer13a.tokenize("It costs $3.50, ok?"));
        assertEquals("1,000 people", Tokenizer13a.tokenize("1,000 people"));
        assertEquals("pages 10 - 20 , e-mail", Tokenizer13a.tokenize("pages 10-20, e-mail"));
        assertEquals("\" quoted \" & more", Tokenizer13a.tokenize("&quot;quoted&quot; &amp; more"));
        assertEquals("don't", Tokenizer13a.tokenize("don't"));
        assertEquals("line oneline two end", Tokenizer13a.tokenize("line one-\nline two\nend"));
        assertEquals("text", Tokenizer13a.tokenize("<skipped> text"));
        assertEquals("a . b", Tokenizer13a.tokenize("a.b"));
        assertEquals("3 . a", Tokenizer13a.tokenize("3.a"));
        assertEquals("( x ) [ y ] { z } < w > a / b", Tokenizer13a.tokenize("(x) [y] {z} <w> a/b"));
        // Python's str.split() splits on NO-BREAK SPACE, Java's \\s does not
        assertEquals("a b", Tokenizer13a.tokenize("a\u00a0b"));
        assertEquals("", Tokenizer13a.tokenize("   "));
    }

    @Test
    void bleuHandComputedSmoothing() {
        // p1 = 1/2; no bigram match: exp smoothing 100/(2*1); effective order 2; BP = 1
        assertEquals(50.0, SentenceBleu.score("the cat", "the dog"), 1e-9);
        // p1 = 2/4, p2 = 100/(2*3), p3 = 100/(4*2), p4 = 100/(8*1)
        double expected = Math.pow(50.0 * (100.0 / 6.0) * 12.5 * 12.5, 0.25);
        assertEquals(expected, SentenceBleu.score("a b c d", "a x c y"), 1e-9);
        // only orders the hypothesis has count (effective order 1); BP = exp(1 - 3/1)
        assertEquals(100.0 * Math.exp(-2.0), SentenceBleu.score("a", "a b c"), 1e-9);
        // trailing whitespace is stripped before tokenizing
        assertEquals(100.0, SentenceBleu.score("same words here \n", "same words here"), 1e-9);
    }

    @Test
    void bleuProperties() {
        BleuReward bleu = new BleuReward();
        assertEquals(1.0, one(bleu, "The capital of France is Paris.", "The capital of France is Paris."), 1e-12);
        assertEquals(0.0, one(bleu, "", "The capital of France is Paris."));
        assertEquals(0.0, one(bleu, "   ", "something"));
        assertEquals(0.0, one(bleu, "something", ""));
        assertEquals(0.0, one(bleu, "", ""));
        Random rnd = new Random(5);
        for (int i = 0; i < 300; i++) {
            double s = one(bleu, randomText(rnd), randomText(rnd));
            assertTrue(Double.isFinite(s) && s >= 0 && s <= 1 + 1e-12, "bleu " + s);
        }
    }

    @Test
    void rougeLcsMatchesBruteForce() {
        Random rnd = new Random(9);
        for (int trial = 0; trial < 300; trial++) {
            List<String> a = randomTokens(rnd, rnd.nextInt(9));
            List<String> b = randomTokens(rnd, rnd.nextInt(9));
            assertEquals(bruteForceLcs(a, b), RougeL.lcsLength(a, b), a + " vs " + b);
        }
    }

    @Test
    void rougeProperties() {
        RougeL.Score same = RougeL.score("The cat sat.", "the CAT sat");
        assertEquals(1.0, same.precision());
        assertEquals(1.0, same.recall());
        assertEquals(1.0, same.f1());
        assertEquals(0.0, RougeL.score("!!! ...", "the cat").f1());
        assertEquals(0.0, RougeL.score("", "").f1());
        Random rnd = new Random(13);
        for (int i = 0; i < 300; i++) {
            String h = randomText(rnd);
            String r = randomText(rnd);
            RougeL.Score hr = RougeL.score(h, r);
            RougeL.Score rh = RougeL.score(r, h);
            assertEquals(hr.precision(), rh.recall(), 1e-15);
            assertEquals(hr.f1(), rh.f1(), 1e-15);
            assertTrue(Double.isFinite(hr.f1()) && hr.f1() >= 0 && hr.f1() <= 1);
        }
    }

    @Test
    void exactMatchNormalisation() {
        ExactMatchReward exact = new ExactMatchReward();
        assertEquals(1.0, one(exact, "Paris.", "paris"));
        assertEquals(1.0, one(exact, "  The   answer is\t42! ", "the answer is 42"));
        assertEquals(1.0, one(exact, "«Paris»", "\"Paris\""));
        assertEquals(0.0, one(exact, "3.5", "35"));
        assertEquals(0.0, one(exact, "Paris is nice", "Paris"));
        assertEquals(1.0, one(exact, "", " "));
        assertEquals(0.0, one(exact, "", "x"));
        assertEquals("a, b", ExactMatchReward.normalize("...A, B?!"));
    }

    @Test
    void lengthPenalty() {
        LengthReward length = new LengthReward();
        assertEquals(0.0, one(length, "one two three", "a b c"));
        assertEquals(-0.5, one(length, "a b c d e", "a b c d e f g h i j"));
        assertEquals(-0.5, one(length, "a b c d e f g h i j k l m n o", "a b c d e f g h i j"));
        assertEquals(-1.0, one(length, "", "a b c d"));
        assertEquals(-1.0, one(length, "w ".repeat(30), "a b c d e f g h i j"));
        assertEquals(-1.0, one(length, "a b c", ""));
        assertEquals(0.0, one(length, "", ""));
        Random rnd = new Random(17);
        for (int i = 0; i < 200; i++) {
            double s = one(length, randomText(rnd), randomText(rnd));
            assertTrue(s >= -1 && s <= 0, "length " + s);
        }
    }

    @Test
    void batchScoresFollowRowOrder() {
        List<RewardInput> batch = List.of(row("a b c", "a b c"), row("", "a b c"), row("x y", "a b c"));
        double[] r = new RougeLReward().score(batch);
        assertEquals(3, r.length);
        assertEquals(1.0, r[0]);
        assertEquals(0.0, r[1]);
        assertEquals(0.0, r[2]);
    }

    static List<String> randomTokens(Random rnd, int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(String.valueOf((char) ('a' + rnd.nextInt(3))));
        }
        return out;
    }

    static String randomText(Random rnd) {
        String[] pieces = {"the", "The", "cat", "mat", ".", ",", "1", "2.5", "-", "é", "  ", "\n", "don't", "&amp;", "?", "Paris"};
        StringBuilder sb = new StringBuilder();
        int n = rnd.nextInt(12);
        for (int i = 0; i < n; i++) {
            sb.append(pieces[rnd.nextInt(pieces.length)]);
            if (rnd.nextBoolean()) {
                sb.append(' ');
            }
        }
        return sb.toString();
    }

    /** Longest common subsequence by trying every subsequence of a (|a| <= 8). */
    static int bruteForceLcs(List<String> a, List<String> b) {
        int best = 0;
        for (int mask = 0; mask < (1 << a.size()); mask++) {
            List<String> sub = new ArrayList<>();
            for (int i = 0; i < a.size(); i++) {
                if ((mask & (1 << i)) != 0) {
                    sub.add(a.get(i));
                }
            }
            if (sub.size() > best && isSubsequence(sub, b)) {
                best = sub.size();
            }
        }
        return best;
    }

    static boolean isSubsequence(List<String> sub, List<String> of) {
        int j = 0;
        for (String s : of) {
            if (j < sub.size() && sub.get(j).equals(s)) {
                j++;
            }
        }
        return j == sub.size();
    }
}
