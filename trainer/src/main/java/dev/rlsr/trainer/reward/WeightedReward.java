package dev.rlsr.trainer.reward;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * {@code sum_k w_k * r_k} over component rewards, each scored once per batch. Closing it closes the components.
 */
public final class WeightedReward implements Reward {

    public record Term(double weight, Reward reward) {
        public Term {
            Objects.requireNonNull(reward, "reward");
            if (!Double.isFinite(weight)) {
                throw new IllegalArgumentException("weight of reward '" + reward.name() + "' must be finite, got " + weight);
            }
        }
    }

    /** Total and per-component scores of one batch, for logging. */
    public record Scores(double[] total, Map<String, double[]> components) {
    }

    private final List<Term> terms;
    private final String name;

    public WeightedReward(List<Term> terms) {
        Objects.requireNonNull(terms, "terms");
        if (terms.isEmpty()) {
            throw new IllegalArgumentException("a weighted reward needs at least one term");
        }
        this.terms = List.copyOf(terms);
        Map<String, Double> w = new LinkedHashMap<>();
        for (Term t : this.terms) {
            w.put(t.reward().name(), t.weight());
        }
        this.name = new RewardSpec(w).toString();
    }

    public List<Term> terms() {
        return terms;
    }

    /** The spec text, e.g. {@code 0.7*cosine+0.3*rougeL}. */
    @Override
    public String name() {
        return name;
    }

    @Override
    public double[] score(List<RewardInput> batch) {
        return scoreWithComponents(batch).total();
    }

    public Scores scoreWithComponents(List<RewardInput> batch) {
        double[] total = new double[batch.size()];
        Map<String, double[]> parts = new LinkedHashMap<>();
        for (Term t : terms) {
            double[] r = t.reward().score(batch);
            if (r.length != total.length) {
                throw new IllegalStateException("reward '" + t.reward().name() + "' returned " + r.length
                        + " scores for a batch of " + total.length);
            }
            parts.put(t.reward().name(), r);
            for (int i = 0; i < total.length; i++) {
                total[i] += t.weight() * r[i];
            }
        }
        return new Scores(total, parts);
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (Term t : terms) {
            try {
                t.reward().close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
