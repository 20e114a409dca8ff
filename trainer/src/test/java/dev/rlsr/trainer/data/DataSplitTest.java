package dev.rlsr.trainer.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataSplitTest {

    static List<Example> examples(int n) {
        List<Example> xs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            xs.add(Example.of("train.jsonl:" + (i + 1), "p" + i, "r" + i));
        }
        return xs;
    }

    static List<String> evalIds(DataSplit s, List<Example> xs) {
        return xs.stream().filter(s.eval()).map(Example::id).sorted().toList();
    }

    @Test
    void sameSeedSameSplitInAnyOrder() {
        List<Example> xs = examples(5000);
        DataSplit s = new DataSplit(0.1, 42);
        List<String> a = evalIds(s, xs);
        List<Example> shuffled = new ArrayList<>(xs);
        Collections.shuffle(shuffled, new Random(7));
        assertEquals(a, evalIds(new DataSplit(0.1, 42), shuffled));
        // train and eval partition the examples
        assertEquals(xs.size(), a.size() + xs.stream().filter(s.train()).count());
        assertNotEquals(a, evalIds(new DataSplit(0.1, 43), xs));
    }

    @Test
    void fractionIsRespected() {
        List<Example> xs = examples(20000);
        for (double f : new double[]{0.0, 0.05, 0.2, 0.5}) {
            long n = xs.stream().filter(new DataSplit(f, 1).eval()).count();
            // binomial standard deviation at n=20000 is <= 71; 5 sigma
            assertTrue(Math.abs(n - f * xs.size()) <= 360, "fraction " + f + ": " + n + " of " + xs.size());
        }
    }

    @Test
    void growingTheFractionOnlyAddsToEval() {
        List<Example> xs = examples(3000);
        List<String> small = evalIds(new DataSplit(0.1, 5), xs);
        List<String> large = evalIds(new DataSplit(0.3, 5), xs);
        assertTrue(large.containsAll(small));
    }

    @Test
    void invalidFraction() {
        assertThrows(IllegalArgumentException.class, () -> new DataSplit(1.0, 0));
        assertThrows(IllegalArgumentException.class, () -> new DataSplit(-0.1, 0));
        assertThrows(IllegalArgumentException.class, () -> new DataSplit(Double.NaN, 0));
    }
}
