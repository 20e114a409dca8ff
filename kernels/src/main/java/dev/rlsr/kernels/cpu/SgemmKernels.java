package dev.rlsr.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The inner pieces of {@link Sgemm}: panel packing and the register-blocked micro-kernels.
 *
 * <p>Packed layouts (Goto/BLIS). An A block {@code op(A)[i0:i0+mc, p0:p0+kc]} becomes slivers of MR rows; sliver
 * s starts at {@code s*MR*kc} and holds, for each p, MR consecutive row values (rows past mc are zero). A B block
 * {@code op(B)[p0:p0+kc, j0:j0+nc]} becomes panels of NR columns; panel q starts at {@code q*NR*kc} and holds, for
 * each p, NR consecutive column values (columns past nc are zero). Packing is where the transposes are absorbed,
 * so the kernel only ever sees one layout, and the zero padding lets the kernel always compute full tiles.
 *
 * <p>The kernels keep every accumulator in a local variable and are written out by hand (generated): a vector
 * passed to a method that C2 does not inline is boxed, and a boxed accumulator in the k loop costs ~20x.
 */
final class SgemmKernels {
    private SgemmKernels() {}

    /** 512-bit where the CPU has AVX-512, else the widest the CPU has. */
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int VL = S.length();
    /**
     * Rows of the register tile: 12 x 2 vectors = 24 accumulators + 2 B vectors + 1 broadcast needs 27 of the 32
     * registers AVX-512 (and SVE/NEON) has; with 16 registers (AVX2) the 6 x 2 tile is the one that fits.
     */
    static final int MR = VL >= 16 ? 12 : 6;
    /** Columns of the register tile: two vectors. */
    static final int NR = 2 * VL;

    /** Computes one full MR x NR tile: {@code C = alpha * Apanel(MR,kc) * Bpanel(kc,NR) + beta * C}. */
    static void kernel(int kc, float[] ap, int ao, float[] bp, int bo,
                       float[] c, int co, int ldc, float alpha, float beta) {
        if (MR == 12) {
            kernel12x2(kc, ap, ao, bp, bo, c, co, ldc, alpha, beta);
        } else {
            kernel6x2(kc, ap, ao, bp, bo, c, co, ldc, alpha, beta);
        }
    }

    /**
     * Computes a tile that is cut by the edge of C (mr < MR or nr < NR): the full tile goes to {@code tile}
     * (MR x NR scratch) and only its mr x nr corner is merged into C.
     */
    static void edgeKernel(int kc, float[] ap, int ao, float[] bp, int bo, float[] tile,
                           float[] c, int co, int ldc, int mr, int nr, float alpha, float beta) {
        kernel(kc, ap, ao, bp, bo, tile, 0, NR, 1f, 0f);
        for (int i = 0; i < mr; i++) {
            int ci = co + i * ldc;
            int ti = i * NR;
            if (beta == 0f) {
                for (int j = 0; j < nr; j++) {
                    c[ci + j] = alpha * tile[ti + j];
                }
            } else {
                for (int j = 0; j < nr; j++) {
                    c[ci + j] = alpha * tile[ti + j] + beta * c[ci + j];
                }
            }
        }
    }

    /**
     * Packs {@code op(A)[i0:i0+mc, p0:p0+kc]} into MR-row slivers (see the class comment). Without transA, A(i,p)
     * is {@code a[aOff + i*lda + p]}; with it, {@code a[aOff + p*lda + i]}.
     */
    static void packA(boolean transA, float[] a, int aOff, int lda, int i0, int mc, int p0, int kc, float[] ap) {
        if (transA) {
            packATransposed(a, aOff, lda, i0, mc, p0, kc, ap);
            return;
        }
        for (int s = 0; s < mc; s += MR) {
            int mr = Math.min(MR, mc - s);
            int base = s * kc;
            if (mr == MR) {
                // one source row at a time: sequential reads, stride-MR writes. (p outer reads MR rows that are
                // lda apart, which for power-of-two lda all land in one L1 set: measured 2-3x slower.)
                int src = aOff + (i0 + s) * lda + p0;
                for (int r = 0; r < MR; r++) {
                    int q = src + r * lda;
                    int d = base + r;
                    for (int p = 0; p < kc; p++) {
                        ap[d + p * MR] = a[q + p];
                    }
                }
            } else {
                for (int p = 0; p < kc; p++) {
                    int d = base + p * MR;
                    int q = aOff + (i0 + s) * lda + p0 + p;
                    for (int r = 0; r < mr; r++) {
                        ap[d + r] = a[q + r * lda];
                    }
                    for (int r = mr; r < MR; r++) {
                        ap[d + r] = 0f;
                    }
                }
            }
        }
    }

    /**
     * transA: A is stored (K,M), so row p of the stored block is contiguous across all mc rows of op(A). Reading it
     * whole (p outer) keeps the reads sequential; walking one sliver at a time down p would stride by lda and, with
     * power-of-two lda, hit the same L1 set on every read.
     */
    private static void packATransposed(float[] a, int aOff, int lda, int i0, int mc, int p0, int kc, float[] ap) {
        int full = mc - mc % MR;
        for (int p = 0; p < kc; p++) {
            int q = aOff + (p0 + p) * lda + i0;
            int d = p * MR;
            int s = 0;
            if (VL >= MR && p < kc - 1) {
                // one vector per sliver row: its VL - MR extra lanes land on (s, p+1), which the next p
                // overwrites (p == kc-1 would spill into the next sliver, already packed: scalar below)
                for (; s < full && q + s + VL <= a.length; s += MR) {
                    FloatVector.fromArray(S, a, q + s).intoArray(ap, s * kc + d);
                }
            }
            for (; s < full; s += MR) {
                int ds = s * kc + d;
                int qs = q + s;
                for (int r = 0; r < MR; r++) {
                    ap[ds + r] = a[qs + r];
                }
            }
            if (full < mc) {
                int ds = full * kc + d;
                int qs = q + full;
                int mr = mc - full;
                for (int r = 0; r < mr; r++) {
                    ap[ds + r] = a[qs + r];
                }
                for (int r = mr; r < MR; r++) {
                    ap[ds + r] = 0f;
                }
            }
        }
    }

    /**
     * Packs NR-column panels [q0, q1) of {@code op(B)[p0:p0+kc, j0:j0+nc]} (see the class comment) into bp from
     * bpOff on. Without transB,
     * B(p,j) is {@code b[bOff + p*ldb + j]}; with it, {@code b[bOff + j*ldb + p]}.
     */
    static void packB(boolean transB, float[] b, int bOff, int ldb, int p0, int kc, int j0, int nc,
                      int q0, int q1, float[] bp, int bpOff) {
        int[] rowStride = null;
        if (transB) {
            rowStride = new int[VL];
            for (int t = 0; t < VL; t++) {
                rowStride[t] = t * ldb;
            }
        }
        for (int q = q0; q < q1; q++) {
            int js = q * NR;
            int nr = Math.min(NR, nc - js);
            int base = bpOff + q * NR * kc;
            if (!transB) {
                int src = bOff + p0 * ldb + j0 + js;
                if (nr == NR) {
                    for (int p = 0; p < kc; p++) {
                        int s = src + p * ldb;
                        int d = base + p * NR;
                        FloatVector.fromArray(S, b, s).intoArray(bp, d);
                        FloatVector.fromArray(S, b, s + VL).intoArray(bp, d + VL);
                    }
                } else {
                    for (int p = 0; p < kc; p++) {
                        int s = src + p * ldb;
                        int d = base + p * NR;
                        for (int j = 0; j < nr; j++) {
                            bp[d + j] = b[s + j];
                        }
                        for (int j = nr; j < NR; j++) {
                            bp[d + j] = 0f;
                        }
                    }
                }
            } else if (nr == NR) {
                // B is (N,K): column p of the panel is NR values ldb apart; a gather per vector reads them
                // (measured ~1.4x faster than the scalar transpose below)
                int s0 = bOff + (j0 + js) * ldb + p0;
                int s1 = s0 + VL * ldb;
                for (int p = 0; p < kc; p++) {
                    int d = base + p * NR;
                    FloatVector.fromArray(S, b, s0 + p, rowStride, 0).intoArray(bp, d);
                    FloatVector.fromArray(S, b, s1 + p, rowStride, 0).intoArray(bp, d + VL);
                }
            } else {
                for (int j = 0; j < nr; j++) {
                    int s = bOff + (j0 + js + j) * ldb + p0;
                    int d = base + j;
                    for (int p = 0; p < kc; p++) {
                        bp[d + p * NR] = b[s + p];
                    }
                }
                if (nr < NR) {
                    for (int p = 0; p < kc; p++) {
                        int d = base + p * NR;
                        for (int j = nr; j < NR; j++) {
                            bp[d + j] = 0f;
                        }
                    }
                }
            }
        }
    }

    /** The 12 x 2·VL register tile: 24 accumulators live in vector registers for the whole k loop. */
    static void kernel12x2(int kc, float[] ap, int ao, float[] bp, int bo,
            float[] c, int co, int ldc, float alpha, float beta) {
        FloatVector c0_0 = FloatVector.zero(S);
        FloatVector c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0, c2_1 = c0_0, c3_0 = c0_0;
        FloatVector c3_1 = c0_0, c4_0 = c0_0;
        FloatVector c4_1 = c0_0, c5_0 = c0_0, c5_1 = c0_0, c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0;
        FloatVector c7_1 = c0_0, c8_0 = c0_0;
        FloatVector c8_1 = c0_0, c9_0 = c0_0, c9_1 = c0_0, c10_0 = c0_0, c10_1 = c0_0, c11_0 = c0_0, c11_1 = c0_0;
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * 2 * VL;
            int ai = ao + p * 12;
            FloatVector b0 = FloatVector.fromArray(S, bp, bi);
            FloatVector b1 = FloatVector.fromArray(S, bp, bi + VL);
            FloatVector a0 = FloatVector.broadcast(S, ap[ai + 0]);
            c0_0 = a0.fma(b0, c0_0); c0_1 = a0.fma(b1, c0_1);
            FloatVector a1 = FloatVector.broadcast(S, ap[ai + 1]);
            c1_0 = a1.fma(b0, c1_0); c1_1 = a1.fma(b1, c1_1);
            FloatVector a2 = FloatVector.broadcast(S, ap[ai + 2]);
            c2_0 = a2.fma(b0, c2_0); c2_1 = a2.fma(b1, c2_1);
            FloatVector a3 = FloatVector.broadcast(S, ap[ai + 3]);
            c3_0 = a3.fma(b0, c3_0); c3_1 = a3.fma(b1, c3_1);
            FloatVector a4 = FloatVector.broadcast(S, ap[ai + 4]);
            c4_0 = a4.fma(b0, c4_0); c4_1 = a4.fma(b1, c4_1);
            FloatVector a5 = FloatVector.broadcast(S, ap[ai + 5]);
            c5_0 = a5.fma(b0, c5_0); c5_1 = a5.fma(b1, c5_1);
            FloatVector a6 = FloatVector.broadcast(S, ap[ai + 6]);
            c6_0 = a6.fma(b0, c6_0); c6_1 = a6.fma(b1, c6_1);
            FloatVector a7 = FloatVector.broadcast(S, ap[ai + 7]);
            c7_0 = a7.fma(b0, c7_0); c7_1 = a7.fma(b1, c7_1);
            FloatVector a8 = FloatVector.broadcast(S, ap[ai + 8]);
            c8_0 = a8.fma(b0, c8_0); c8_1 = a8.fma(b1, c8_1);
            FloatVector a9 = FloatVector.broadcast(S, ap[ai + 9]);
            c9_0 = a9.fma(b0, c9_0); c9_1 = a9.fma(b1, c9_1);
            FloatVector a10 = FloatVector.broadcast(S, ap[ai + 10]);
            c10_0 = a10.fma(b0, c10_0); c10_1 = a10.fma(b1, c10_1);
            FloatVector a11 = FloatVector.broadcast(S, ap[ai + 11]);
            c11_0 = a11.fma(b0, c11_0); c11_1 = a11.fma(b1, c11_1);
        }
        FloatVector va = FloatVector.broadcast(S, alpha);
        int r = co;
        if (beta == 0f) {
            // beta == 0 must not read C: it may hold NaN or garbage (BLAS semantics)
            c0_0.mul(va).intoArray(c, r); c0_1.mul(va).intoArray(c, r + VL); r += ldc;
            c1_0.mul(va).intoArray(c, r); c1_1.mul(va).intoArray(c, r + VL); r += ldc;
            c2_0.mul(va).intoArray(c, r); c2_1.mul(va).intoArray(c, r + VL); r += ldc;
            c3_0.mul(va).intoArray(c, r); c3_1.mul(va).intoArray(c, r + VL); r += ldc;
            c4_0.mul(va).intoArray(c, r); c4_1.mul(va).intoArray(c, r + VL); r += ldc;
            c5_0.mul(va).intoArray(c, r); c5_1.mul(va).intoArray(c, r + VL); r += ldc;
            c6_0.mul(va).intoArray(c, r); c6_1.mul(va).intoArray(c, r + VL); r += ldc;
            c7_0.mul(va).intoArray(c, r); c7_1.mul(va).intoArray(c, r + VL); r += ldc;
            c8_0.mul(va).intoArray(c, r); c8_1.mul(va).intoArray(c, r + VL); r += ldc;
            c9_0.mul(va).intoArray(c, r); c9_1.mul(va).intoArray(c, r + VL); r += ldc;
            c10_0.mul(va).intoArray(c, r); c10_1.mul(va).intoArray(c, r + VL); r += ldc;
            c11_0.mul(va).intoArray(c, r); c11_1.mul(va).intoArray(c, r + VL);
        } else {
            FloatVector vb = FloatVector.broadcast(S, beta);
            c0_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c0_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c1_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c1_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c2_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c2_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c3_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c3_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c4_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c4_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c5_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c5_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c6_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c6_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c7_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c7_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c8_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c8_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c9_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c9_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c10_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c10_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c11_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c11_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
        }
    }

    /** The 6 x 2·VL register tile: 12 accumulators live in vector registers for the whole k loop. */
    static void kernel6x2(int kc, float[] ap, int ao, float[] bp, int bo,
            float[] c, int co, int ldc, float alpha, float beta) {
        FloatVector c0_0 = FloatVector.zero(S);
        FloatVector c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0, c2_1 = c0_0, c3_0 = c0_0;
        FloatVector c3_1 = c0_0, c4_0 = c0_0;
        FloatVector c4_1 = c0_0, c5_0 = c0_0, c5_1 = c0_0;
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * 2 * VL;
            int ai = ao + p * 6;
            FloatVector b0 = FloatVector.fromArray(S, bp, bi);
            FloatVector b1 = FloatVector.fromArray(S, bp, bi + VL);
            FloatVector a0 = FloatVector.broadcast(S, ap[ai + 0]);
            c0_0 = a0.fma(b0, c0_0); c0_1 = a0.fma(b1, c0_1);
            FloatVector a1 = FloatVector.broadcast(S, ap[ai + 1]);
            c1_0 = a1.fma(b0, c1_0); c1_1 = a1.fma(b1, c1_1);
            FloatVector a2 = FloatVector.broadcast(S, ap[ai + 2]);
            c2_0 = a2.fma(b0, c2_0); c2_1 = a2.fma(b1, c2_1);
            FloatVector a3 = FloatVector.broadcast(S, ap[ai + 3]);
            c3_0 = a3.fma(b0, c3_0); c3_1 = a3.fma(b1, c3_1);
            FloatVector a4 = FloatVector.broadcast(S, ap[ai + 4]);
            c4_0 = a4.fma(b0, c4_0); c4_1 = a4.fma(b1, c4_1);
            FloatVector a5 = FloatVector.broadcast(S, ap[ai + 5]);
            c5_0 = a5.fma(b0, c5_0); c5_1 = a5.fma(b1, c5_1);
        }
        FloatVector va = FloatVector.broadcast(S, alpha);
        int r = co;
        if (beta == 0f) {
            // beta == 0 must not read C: it may hold NaN or garbage (BLAS semantics)
            c0_0.mul(va).intoArray(c, r); c0_1.mul(va).intoArray(c, r + VL); r += ldc;
            c1_0.mul(va).intoArray(c, r); c1_1.mul(va).intoArray(c, r + VL); r += ldc;
            c2_0.mul(va).intoArray(c, r); c2_1.mul(va).intoArray(c, r + VL); r += ldc;
            c3_0.mul(va).intoArray(c, r); c3_1.mul(va).intoArray(c, r + VL); r += ldc;
            c4_0.mul(va).intoArray(c, r); c4_1.mul(va).intoArray(c, r + VL); r += ldc;
            c5_0.mul(va).intoArray(c, r); c5_1.mul(va).intoArray(c, r + VL);
        } else {
            FloatVector vb = FloatVector.broadcast(S, beta);
            c0_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c0_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c1_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c1_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c2_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c2_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c3_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c3_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c4_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c4_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
            r += ldc;
            c5_0.fma(va, FloatVector.fromArray(S, c, r).mul(vb)).intoArray(c, r);
            c5_1.fma(va, FloatVector.fromArray(S, c, r + VL).mul(vb)).intoArray(c, r + VL);
        }
    }

}
