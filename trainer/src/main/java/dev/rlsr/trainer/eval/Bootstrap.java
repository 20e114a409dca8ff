package dev.rlsr.trainer.eval;

import org.apache.commons.math3.random.RandomGenerator;
import org.apache.commons.math3.random.Well19937c;
import org.apache.commons.math3.stat.descriptive.rank.Percentile;

import java.util.Arrays;

/**
 * Percentile bootstrap confidence intervals of a mean over held-out prompts (Efron's percentile method): draw
 * {@code resamples} samples of n prompts with replacement, take each sample's mean, and report the
 * {@code (1-c)/2} and {@code (1+c)/2} quantiles of those means. Paired differences (two models on the same
 * prompts) resample prompts, not models: the interval of {@code mean(a_i - b_i)} keeps the pairing, which is what
 * makes small differences between models measurable. Deterministic for a seed (commons-math3 Well19937c).
 */
public final class Bootstrap {
    private Bootstrap() {
    }

    /** A mean and its confidence interval. */
    public record Interval(double mean, double lo, double hi, double confidence, int n) {
        public Interval {
            if (n > 0 && !(lo <= mean + 1e-12 && mean <= hi + 1e-12)) {
                throw new IllegalArgumentException("interval [" + lo + ", " + hi + "] does not contain the mean " + mean);
            }
        }

        /** True when the whole interval lies above zero. */
        public boolean aboveZero() {
            return lo > 0;
        }

        /** True when the whole interval lies below zero. */
        public boolean belowZero() {
            return hi < 0;
        }

        /** "higher" when the interval lies above zero, "lower" when below, "unclear" when it holds zero. */
        public String verdict() {
            return aboveZero() ? "higher" : belowZero() ? "lower" : "unclear";
        }

        public double[] bounds() {
            return new double[]{lo, hi};
        }
    }

    /** Mean of {@code x} with a percentile-bootstrap interval at level {@code confidence} (e.g. 0.95). */
    public static Interval mean(double[] x, int resamples, double confidence, long seed) {
        if (resamples < 1) {
            throw new IllegalArgumentException("bootstrap needs at least one resample, got " + resamples);
        }
        if (!(confidence > 0 && confidence < 1)) {
            throw new IllegalArgumentException("confidence must be in (0, 1), got " + confidence);
        }
        int n = x.length;
        if (n == 0) {
            return new Interval(Double.NaN, Double.NaN, Double.NaN, confidence, 0);
        }
        for (double v : x) {
            if (!Double.isFinite(v)) {
                throw new IllegalArgumentException("bootstrap input has a non-finite value " + v);
            }
        }
        double mean = Arrays.stream(x).sum() / n;
        RandomGenerator rng = new Well19937c(seed);
        double[] means = new double[resamples];
        for (int r = 0; r < resamples; r++) {
            double s = 0;
            for (int i = 0; i < n; i++) {
                s += x[rng.nextInt(n)];
            }
            means[r] = s / n;
        }
        Percentile p = new Percentile().withEstimationType(Percentile.EstimationType.R_7);
        p.setData(means);
        double lo = p.evaluate(100 * (1 - confidence) / 2);
        double hi = p.evaluate(100 * (1 + confidence) / 2);
        // the percentile interval of a mean always contains it up to rounding; clamp the rounding away
        lo = Math.min(lo, mean);
        hi = Math.max(hi, mean);
        return new Interval(mean, lo, hi, confidence, n);
    }

    /** Paired difference {@code mean(a_i - b_i)} with its bootstrap interval; a and b are per-prompt scores. */
    public static Interval pairedDifference(double[] a, double[] b, int resamples, double confidence, long seed) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("paired bootstrap needs the same prompts on both sides: " + a.length
                    + " vs " + b.length + " scores");
        }
        double[] d = new double[a.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = a[i] - b[i];
        }
        return mean(d, resamples, confidence, seed);
    }
}
