package dev.rlsr.trainer.eval;

import org.apache.commons.math3.distribution.NormalDistribution;
import org.apache.commons.math3.random.Well19937c;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BootstrapTest {

    @Test
    void constantDataGivesAZeroWidthInterval() {
        double[] x = new double[57];
        Arrays.fill(x, 0.731);
        Bootstrap.Interval i = Bootstrap.mean(x, 1000, 0.95, 1);
        assertEquals(0.731, i.mean(), 1e-12);
        assertEquals(0.731, i.lo(), 1e-12);
        assertEquals(0.731, i.hi(), 1e-12);
    }

    @Test
    void pairedDifferenceOfAConstantShiftIsExact() {
        // per-prompt scores that vary a lot, shifted by exactly 0.05: the paired interval is the shift itself,
        // while unpaired intervals of the two means overlap widely
        SplittableRandom r = new SplittableRandom(5);
        double[] b = new double[200], a = new double[200];
        for (int k = 0; k < b.length; k++) {
            b[k] = r.nextDouble();
            a[k] = b[k] + 0.05;
        }
        Bootstrap.Interval d = Bootstrap.pairedDifference(a, b, 2000, 0.95, 3);
        assertEquals(0.05, d.mean(), 1e-12);
        assertEquals(0.05, d.lo(), 1e-9);
        assertEquals(0.05, d.hi(), 1e-9);
        assertTrue(d.aboveZero());
        Bootstrap.Interval ia = Bootstrap.mean(a, 2000, 0.95, 3), ib = Bootstrap.mean(b, 2000, 0.95, 3);
        assertTrue(ia.lo() < ib.hi(), "the unpaired intervals overlap: " + ia + " " + ib);
        Bootstrap.Interval same = Bootstrap.pairedDifference(b, b, 500, 0.95, 3);
        assertEquals(0, same.lo(), 0);
        assertEquals(0, same.hi(), 0);
        assertFalse(same.aboveZero());
    }

    @Test
    void widthMatchesTheNormalTheoryForLargeSamples() {
        // n = 400 draws of N(0.5, 0.2^2): the 95% interval of the mean is about +-1.96 * 0.2 / 20 = +-0.0196
        Well19937c g = new Well19937c(11);
        NormalDistribution nd = new NormalDistribution(g, 0.5, 0.2);
        double[] x = nd.sample(400);
        double sd = Math.sqrt(Arrays.stream(x).map(v -> v - Arrays.stream(x).average().orElseThrow())
                .map(v -> v * v).sum() / (x.length - 1));
        double expectedHalf = 1.959964 * sd / Math.sqrt(x.length);
        Bootstrap.Interval i = Bootstrap.mean(x, 4000, 0.95, 2);
        double half = (i.hi() - i.lo()) / 2;
        assertEquals(expectedHalf, half, 0.1 * expectedHalf, "half width " + half + " vs " + expectedHalf);
        assertEquals((i.hi() + i.lo()) / 2, i.mean(), 0.2 * expectedHalf, "about symmetric around the mean");
    }

    @Test
    void coverageIsNearTheNominalLevel() {
        // 300 datasets of n = 60 from an exponential with mean 1: the 95% interval should contain 1 in
        // roughly 95% of them (the percentile bootstrap under-covers a little for skewed data at small n)
        SplittableRandom r = new SplittableRandom(21);
        int covered = 0, trials = 300;
        for (int t = 0; t < trials; t++) {
            double[] x = new double[60];
            for (int k = 0; k < x.length; k++) {
                x[k] = -Math.log(1 - r.nextDouble());
            }
            Bootstrap.Interval i = Bootstrap.mean(x, 1000, 0.95, t);
            if (i.lo() <= 1 && 1 <= i.hi()) {
                covered++;
            }
        }
        double rate = covered / (double) trials;
        assertTrue(rate > 0.88 && rate < 0.99, "coverage " + rate);
    }

    @Test
    void deterministicForASeedAndLevelsAreNested() {
        double[] x = new SplittableRandom(1).doubles(100).toArray();
        assertEquals(Bootstrap.mean(x, 500, 0.95, 9), Bootstrap.mean(x, 500, 0.95, 9));
        Bootstrap.Interval i90 = Bootstrap.mean(x, 2000, 0.90, 9), i99 = Bootstrap.mean(x, 2000, 0.99, 9);
        assertTrue(i99.lo() < i90.lo() && i90.hi() < i99.hi(), i90 + " inside " + i99);
    }

    @Test
    void badInputs() {
        assertThrows(IllegalArgumentException.class, () -> Bootstrap.pairedDifference(new double[2], new double[3],
                100, 0.95, 1));
        assertThrows(IllegalArgumentException.class, () -> Bootstrap.mean(new double[]{1, Double.NaN}, 100, 0.95, 1));
        assertThrows(IllegalArgumentException.class, () -> Bootstrap.mean(new double[]{1}, 100, 1.5, 1));
        assertTrue(Double.isNaN(Bootstrap.mean(new double[0], 100, 0.95, 1).mean()));
    }
}
