package dev.rlsr.kernels;

/**
 * CPU reference and CPU implementation of {@link CosineSimilarity}: same contract, double accumulation.
 *
 * <p>{@code cos = dot(a,b) / max(||a|| * ||b||, eps)}; rows are independent and run in parallel when large.
 */
public final class CosineSimilarityReference {
    private CosineSimilarityReference() {
    }

    /**
     * {@code a (N,D)}, {@code b (N,D)} -> {@code (N)}, eps {@link CosineSimilarity#DEFAULT_EPS}.
     *
     * @param a rows {@code (N,D)}, exactly N*D elements
     * @param b rows {@code (N,D)}, exactly N*D elements
     * @param n N, rows (&gt; 0)
     * @param d D, the embedding size (&gt; 0)
     * @return {@code cos(a[i], b[i])} for each row, {@code (N)}
     * @throws IllegalArgumentException for a non-positive size or an array of the wrong length
     */
    public static float[] pairs(float[] a, float[] b, int n, int d) {
        return pairs(a, b, n, d, CosineSimilarity.DEFAULT_EPS);
    }

    /**
     * {@code a (N,D)}, {@code b (N,D)} -> {@code (N)}, {@code dot / max(|a||b|, eps)}.
     *
     * @param a   rows {@code (N,D)}, exactly N*D elements
     * @param b   rows {@code (N,D)}, exactly N*D elements
     * @param n   N, rows (&gt; 0)
     * @param d   D, the embedding size (&gt; 0)
     * @param eps lower bound of the denominator
     * @return {@code cos(a[i], b[i])} for each row, {@code (N)}
     * @throws IllegalArgumentException for a non-positive size or an array of the wrong length
     */
    public static float[] pairs(float[] a, float[] b, int n, int d, float eps) {
        Rows.checkPositive("n", n);
        Rows.checkPositive("d", d);
        Rows.checkLength("a", a.length, (long) n * d, "(N,D)");
        Rows.checkLength("b", b.length, (long) n * d, "(N,D)");
        return run(a, b, n, 1, d, eps);
    }

    /**
     * bf16 {@code a (N,D)}, {@code b (N,D)} given as raw bits -> {@code (N)} fp32; the inputs are widened exactly.
     *
     * @param a   rows {@code (N,D)}, bf16 bits, exactly N*D elements
     * @param b   rows {@code (N,D)}, bf16 bits, exactly N*D elements
     * @param n   N, rows (&gt; 0)
     * @param d   D, the embedding size (&gt; 0)
     * @param eps lower bound of the denominator
     * @return {@code cos(a[i], b[i])} for each row, {@code (N)}
     * @throws IllegalArgumentException for a non-positive size or an array of the wrong length
     */
    public static float[] pairs(short[] a, short[] b, int n, int d, float eps) {
        Rows.checkLength("a", a.length, (long) n * d, "(N,D)");
        Rows.checkLength("b", b.length, (long) n * d, "(N,D)");
        return pairs(BF16.toFloat(a), BF16.toFloat(b), n, d, eps);
    }

    /**
     * {@code ref (P,D)}, {@code resp (P,G,D)} -> {@code (P,G)}: each of the G responses of a prompt against its
     * reference, eps {@link CosineSimilarity#DEFAULT_EPS}.
     *
     * @param ref  references {@code (P,D)}, exactly P*D elements
     * @param resp responses {@code (P,G,D)}, exactly P*G*D elements
     * @param p    P, prompts (&gt; 0)
     * @param g    G, responses per prompt (&gt; 0)
     * @param d    D, the embedding size (&gt; 0)
     * @return {@code cos(ref[p], resp[p][g])}, {@code (P,G)}
     * @throws IllegalArgumentException for a non-positive size or an array of the wrong length
     */
    public static float[] againstReference(float[] ref, float[] resp, int p, int g, int d) {
        return againstReference(ref, resp, p, g, d, CosineSimilarity.DEFAULT_EPS);
    }

    /**
     * {@code ref (P,D)}, {@code resp (P,G,D)} -> {@code (P,G)} with an explicit eps.
     *
     * @param ref  references {@code (P,D)}, exactly P*D elements
     * @param resp responses {@code (P,G,D)}, exactly P*G*D elements
     * @param p    P, prompts (&gt; 0)
     * @param g    G, responses per prompt (&gt; 0)
     * @param d    D, the embedding size (&gt; 0)
     * @param eps  lower bound of the denominator
     * @return {@code cos(ref[p], resp[p][g])}, {@code (P,G)}
     * @throws IllegalArgumentException for a non-positive size or an array of the wrong length
     */
    public static float[] againstReference(float[] ref, float[] resp, int p, int g, int d, float eps) {
        Rows.checkPositive("p", p);
        Rows.checkPositive("g", g);
        Rows.checkPositive("d", d);
        Rows.checkLength("ref", ref.length, (long) p * d, "(P,D)");
        Rows.checkLength("resp", resp.length, (long) p * g * d, "(P,G,D)");
        return run(ref, resp, p * g, g, d, eps);
    }

    /**
     * bf16 {@code ref (P,D)}, {@code resp (P,G,D)} given as raw bits -> {@code (P,G)} fp32.
     *
     * @param ref  references {@code (P,D)}, bf16 bits, exactly P*D elements
     * @param resp responses {@code (P,G,D)}, bf16 bits, exactly P*G*D elements
     * @param p    P, prompts (&gt; 0)
     * @param g    G, responses per prompt (&gt; 0)
     * @param d    D, the embedding size (&gt; 0)
     * @param eps  lower bound of the denominator
     * @return {@code cos(ref[p], resp[p][g])}, {@code (P,G)}
     * @throws IllegalArgumentException for a non-positive size or an array of the wrong length
     */
    public static float[] againstReference(short[] ref, short[] resp, int p, int g, int d, float eps) {
        Rows.checkLength("ref", ref.length, (long) p * d, "(P,D)");
        Rows.checkLength("resp", resp.length, (long) p * g * d, "(P,G,D)");
        return againstReference(BF16.toFloat(ref), BF16.toFloat(resp), p, g, d, eps);
    }

    // output row i pairs a row (i / group) with b row i, like the kernel
    private static float[] run(float[] a, float[] b, int rows, int group, int d, float eps) {
        float[] out = new float[rows];
        Rows.forEach(rows, 3L * d, i -> {
            int ao = (i / group) * d;
            int bo = i * d;
            // two chains per sum so the loop is not bound by one dependent add
            double ab0 = 0, ab1 = 0, aa0 = 0, aa1 = 0, bb0 = 0, bb1 = 0;
            int k = 0;
            for (; k + 1 < d; k += 2) {
                double x0 = a[ao + k], y0 = b[bo + k], x1 = a[ao + k + 1], y1 = b[bo + k + 1];
                ab0 += x0 * y0;
                aa0 += x0 * x0;
                bb0 += y0 * y0;
                ab1 += x1 * y1;
                aa1 += x1 * x1;
                bb1 += y1 * y1;
            }
            if (k < d) {
                double x = a[ao + k], y = b[bo + k];
                ab0 += x * y;
                aa0 += x * x;
                bb0 += y * y;
            }
            double denom = Math.max(Math.sqrt(aa0 + aa1) * Math.sqrt(bb0 + bb1), eps);
            out[i] = (float) ((ab0 + ab1) / denom);
        });
        return out;
    }
}
