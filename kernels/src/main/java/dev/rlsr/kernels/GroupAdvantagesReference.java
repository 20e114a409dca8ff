package dev.rlsr.kernels;

/**
 * CPU reference and CPU implementation of {@link GroupAdvantages}: rewards (P,G) -> advantages (P,G) in double.
 * {@code (r - mean_g) / (std_g + eps)} with the sample standard deviation (G-1), or {@code r - mean_g} without
 * std scaling (Dr. GRPO); G = 1 gives 0.
 */
public final class GroupAdvantagesReference {
    private GroupAdvantagesReference() {
    }

    /**
     * {@code rewards (P,G)} -> {@code advantages (P,G)}, statistics per group in double.
     *
     * @param rewards    {@code (P,G)}, exactly P*G elements
     * @param p          P, groups (&gt; 0)
     * @param g          G, group size (&gt; 0)
     * @param scaleByStd true: {@code (r - mean_g) / (std_g + eps)} with the sample std; false: {@code r - mean_g}
     * @param eps        added to the std, finite and &gt;= 0
     * @return the advantages, {@code (P,G)}
     * @throws IllegalArgumentException for a wrong size or a bad eps
     */
    public static float[] compute(float[] rewards, int p, int g, boolean scaleByStd, float eps) {
        Rows.checkPositive("p (groups)", p);
        Rows.checkPositive("g (group size)", g);
        Rows.checkLength("rewards", rewards.length, (long) p * g, "(P,G)");
        if (!(eps >= 0) || Float.isInfinite(eps)) {
            throw new IllegalArgumentException("eps must be finite and >= 0, got " + eps);
        }
        float[] out = new float[rewards.length];
        Rows.forEach(p, 3L * g, q -> {
            int o = q * g;
            double sum = 0;
            for (int i = 0; i < g; i++) {
                sum += rewards[o + i];
            }
            double mean = sum / g;
            double ss = 0;
            for (int i = 0; i < g; i++) {
                double dev = rewards[o + i] - mean;
                ss += dev * dev;
            }
            double std = g > 1 ? Math.sqrt(ss / (g - 1)) : 0.0;
            for (int i = 0; i < g; i++) {
                double dev = rewards[o + i] - mean;
                out[o + i] = (float) (scaleByStd ? dev / (std + eps) : dev);
            }
        });
        return out;
    }
}
