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

    /** logits (N,V) fp32, targets (N) -> logp (N), lse (N) (of logits / temperature), written into the arrays given. */
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

    /** bf16 logits (N,V) as raw bits. */
    public static void forward(short[] logits, int[] targets, int n, int v, float temperature, float[] logp, float[] lse) {
        check(logits.length, targets, n, v, temperature);
        forward(BF16.toFloat(logits), targets, n, v, temperature, logp, lse);
    }

    /**
     * dlogits (N,V) = (onehot(target) - softmax(logits/T)) * dlogp / T from the saved lse, dlogp being dL/dlogp;
     * {@code dlogits} may be {@code logits} itself (in place).
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

    /** bf16 logits (N,V) and dlogits (N,V) as raw bits (may be the same array); the gradient is rounded to bf16. */
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
