package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import java.util.Arrays;


/**
 * CPU reference and CPU implementation of {@link LogprobGather}: logits (N,V) -&gt; logp (N), lse (N) of
 * {@code logits / T}, and the backward {@code dlogits = (onehot(target) - softmax(logits/T)) * dlogp / T} (chain rule
 * through logp). The CPU backend's arithmetic, rows in parallel: at T = 1 fp32 (a max pass, a Vector API sum of
 * {@code exp(x - max)} in fp32 lanes widened to double, {@code lse} in fp32); at any other T the tempered
 * distribution in double ({@code exp((x - max) / T)} summed in double, lse and logp rounded once). Targets &lt; 0 are ignored
 * (logp 0, zero gradient row, as is a row whose dlogp is 0); a target &gt;= V is rejected here (the GPU kernel, which
 * cannot check device data on the host, writes NaN). The bf16 variants widen the logits and round the gradient.
 */
public final class LogprobGatherReference {
    private LogprobGatherReference() {
    }

    /**
     * logits (N,V) fp32, targets (N) -&gt; logp (N), lse (N) (of logits / temperature), on views.
     *
     * @param logits      (N,V) at {@code lOff}
     * @param lOff        offset of logits
     * @param targets     (N) at {@code tOff}; negative = ignored
     * @param tOff        offset of targets
     * @param n           N
     * @param v           V
     * @param temperature T &gt; 0
     * @param logp        (N) at {@code lpOff}
     * @param lpOff       offset of logp
     * @param lse         (N) at {@code lsOff}
     * @param lsOff       offset of lse
     */
    public static void forward(float[] logits, int lOff, int[] targets, int tOff, int n, int v, float temperature,
            float[] logp, int lpOff, float[] lse, int lsOff) {
        check(logits.length, lOff, targets, tOff, n, v, temperature);
        Rows.checkRange("logp", logp.length, lpOff, n, "(N)");
        Rows.checkRange("lse", lse.length, lsOff, n, "(N)");
        double invT = 1.0 / temperature;
        CpuParallel.forRange(n, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = lOff + r * v, t = targets[tOff + r];
                float mx = CpuVec.max(logits, off, v);
                if (temperature == 1f) {
                    float l = mx + (float) Math.log(CpuVec.sumExp(logits, off, v, mx));
                    lse[lsOff + r] = l;
                    logp[lpOff + r] = t < 0 ? 0f : logits[off + t] - l;
                } else {
                    // logits / T in double: lse and logp of the tempered distribution
                    double sum = 0;
                    for (int i = 0; i < v; i++) {
                        sum += Math.exp((logits[off + i] - (double) mx) * invT);
                    }
                    double lt = mx * invT + Math.log(sum);
                    lse[lsOff + r] = (float) lt;
                    logp[lpOff + r] = t < 0 ? 0f : (float) (logits[off + t] * invT - lt);
                }
            }
        });
    }

    /**
     * logits (N,V) fp32, targets (N) -&gt; logp (N), lse (N) (of logits / temperature), whole arrays.
     *
     * @param logits      (N,V)
     * @param targets     (N); negative = ignored
     * @param n           N
     * @param v           V
     * @param temperature T &gt; 0
     * @param logp        (N)
     * @param lse         (N)
     */
    public static void forward(float[] logits, int[] targets, int n, int v, float temperature, float[] logp, float[] lse) {
        exact(logits.length, targets, n, v);
        Rows.checkLength("logp", logp.length, n, "(N)");
        Rows.checkLength("lse", lse.length, n, "(N)");
        forward(logits, 0, targets, 0, n, v, temperature, logp, 0, lse, 0);
    }

    /**
     * bf16 logits (N,V) as raw bits, whole arrays.
     *
     * @param logits      (N,V) bf16 bits
     * @param targets     (N); negative = ignored
     * @param n           N
     * @param v           V
     * @param temperature T &gt; 0
     * @param logp        (N)
     * @param lse         (N)
     */
    public static void forward(short[] logits, int[] targets, int n, int v, float temperature, float[] logp, float[] lse) {
        exact(logits.length, targets, n, v);
        forward(BF16.toFloat(logits), targets, n, v, temperature, logp, lse);
    }

    /**
     * dlogits (N,V) = (onehot(target) - softmax(logits/T)) * dlogp / T from the saved lse, dlogp being dL/dlogp; on
     * views. {@code dlogits} may be {@code logits} at the same offset (in place).
     *
     * @param logits      (N,V) at {@code lOff}
     * @param lOff        offset of logits
     * @param targets     (N) at {@code tOff}; negative = ignored
     * @param tOff        offset of targets
     * @param lse         (N) the forward's lse at {@code lsOff}
     * @param lsOff       offset of lse
     * @param dlogp       (N) upstream gradient at {@code dOff}
     * @param dOff        offset of dlogp
     * @param n           N
     * @param v           V
     * @param temperature T &gt; 0
     * @param dlogits     (N,V) at {@code gOff}
     * @param gOff        offset of dlogits
     */
    public static void backward(float[] logits, int lOff, int[] targets, int tOff, float[] lse, int lsOff,
            float[] dlogp, int dOff, int n, int v, float temperature, float[] dlogits, int gOff) {
        check(logits.length, lOff, targets, tOff, n, v, temperature);
        Rows.checkRange("lse", lse.length, lsOff, n, "(N)");
        Rows.checkRange("dlogp", dlogp.length, dOff, n, "(N)");
        Rows.checkRange("dlogits", dlogits.length, gOff, (long) n * v, "(N,V)");
        float invT = 1f / temperature;
        CpuParallel.forRange(n, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = lOff + r * v, go = gOff + r * v, t = targets[tOff + r];
                float g = dlogp[dOff + r];
                if (t < 0 || g == 0f) {
                    Arrays.fill(dlogits, go, go + v, 0f);
                    continue;
                }
                if (temperature == 1f) {
                    CpuVec.expScaled(logits, off, dlogits, go, v, lse[lsOff + r], -g);
                    dlogits[go + t] += g;
                } else {
                    double l = lse[lsOff + r];
                    for (int i = 0; i < v; i++) {
                        dlogits[go + i] = (float) (-g * invT * Math.exp(logits[off + i] * (double) invT - l));
                    }
                    dlogits[go + t] += g * invT;
                }
            }
        });
    }

    /**
     * dlogits (N,V), whole arrays; {@code dlogits} may be {@code logits} itself (in place).
     *
     * @param logits      (N,V)
     * @param targets     (N); negative = ignored
     * @param lse         (N) the forward's lse
     * @param dlogp       (N) upstream gradient
     * @param n           N
     * @param v           V
     * @param temperature T &gt; 0
     * @param dlogits     (N,V)
     */
    public static void backward(float[] logits, int[] targets, float[] lse, float[] dlogp, int n, int v,
            float temperature, float[] dlogits) {
        exact(logits.length, targets, n, v);
        Rows.checkLength("lse", lse.length, n, "(N)");
        Rows.checkLength("dlogp", dlogp.length, n, "(N)");
        Rows.checkLength("dlogits", dlogits.length, (long) n * v, "(N,V)");
        backward(logits, 0, targets, 0, lse, 0, dlogp, 0, n, v, temperature, dlogits, 0);
    }

    /**
     * bf16 logits (N,V) and dlogits (N,V) as raw bits (may be the same array); the gradient is rounded to bf16.
     *
     * @param logits      (N,V) bf16 bits
     * @param targets     (N); negative = ignored
     * @param lse         (N) the forward's lse
     * @param dlogp       (N) upstream gradient
     * @param n           N
     * @param v           V
     * @param temperature T &gt; 0
     * @param dlogits     (N,V) bf16 bits
     */
    public static void backward(short[] logits, int[] targets, float[] lse, float[] dlogp, int n, int v,
            float temperature, short[] dlogits) {
        exact(logits.length, targets, n, v);
        Rows.checkLength("dlogits", dlogits.length, (long) n * v, "(N,V)");
        float[] grad = new float[n * v];
        backward(BF16.toFloat(logits), targets, lse, dlogp, n, v, temperature, grad);
        for (int i = 0; i < grad.length; i++) {
            dlogits[i] = BF16.fromFloat(grad[i]);
        }
    }

    private static void exact(int logitsLength, int[] targets, int n, int v) {
        Rows.checkPositive("n (rows)", n);
        Rows.checkPositive("v (vocabulary)", v);
        Rows.checkLength("logits", logitsLength, (long) n * v, "(N,V)");
        Rows.checkLength("targets", targets.length, n, "(N)");
    }

    private static void check(int logitsLength, int lOff, int[] targets, int tOff, int n, int v, float temperature) {
        Rows.checkPositive("n (rows)", n);
        Rows.checkPositive("v (vocabulary)", v);
        Rows.checkRange("logits", logitsLength, lOff, (long) n * v, "(N,V)");
        Rows.checkRange("targets", targets.length, tOff, n, "(N)");
        if (!(temperature > 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and > 0, got " + temperature);
        }
        for (int r = 0; r < n; r++) {
            if (targets[tOff + r] >= v) {
                throw new IllegalArgumentException("targets[" + r + "] = " + targets[tOff + r]
                        + " is outside the vocabulary [0, " + v + "); use a negative target to ignore a row");
            }
        }
    }
}
