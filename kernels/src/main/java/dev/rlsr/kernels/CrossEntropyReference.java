package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import java.util.Arrays;

/**
 * CPU reference and CPU implementation of {@link CrossEntropy}: the CPU backend's fp32 arithmetic (a max pass, a
 * Vector API sum of exponentials widened to double, {@code lse} in fp32), rows in parallel, on views
 * {@code (array, offset)}. The loss rows are summed in double in row order. Targets &lt; 0 are ignored (zero loss,
 * zero gradient row); a target &gt;= V is rejected (the GPU kernel, which cannot check device data on the host,
 * writes a NaN loss). The bf16 variant widens the logits and rounds the gradient to bf16.
 */
public final class CrossEntropyReference {
    private CrossEntropyReference() {
    }

    /**
     * {@code dLogits = gradScale * (softmax(logits) - onehot(target))} per row and the summed loss
     * {@code sum_n (lse[n] - logits[n, target[n]])}. {@code dLogits} may be {@code logits} at the same offset.
     *
     * @param logits    (N,V) at {@code lOff}
     * @param lOff      offset of logits
     * @param targets   (N) at {@code tOff}; negative = ignored
     * @param tOff      offset of targets
     * @param n         N
     * @param v         V
     * @param gradScale the gradient's factor
     * @param dLogits   (N,V) at {@code gOff}
     * @param gOff      offset of dLogits
     * @param rowLoss   (N) per-row losses at {@code rlOff}, or null
     * @param rlOff     offset of rowLoss
     * @return the sum of the row losses
     */
    public static double forwardBackward(float[] logits, int lOff, int[] targets, int tOff, int n, int v,
            float gradScale, float[] dLogits, int gOff, float[] rowLoss, int rlOff) {
        check(logits.length, lOff, targets, tOff, n, v, dLogits.length, gOff, rowLoss, rlOff);
        double[] partial = new double[n];
        CpuParallel.forRange(n, 4, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int off = lOff + r * v, go = gOff + r * v, t = targets[tOff + r];
                if (t < 0) {
                    Arrays.fill(dLogits, go, go + v, 0f);
                    continue;
                }
                float mx = CpuVec.max(logits, off, v);
                float lse = mx + (float) Math.log(CpuVec.sumExp(logits, off, v, mx));
                partial[r] = lse - logits[off + t];
                CpuVec.expScaled(logits, off, dLogits, go, v, lse, gradScale);
                dLogits[go + t] -= gradScale;
            }
        });
        double sum = 0;
        for (int r = 0; r < n; r++) {
            sum += partial[r];
            if (rowLoss != null) {
                rowLoss[rlOff + r] = (float) partial[r];
            }
        }
        return sum;
    }

    /**
     * bf16 (raw bits) logits and dLogits (rounded to bf16; may be the same array at the same offset).
     *
     * @param logits    (N,V) at {@code lOff}
     * @param lOff      offset of logits
     * @param targets   (N) at {@code tOff}; negative = ignored
     * @param tOff      offset of targets
     * @param n         N
     * @param v         V
     * @param gradScale the gradient's factor
     * @param dLogits   (N,V) at {@code gOff}
     * @param gOff      offset of dLogits
     * @param rowLoss   (N) per-row losses at {@code rlOff}, or null
     * @param rlOff     offset of rowLoss
     * @return the sum of the row losses
     */
    public static double forwardBackward(short[] logits, int lOff, int[] targets, int tOff, int n, int v,
            float gradScale, short[] dLogits, int gOff, float[] rowLoss, int rlOff) {
        check(logits.length, lOff, targets, tOff, n, v, dLogits.length, gOff, rowLoss, rlOff);
        int count = n * v;
        float[] x = RmsNormReference.widen(logits, lOff, count);
        float[] g = new float[count];
        double sum = forwardBackward(x, 0, targets, tOff, n, v, gradScale, g, 0, rowLoss, rlOff);
        RmsNormReference.narrow(g, dLogits, gOff);
        return sum;
    }

    private static void check(int lLen, int lOff, int[] targets, int tOff, int n, int v, int gLen, int gOff,
            float[] rowLoss, int rlOff) {
        Rows.checkPositive("n (rows)", n);
        Rows.checkPositive("v (vocabulary)", v);
        long count = (long) n * v;
        Rows.checkRange("logits", lLen, lOff, count, "(N,V)");
        Rows.checkRange("dLogits", gLen, gOff, count, "(N,V)");
        Rows.checkRange("targets", targets.length, tOff, n, "(N)");
        if (rowLoss != null) {
            Rows.checkRange("rowLoss", rowLoss.length, rlOff, n, "(N)");
        }
        for (int r = 0; r < n; r++) {
            int t = targets[tOff + r];
            if (t >= v) {
                throw new IllegalArgumentException("target " + t + " at row " + r + " outside [0, " + v + ")");
            }
        }
    }
}
