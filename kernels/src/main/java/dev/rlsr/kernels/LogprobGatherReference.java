package dev.rlsr.kernels;

/**
 * CPU reference and CPU implementation of {@link LogprobGather}: logits (N,V) -> logp (N), lse (N), and the
 * backward {@code dlogits = (onehot(target) - softmax(logits/T)) * dlogp / T} (chain rule through logp).
 * Double accumulation, two passes per row (max, then sum of exponentials), rows in parallel. Targets &lt; 0 are
 * ignored (logp 0, zero gradient row); a target &gt;= V is rejected here (the GPU kernel, which cannot check device data on the host, writes NaN).
 */
public final class LogprobGatherReference {
    private LogprobGatherReference() {
    }

    /**
     * {@code logits (N,V)} fp32, {@code targets (N)} -> {@code logp (N)}, {@code lse (N)} of {@code logits / T},
     * written into the arrays given.
     *
     * @param logits      {@code (N,V)}, exactly N*V elements
     * @param targets     {@code (N)} token ids in [0, V), or &lt; 0 to ignore a row (logp 0)
     * @param n           N, rows (&gt; 0)
     * @param v           V, the vocabulary size (&gt; 0)
     * @param temperature T, finite and &gt; 0
     * @param logp        {@code (N)}, receives {@code log softmax(logits/T)[target]}
     * @param lse         {@code (N)}, receives {@code logsumexp(logits/T)}
     * @throws IllegalArgumentException for a wrong size, a bad temperature or a target &gt;= V
     */
    public static void forward(float[] logits, int[] targets, int n, int v, float temperature, float[] logp, float[] lse) {
        check(logits.length, targets, n, v, temperature);
        Rows.checkLength("logp", logp.length, n, "(N)");
        Rows.checkLength("lse", lse.length, n, "(N)");
        double invT = 1.0 / temperature;
        Rows.forEach(n, 2L * v, r -> {
            int o = r * v;
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                max = Math.max(max, logits[o + i]);
            }
            double sum = 0;
            if (max != Float.NEGATIVE_INFINITY) {
                for (int i = 0; i < v; i++) {
                    sum += Math.exp((logits[o + i] - (double) max) * invT);
                }
            }
            double l = max * invT + Math.log(sum);
            lse[r] = (float) l;
            int t = targets[r];
            logp[r] = t < 0 ? 0f : (float) (logits[o + t] * invT - l);
        });
    }

    /**
     * As {@link #forward(float[], int[], int, int, float, float[], float[])} for bf16 {@code logits (N,V)} given as raw
     * bits (widened exactly).
     *
     * @param logits      {@code (N,V)} bf16 bits, exactly N*V elements
     * @param targets     {@code (N)} token ids in [0, V), or &lt; 0 to ignore a row
     * @param n           N, rows (&gt; 0)
     * @param v           V, the vocabulary size (&gt; 0)
     * @param temperature T, finite and &gt; 0
     * @param logp        {@code (N)}, receives {@code log softmax(logits/T)[target]}
     * @param lse         {@code (N)}, receives {@code logsumexp(logits/T)}
     * @throws IllegalArgumentException for a wrong size, a bad temperature or a target &gt;= V
     */
    public static void forward(short[] logits, int[] targets, int n, int v, float temperature, float[] logp, float[] lse) {
        check(logits.length, targets, n, v, temperature);
        forward(BF16.toFloat(logits), targets, n, v, temperature, logp, lse);
    }

    /**
     * {@code dlogits (N,V) = (onehot(target) - softmax(logits/T)) * dlogp / T} from the saved lse, {@code dlogp} being
     * dL/dlogp; {@code dlogits} may be {@code logits} itself (in place).
     *
     * @param logits      {@code (N,V)}, exactly N*V elements
     * @param targets     {@code (N)} token ids in [0, V), or &lt; 0 for a zero gradient row
     * @param lse         {@code (N)} from {@link #forward} at the same temperature
     * @param dlogp       {@code (N)}, the upstream gradient dL/dlogp
     * @param n           N, rows (&gt; 0)
     * @param v           V, the vocabulary size (&gt; 0)
     * @param temperature T, finite and &gt; 0
     * @param dlogits     {@code (N,V)}, receives the gradient
     * @throws IllegalArgumentException for a wrong size, a bad temperature or a target &gt;= V
     */
    public static void backward(float[] logits, int[] targets, float[] lse, float[] dlogp, int n, int v,
            float temperature, float[] dlogits) {
        check(logits.length, targets, n, v, temperature);
        Rows.checkLength("lse", lse.length, n, "(N)");
        Rows.checkLength("dlogp", dlogp.length, n, "(N)");
        Rows.checkLength("dlogits", dlogits.length, (long) n * v, "(N,V)");
        double invT = 1.0 / temperature;
        Rows.forEach(n, 2L * v, r -> {
            int o = r * v;
            int t = targets[r];
            if (t < 0) {
                java.util.Arrays.fill(dlogits, o, o + v, 0f);
                return;
            }
            double l = lse[r];
            double scale = dlogp[r] * invT;
            for (int i = 0; i < v; i++) {
                double p = Math.exp(logits[o + i] * invT - l);
                dlogits[o + i] = (float) (((i == t ? 1.0 : 0.0) - p) * scale);
            }
        });
    }

    /**
     * As {@link #backward(float[], int[], float[], float[], int, int, float, float[])} for bf16 {@code logits (N,V)}
     * and {@code dlogits (N,V)} as raw bits (they may be the same array); the gradient is computed in fp32 and rounded
     * to bf16 once.
     *
     * @param logits      {@code (N,V)} bf16 bits, exactly N*V elements
     * @param targets     {@code (N)} token ids in [0, V), or &lt; 0 for a zero gradient row
     * @param lse         {@code (N)} from {@link #forward} at the same temperature
     * @param dlogp       {@code (N)}, the upstream gradient dL/dlogp
     * @param n           N, rows (&gt; 0)
     * @param v           V, the vocabulary size (&gt; 0)
     * @param temperature T, finite and &gt; 0
     * @param dlogits     {@code (N,V)} bf16 bits, receives the gradient
     * @throws IllegalArgumentException for a wrong size, a bad temperature or a target &gt;= V
     */
    public static void backward(short[] logits, int[] targets, float[] lse, float[] dlogp, int n, int v,
            float temperature, short[] dlogits) {
        check(logits.length, targets, n, v, temperature);
        Rows.checkLength("dlogits", dlogits.length, (long) n * v, "(N,V)");
        float[] grad = new float[n * v];
        backward(BF16.toFloat(logits), targets, lse, dlogp, n, v, temperature, grad);
        for (int i = 0; i < grad.length; i++) {
            dlogits[i] = BF16.fromFloat(grad[i]);
        }
    }

    private static void check(int logitsLength, int[] targets, int n, int v, float temperature) {
        Rows.checkPositive("n (rows)", n);
        Rows.checkPositive("v (vocabulary)", v);
        Rows.checkLength("logits", logitsLength, (long) n * v, "(N,V)");
        Rows.checkLength("targets", targets.length, n, "(N)");
        if (!(temperature > 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and > 0, got " + temperature);
        }
        for (int r = 0; r < n; r++) {
            if (targets[r] >= v) {
                throw new IllegalArgumentException("targets[" + r + "] = " + targets[r] + " is outside the vocabulary [0, "
                        + v + "); use a negative target to ignore a row");
            }
        }
    }
}
