package dev.rlsr.trainer.reward;

import java.util.List;
import java.util.Locale;

/**
 * {@code exact}: 1 when the normalised response equals the normalised reference, else 0.
 *
 * <p>Normalisation ({@link #normalize}): lowercase (Unicode, root locale); strip, at both ends, every
 * whitespace and Unicode punctuation character (categories Pc, Pd, Ps, Pe, Pi, Pf, Po: so {@code "Paris."},
 * {@code "\"paris\""} and {@code " Paris!"} all become {@code paris}); collapse inner whitespace runs to one
 * space. Inner punctuation is kept ({@code "3.5"} differs from {@code "35"}). Two blank strings match.
 */
public final class ExactMatchReward implements Reward {
    public static final String NAME = "exact";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public double[] score(List<RewardInput> batch) {
        double[] out = new double[batch.size()];
        for (int i = 0; i < out.length; i++) {
            RewardInput in = batch.get(i);
            out[i] = normalize(in.response()).equals(normalize(in.reference())) ? 1.0 : 0.0;
        }
        return out;
    }

    public static String normalize(String s) {
        String collapsed = String.join(" ", PyStrings.split(s.toLowerCase(Locale.ROOT)));
        int start = 0;
        int end = collapsed.length();
        while (start < end && isStrippable(collapsed.codePointAt(start))) {
            start += Character.charCount(collapsed.codePointAt(start));
        }
        while (end > start && isStrippable(collapsed.codePointBefore(end))) {
            end -= Character.charCount(collapsed.codePointBefore(end));
        }
        return collapsed.substring(start, end);
    }

    private static boolean isStrippable(int cp) {
        if (PyStrings.isPySpace(cp)) {
            return true;
        }
        return switch (Character.getType(cp)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }
}
