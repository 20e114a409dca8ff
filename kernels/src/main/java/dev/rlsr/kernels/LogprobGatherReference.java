package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * CPU reference and CPU implementation of {@link LogprobGather}: logits (N,V) -&gt; logp (N), lse (N) of
 * {@code logits / T}, and the backward {@code dlogits = (onehot(target) - softmax(logits/T)) * dlogp / T} (chain rule
 * through logp). The CPU backend's fp32 arithmetic: a max pass, a Vector API sum of {@code exp((x - max) / T)} in fp32
 * lanes widened to double, {@code lse} in fp32, rows in parallel; at T = 1 every multiplication by {@code 1/T} is
 * exact, so the results are those of the backend's temperature-free code bit for bit. Targets &lt; 0 are ignored
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
        float invT = 1f / temperature;
        CpuParallel.forRange(n, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = lOff + r * v, t = targets[tOff + r];
                float mx = CpuVec.max(logits, off, v);
                float l = mx * invT + (float) Math.log(sumExp(logits, off, v, mx, invT));
                lse[lsOff + r] = l;
                logp[lpOff + r] = t < 0 ? 0f : logits[off + t] * invT - l;
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
                expScaled(logits, off, dlogits, go, v, invT, lse[lsOff + r], -g * invT);
                dlogits[go + t] += g * invT;
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

    // CpuVec.sumExp of (a - shift) * invT: sum(exp((a - shift) / T)) in fp32 lanes, then double
    private static double sumExp(float[] a, int ao, int n, float shift, float invT) {
        int i = 0;
        double s = 0;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            FloatVector vs = FloatVector.broadcast(S, shift);
            FloatVector vt = FloatVector.broadcast(S, invT);
            for (int ub = S.loopBound(n); i < ub; i += L) {
                acc = acc.add(FloatVector.fromArray(S, a, ao + i).sub(vs).mul(vt).lanewise(VectorOperators.EXP));
            }
            s = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            s += Math.exp((a[ao + i] - shift) * invT);
        }
        return s;
    }

    // CpuVec.expScaled of a * invT: out = scale * exp(a / T - shift); out may alias a
    private static void expScaled(float[] a, int ao, float[] out, int oo, int n, float invT, float shift, float scale) {
        int i = 0;
        FloatVector vt = FloatVector.broadcast(S, invT);
        FloatVector vs = FloatVector.broadcast(S, shift);
        FloatVector vc = FloatVector.broadcast(S, scale);
        for (int ub = S.loopBound(n); i < ub; i += L) {
            FloatVector.fromArray(S, a, ao + i).mul(vt).sub(vs).lanewise(VectorOperators.EXP).mul(vc)
                    .intoArray(out, oo + i);
        }
        for (; i < n; i++) {
            out[oo + i] = scale * (float) Math.exp(a[ao + i] * invT - shift);
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
