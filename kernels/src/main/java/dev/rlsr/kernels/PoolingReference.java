package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import java.util.Arrays;

/**
 * CPU reference and CPU implementation of {@link Pooling}: the CPU backend's masked mean pooling (tokens summed in
 * order, the reciprocal of the clamped count rounded once from double) and L2 row normalisation, on views
 * {@code (array, offset)}. The bf16 variants widen x and round the output once.
 */
public final class PoolingReference {
    private static final int ROW_GRAIN = 16;

    private PoolingReference() {
    }

    /**
     * {@code pooled[b] = sum_{t: mask[b,t] != 0} x[b,t] / max(count, 1e-9)}.
     *
     * @param x      (B,T,C) at {@code xOff}
     * @param xOff   offset of x
     * @param mask   (B,T) at {@code mOff}, or null when every token counts
     * @param mOff   offset of mask
     * @param pooled (B,C) at {@code pOff}, overwritten
     * @param pOff   offset of pooled
     * @param batch  B
     * @param tokens T
     * @param width  C
     */
    public static void meanPool(float[] x, int xOff, int[] mask, int mOff, float[] pooled, int pOff, int batch,
            int tokens, int width) {
        checkPool(x.length, xOff, mask, mOff, pooled.length, pOff, batch, tokens, width);
        int c = width, t = tokens;
        CpuParallel.forEach(batch, b -> {
            int po = pOff + b * c;
            Arrays.fill(pooled, po, po + c, 0f);
            int count = 0;
            for (int j = 0; j < t; j++) {
                if (mask == null || mask[mOff + b * t + j] != 0) {
                    count++;
                    CpuVec.axpy(1f, x, xOff + (b * t + j) * c, pooled, po, c);
                }
            }
            CpuVec.scaleInto((float) (1.0 / Math.max(count, 1e-9)), pooled, po, pooled, po, c);
        });
    }

    /**
     * bf16 (raw bits) x and pooled (rounded once).
     *
     * @param x      (B,T,C) at {@code xOff}
     * @param xOff   offset of x
     * @param mask   (B,T) at {@code mOff}, or null when every token counts
     * @param mOff   offset of mask
     * @param pooled (B,C) at {@code pOff}, overwritten
     * @param pOff   offset of pooled
     * @param batch  B
     * @param tokens T
     * @param width  C
     */
    public static void meanPool(short[] x, int xOff, int[] mask, int mOff, short[] pooled, int pOff, int batch,
            int tokens, int width) {
        checkPool(x.length, xOff, mask, mOff, pooled.length, pOff, batch, tokens, width);
        float[] p = new float[batch * width];
        meanPool(RmsNormReference.widen(x, xOff, batch * tokens * width), 0, mask, mOff, p, 0, batch, tokens, width);
        RmsNormReference.narrow(p, pooled, pOff);
    }

    /**
     * In place: every row of x (R,W) divided by {@code max(||row||, eps)} (the norm's square in fp32 lanes, its root
     * rounded once).
     *
     * @param x     (R,W) at {@code xOff}
     * @param xOff  offset of x
     * @param rows  R
     * @param width W
     * @param eps   the smallest norm divided by
     */
    public static void l2NormalizeRows(float[] x, int xOff, int rows, int width, float eps) {
        checkL2(x.length, xOff, rows, width);
        int w = width;
        CpuParallel.forRange(rows, ROW_GRAIN, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int o = xOff + r * w;
                float norm = (float) Math.sqrt(CpuVec.sumSquares(x, o, w));
                CpuVec.scaleInto(1f / Math.max(norm, eps), x, o, x, o, w);
            }
        });
    }

    /**
     * bf16 (raw bits) in place (the scaled row rounded once).
     *
     * @param x     (R,W) at {@code xOff}
     * @param xOff  offset of x
     * @param rows  R
     * @param width W
     * @param eps   the smallest norm divided by
     */
    public static void l2NormalizeRows(short[] x, int xOff, int rows, int width, float eps) {
        checkL2(x.length, xOff, rows, width);
        float[] f = RmsNormReference.widen(x, xOff, rows * width);
        l2NormalizeRows(f, 0, rows, width, eps);
        RmsNormReference.narrow(f, x, xOff);
    }

    private static void checkPool(int xLen, int xOff, int[] mask, int mOff, int pLen, int pOff, int batch, int tokens,
            int width) {
        Rows.checkPositive("batch (B)", batch);
        Rows.checkPositive("tokens (T)", tokens);
        Rows.checkPositive("width (C)", width);
        Rows.checkRange("x", xLen, xOff, (long) batch * tokens * width, "(B,T,C)");
        Rows.checkRange("pooled", pLen, pOff, (long) batch * width, "(B,C)");
        if (mask != null) {
            Rows.checkRange("mask", mask.length, mOff, (long) batch * tokens, "(B,T)");
        }
    }

    private static void checkL2(int xLen, int xOff, int rows, int width) {
        Rows.checkPositive("rows (R)", rows);
        Rows.checkPositive("width (W)", width);
        Rows.checkRange("x", xLen, xOff, (long) rows * width, "(R,W)");
    }
}
