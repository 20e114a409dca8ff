package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * {@link RopeReference} against double formulas.
 * <ul>
 * <li>table: the angle is by definition the fp32 product; cos/sin of it in double with StrictMath (fdlibm, a
 * different implementation from Math's intrinsics) rounded to float: within 1 float ulp (both are within 1 double
 * ulp of the exact value, so they round to the same float except next to a rounding boundary).</li>
 * <li>apply fp32: three fp32 roundings (two products, one sum) of terms at most |x1*c| + |x2*s|:
 * |got - exact| &lt;= 2 * 2^-24 * (|x1*c| + |x2*s|).</li>
 * <li>apply bf16: the fp32 result rounded once more to 8 bits: + 2^-8 |exact| (half a bf16 ulp, relative, plus the
 * fp32 error it may push over).</li>
 * </ul>
 */
class RopeReferenceTest {
    private static final long SEED = 29L;

    static float[] invFreq(int half, double theta) {
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            inv[i] = (float) (1.0 / Math.pow(theta, 2.0 * i / (2 * half)));
        }
        return inv;
    }

    @Test
    void tableIsCosAndSinOfTheFp32Angle() {
        Random r = new Random(SEED);
        for (int half : new int[] {1, 3, 32, 64}) {
            int n = 77;
            int[] pos = new int[n + 2];
            for (int i = 0; i < pos.length; i++) {
                pos[i] = i % 7 == 0 ? r.nextInt(131072) : r.nextInt(4096);
            }
            float[] inv = invFreq(half, 1_000_000.0);
            float[] table = new float[1 + n * 2 * half];
            RopeReference.table(pos, 2, n, inv, 0, half, table, 1);
            for (int row = 0; row < n; row++) {
                for (int i = 0; i < half; i++) {
                    float angle = (float) pos[2 + row] * inv[i];
                    float c = (float) StrictMath.cos(angle), s = (float) StrictMath.sin(angle);
                    float gc = table[1 + row * 2 * half + i], gs = table[1 + row * 2 * half + half + i];
                    assertEquals(c, gc, Math.ulp(c), "cos half=" + half + " row " + row + " i " + i);
                    assertEquals(s, gs, Math.ulp(s), "sin half=" + half + " row " + row + " i " + i);
                }
            }
        }
    }

    @Test
    void applyRotatesEachHead() {
        Random r = new Random(SEED + 1);
        for (int[] s : new int[][] {{5, 3, 2}, {17, 2, 64}, {9, 14, 64}, {4, 1, 130}}) {
            int n = s[0], heads = s[1], dim = s[2], half = dim / 2;
            int stride = heads * dim + 5, off = 3;
            int[] pos = new int[n];
            for (int i = 0; i < n; i++) {
                pos[i] = r.nextInt(30000);
            }
            float[] table = new float[n * dim];
            RopeReference.table(pos, 0, n, invFreq(half, 10000.0), 0, half, table, 0);
            float[] x = GpuSupport.randn(r, off + (n - 1) * stride + heads * dim + 2, 1f);
            float[] x0 = x.clone();
            short[] xb = Bf16Exact.nearest(x);
            short[] xb0 = xb.clone();
            for (boolean inverse : new boolean[] {false, true}) {
                float[] y = x0.clone();
                short[] yb = xb0.clone();
                RopeReference.apply(y, off, stride, table, 0, n, heads, dim, inverse);
                RopeReference.apply(yb, off, stride, table, 0, n, heads, dim, inverse);
                double sg = inverse ? -1 : 1;
                for (int row = 0; row < n; row++) {
                    for (int h = 0; h < heads; h++) {
                        for (int i = 0; i < half; i++) {
                            int b = off + row * stride + h * dim;
                            double c = table[row * dim + i], sn = sg * table[row * dim + half + i];
                            double x1 = x0[b + i], x2 = x0[b + half + i];
                            double e1 = x1 * c - x2 * sn, e2 = x2 * c + x1 * sn;
                            double t1 = Math.abs(x1 * c) + Math.abs(x2 * sn), t2 = Math.abs(x2 * c) + Math.abs(x1 * sn);
                            String where = "n=" + n + " heads=" + heads + " dim=" + dim + " inverse=" + inverse
                                    + " row " + row + " head " + h + " i " + i;
                            assertEquals(e1, y[b + i], 2 * 0x1p-24 * t1, where);
                            assertEquals(e2, y[b + half + i], 2 * 0x1p-24 * t2, where);
                            double b1 = Bf16Exact.value(xb0[b + i]), b2 = Bf16Exact.value(xb0[b + half + i]);
                            double f1 = b1 * c - b2 * sn, f2 = b2 * c + b1 * sn;
                            double u1 = Math.abs(b1 * c) + Math.abs(b2 * sn), u2 = Math.abs(b2 * c) + Math.abs(b1 * sn);
                            assertEquals(f1, Bf16Exact.value(yb[b + i]), 0x1p-8 * Math.abs(f1) + 3 * 0x1p-24 * u1,
                                    "bf16 " + where);
                            assertEquals(f2, Bf16Exact.value(yb[b + half + i]), 0x1p-8 * Math.abs(f2) + 3 * 0x1p-24 * u2,
                                    "bf16 " + where);
                        }
                    }
                    // the gap between rows is untouched
                    if (row < n - 1) {
                        for (int j = heads * dim; j < stride; j++) {
                            assertEquals(x0[off + row * stride + j], y[off + row * stride + j]);
                            assertEquals(xb0[off + row * stride + j], yb[off + row * stride + j]);
                        }
                    }
                }
            }
            // the inverse undoes the forward (a rotation, up to rounding)
            float[] y = x0.clone();
            RopeReference.apply(y, off, stride, table, 0, n, heads, dim, false);
            RopeReference.apply(y, off, stride, table, 0, n, heads, dim, true);
            for (int k = off; k < off + (n - 1) * stride + heads * dim; k++) {
                assertTrue(Math.abs(y[k] - x0[k]) <= 1e-5 * (1 + Math.abs(x0[k])) * 4, "round trip at " + k);
            }
        }
    }
}
