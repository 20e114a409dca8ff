package dev.rlsr.trainer.reward;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which rewards to combine and their weights, in the order given: the reward is {@code sum_k w_k * r_k}.
 *
 * <p>Text form ({@link #parse}): terms joined by {@code +} or {@code -}, each {@code [weight*]name}, e.g.
 * {@code "cosine"}, {@code "0.7*cosine+0.3*rougeL"}, {@code "cosine - 0.1*length"}, {@code "1e-1 * bleu"}.
 * Map form ({@link #of}): {@code {cosine: 0.7, rougeL: 0.3}} as read from YAML/JSON.
 * Names are matched case-insensitively and stored in canonical spelling ({@link #KNOWN}); a name may appear once;
 * weights must be finite and non-zero.
 */
public record RewardSpec(Map<String, Double> weights) {
    /** Canonical reward names. */
    public static final List<String> KNOWN = List.of(
            CosineReward.NAME, BleuReward.NAME, RougeLReward.NAME, ExactMatchReward.NAME, LengthReward.NAME);

    private static final Pattern TERM = Pattern.compile(
            "\\s*([+-])?\\s*(?:((?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?)\\s*\\*\\s*)?([A-Za-z][A-Za-z0-9_]*)\\s*");

    public RewardSpec {
        Objects.requireNonNull(weights, "reward weights are null");
        if (weights.isEmpty()) {
            throw new IllegalArgumentException("a reward spec needs at least one reward; known rewards: " + KNOWN);
        }
        Map<String, Double> canonical = new LinkedHashMap<>();
        for (Map.Entry<String, Double> e : weights.entrySet()) {
            String name = canonicalName(e.getKey());
            Double w = e.getValue();
            if (w == null || !Double.isFinite(w) || w == 0.0) {
                throw new IllegalArgumentException("weight of reward '" + name + "' must be a finite non-zero number, got " + w);
            }
            if (canonical.put(name, w) != null) {
                throw new IllegalArgumentException("reward '" + name + "' appears more than once in the reward spec");
            }
        }
        weights = Collections.unmodifiableMap(canonical);
    }

    /** Canonical spelling of a reward name, or an error naming it and listing the known ones. */
    public static String canonicalName(String name) {
        Objects.requireNonNull(name, "reward name is null");
        for (String known : KNOWN) {
            if (known.toLowerCase(Locale.ROOT).equals(name.strip().toLowerCase(Locale.ROOT))) {
                return known;
            }
        }
        throw new IllegalArgumentException("unknown reward '" + name + "'; known rewards: " + String.join(", ", KNOWN));
    }

    /** A single reward with weight 1. */
    public static RewardSpec single(String name) {
        return new RewardSpec(Map.of(name, 1.0));
    }

    /** Map form, e.g. parsed from YAML {@code {cosine: 0.7, rougeL: 0.3}}; keeps the map's iteration order. */
    public static RewardSpec of(Map<String, ? extends Number> weights) {
        Objects.requireNonNull(weights, "reward weights are null");
        Map<String, Double> copy = new LinkedHashMap<>();
        for (Map.Entry<String, ? extends Number> e : weights.entrySet()) {
            if (e.getValue() == null) {
                throw new IllegalArgumentException("weight of reward '" + e.getKey() + "' is missing");
            }
            if (copy.put(e.getKey(), e.getValue().doubleValue()) != null) {
                throw new IllegalArgumentException("reward '" + e.getKey() + "' appears more than once in the reward spec");
            }
        }
        return new RewardSpec(copy);
    }

    /** Text form, see the class comment. */
    public static RewardSpec parse(String text) {
        Objects.requireNonNull(text, "reward spec is null");
        if (text.isBlank()) {
            throw new IllegalArgumentException("reward spec is empty; write e.g. \"cosine\" or \"0.7*cosine+0.3*rougeL\"");
        }
        Map<String, Double> weights = new LinkedHashMap<>();
        Matcher m = TERM.matcher(text);
        int pos = 0;
        boolean first = true;
        while (pos < text.length()) {
            m.region(pos, text.length());
            if (!m.lookingAt() || (!first && m.group(1) == null)) {
                throw new IllegalArgumentException("cannot read reward spec '" + text + "' at position " + pos
                        + " ('" + text.substring(pos) + "'): expected [+|-] [weight*]name, e.g. \"0.7*cosine+0.3*rougeL\"");
            }
            double w = m.group(2) == null ? 1.0 : Double.parseDouble(m.group(2));
            if ("-".equals(m.group(1))) {
                w = -w;
            }
            String name;
            try {
                name = canonicalName(m.group(3));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(e.getMessage() + " (in reward spec '" + text + "')", e);
            }
            if (weights.put(name, w) != null) {
                throw new IllegalArgumentException("reward '" + name + "' appears more than once in reward spec '" + text + "'");
            }
            pos = m.end();
            first = false;
        }
        return new RewardSpec(weights);
    }

    public boolean uses(String name) {
        return weights.containsKey(canonicalName(name));
    }

    /** Text form that {@link #parse} reads back to an equal spec. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Double> e : weights.entrySet()) {
            double w = e.getValue();
            if (!sb.isEmpty()) {
                sb.append(w < 0 ? "-" : "+");
            } else if (w < 0) {
                sb.append('-');
            }
            double a = Math.abs(w);
            if (a != 1.0) {
                sb.append(a == Math.rint(a) && a < 1e15 ? Long.toString((long) a) : Double.toString(a)).append('*');
            }
            sb.append(e.getKey());
        }
        return sb.toString();
    }
}
