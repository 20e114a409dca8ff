package dev.rlsr.trainer.reward;

import dev.rlsr.trainer.encoder.Encoder;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * A reference-based reward: a function of (prompt x, response y, reference y*) evaluated over a whole rollout
 * batch, {@code score(batch (N)) -> rewards (N)}, one finite double per row in batch order (never NaN).
 *
 * <p>A closed family (the names {@link RewardSpec} accepts): {@code cosine} ({@link CosineReward}, the RLSR
 * reward), {@code bleu} ({@link BleuReward}), {@code rougeL} ({@link RougeLReward}), {@code exact}
 * ({@link ExactMatchReward}), {@code length} ({@link LengthReward}) and weighted sums of them
 * ({@link WeightedReward}). Rewards with native resources (the encoder of {@code cosine}) release them in
 * {@link #close()}, which is idempotent.
 */
public sealed interface Reward extends AutoCloseable
        permits CosineReward, BleuReward, RougeLReward, ExactMatchReward, LengthReward, WeightedReward {

    /** The reward's name in a spec ({@code cosine}), or the spec text for a weighted sum. */
    String name();

    /** {@code batch (N)} to {@code rewards (N)}. */
    double[] score(List<RewardInput> batch);

    @Override
    default void close() {
    }

    /** {@link #fromSpec(RewardSpec, Supplier, CosineReward.Options)} of {@link RewardSpec#parse}. */
    static Reward fromSpec(String spec, Supplier<? extends Encoder> encoderSupplier) {
        return fromSpec(RewardSpec.parse(spec), encoderSupplier, CosineReward.Options.defaults());
    }

    static Reward fromSpec(RewardSpec spec, Supplier<? extends Encoder> encoderSupplier) {
        return fromSpec(spec, encoderSupplier, CosineReward.Options.defaults());
    }

    /**
     * Builds the reward a spec names. The encoder supplier is called once, only if the spec uses {@code cosine},
     * and the returned reward owns (closes) that encoder. A spec of one reward with weight 1 gives that reward
     * itself; anything else a {@link WeightedReward}.
     */
    static Reward fromSpec(RewardSpec spec, Supplier<? extends Encoder> encoderSupplier, CosineReward.Options cosineOptions) {
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(cosineOptions, "cosineOptions");
        List<WeightedReward.Term> terms = new ArrayList<>();
        try {
            for (Map.Entry<String, Double> e : spec.weights().entrySet()) {
                Reward r = switch (e.getKey()) {
                    case CosineReward.NAME -> {
                        if (encoderSupplier == null) {
                            throw new IllegalArgumentException("reward 'cosine' needs a sentence encoder, but no encoder supplier was given");
                        }
                        Encoder encoder = Objects.requireNonNull(encoderSupplier.get(), "encoder supplier returned null");
                        yield CosineReward.owning(encoder, cosineOptions);
                    }
                    case BleuReward.NAME -> new BleuReward();
                    case RougeLReward.NAME -> new RougeLReward();
                    case ExactMatchReward.NAME -> new ExactMatchReward();
                    case LengthReward.NAME -> new LengthReward();
                    default -> throw new IllegalArgumentException("unknown reward '" + e.getKey() + "'; known rewards: "
                            + String.join(", ", RewardSpec.KNOWN));
                };
                terms.add(new WeightedReward.Term(e.getValue(), r));
            }
        } catch (RuntimeException e) {
            for (WeightedReward.Term t : terms) {
                t.reward().close();
            }
            throw e;
        }
        if (terms.size() == 1 && terms.getFirst().weight() == 1.0) {
            return terms.getFirst().reward();
        }
        return new WeightedReward(terms);
    }
}
