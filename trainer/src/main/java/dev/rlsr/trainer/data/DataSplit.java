package dev.rlsr.trainer.data;

import java.nio.charset.StandardCharsets;
import java.util.function.Predicate;

/**
 * Deterministic train/eval split: an example goes to eval when a hash of its id and the seed falls below
 * {@code evalFraction}. The decision needs nothing but the example itself, so it is the same while streaming, in any
 * order, in any process, and adding lines to a file never moves existing examples between the sides. Give examples
 * an {@code "id"} to keep their side when lines are inserted above them (the default id is file name and line).
 *
 * @param evalFraction share of examples held out, in [0, 1)
 * @param seed         different seeds give independent splits
 */
public record DataSplit(double evalFraction, long seed) {
    public DataSplit {
        if (!(evalFraction >= 0 && evalFraction < 1)) {
            throw new IllegalArgumentException("the eval fraction must be in [0, 1), got " + evalFraction);
        }
    }

    public boolean isEval(Example e) {
        return unit(e.id()) < evalFraction;
    }

    public Predicate<Example> train() {
        return e -> !isEval(e);
    }

    public Predicate<Example> eval() {
        return this::isEval;
    }

    /** A uniform number in [0, 1) from the id and the seed: FNV-1a over the UTF-8 bytes, then SplitMix64's mixer. */
    double unit(String id) {
        long h = 0xcbf29ce484222325L;
        for (byte b : id.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        long z = h ^ (seed * 0x9E3779B97F4A7C15L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return (z >>> 11) * 0x1.0p-53;
    }
}
