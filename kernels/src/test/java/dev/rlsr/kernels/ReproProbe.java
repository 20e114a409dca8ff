package dev.rlsr.kernels;

import dev.rlsr.kernels.cpu.CpuVec;
import dev.rlsr.kernels.cpu.Sgemm;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;

/**
 * Runs the CPU references whose vector code reduces lanes or takes exponentials on fixed seeded inputs and prints
 * one SHA-256 of every output bit: {@code java ReproProbe 0} computes once (meant for {@code -Xint}: the Vector API
 * as plain Java), {@code java ReproProbe N} repeats the computation N times first so that C2 compiles the loops
 * (the Vector API as intrinsics). {@link CompiledEqualsInterpretedTest} compares the two.
 */
public final class ReproProbe {
    private ReproProbe() {
    }

    public static void main(String[] args) throws Exception {
        int warm = Integer.parseInt(args[0]);
        for (int i = 0; i < warm; i++) {
            run();
        }
        System.out.println(HexFormat.of().formatHex(run()));
    }

    static byte[] run() throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        Random r = new Random(20261127L);
        float[] a = randn(r, 1000, 3f), b = randn(r, 1000, 1f);
        float[] o = new float[1000];
        put(md, (float) CpuVec.sumExp(a, 3, 997, 0.5f), CpuVec.dot(a, 1, b, 2, 990), CpuVec.sumSquares(b, 0, 1000));
        CpuVec.expScaled(a, 0, o, 0, 1000, 1f, 0.25f);
        put(md, o);

        // swiglu forward and backward
        float[] h = new float[1000], dg = new float[1000], du = new float[1000];
        SwigluReference.forward(a, 0, b, 0, h, 0, 1000);
        SwigluReference.backward(a, 0, b, 0, h, 0, dg, 0, du, 0, 1000);
        put(md, h, dg, du);
        float[] gl = new float[1000];
        GeluReference.forward(a, 0, gl, 0, 1000);
        put(md, gl);

        // rms norm and layer norm (rows of 48)
        int rows = 20, dim = 48;
        float[] x = randn(r, rows * dim, 2f), w = randn(r, dim, 1f), bias = randn(r, dim, 1f);
        float[] y = new float[rows * dim], rstd = new float[rows], dx = new float[rows * dim], dw = new float[dim];
        RmsNormReference.forward(x, 0, w, 0, 1e-6f, y, 0, rstd, 0, rows, dim);
        RmsNormReference.backward(randn(r, rows * dim, 1f), 0, x, 0, w, 0, rstd, 0, dx, 0, dw, 0, rows, dim, false);
        float[] ln = new float[rows * dim];
        LayerNormReference.forward(x, 0, w, 0, bias, 0, 1e-12f, ln, 0, rows, dim);
        put(md, y, rstd, dx, dw, ln);

        // matrix products: the one-to-four-row path (dot rows: B transposed) and the packed one
        float[] am = randn(r, 24 * 48, 1f), bm = randn(r, 40 * 48, 1f);
        float[] c1 = new float[3 * 40], c2 = new float[24 * 40];
        Sgemm.sgemm(false, true, 3, 40, 48, 1f, am, 0, 48, bm, 0, 48, 0f, c1, 0, 40);
        Sgemm.sgemm(false, true, 24, 40, 48, 1f, am, 0, 48, bm, 0, 48, 0f, c2, 0, 40);
        put(md, c1, c2);

        // causal attention forward and backward: B=1, T=40, H=2, KV heads 1, D=16
        int t = 40, hh = 2, kvh = 1, d = 16;
        float[] q = randn(r, t * hh * d, 1f), k = randn(r, t * kvh * d, 1f), v = randn(r, t * kvh * d, 1f);
        float[] out = new float[t * hh * d], lse = new float[hh * t];
        float scale = 0.25f;
        AttentionReference.forward(q, 0, k, 0, v, 0, out, 0, lse, 0, null, 0, 1, t, t, t, 0, hh, kvh, d, scale);
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        AttentionReference.backward(q, 0, k, 0, v, 0, out, 0, lse, 0, randn(r, out.length, 1f), 0, dq, 0, dk, 0, dv,
                0, null, 0, 1, t, t, t, 0, hh, kvh, d, scale);
        put(md, out, lse, dq, dk, dv);

        // log-probs at T = 1 and 0.7, and cross entropy, over a byte-sized vocabulary
        int n = 6, vocab = 300;
        float[] logits = randn(r, n * vocab, 4f);
        int[] targets = {1, 299, 17, -1, 0, 150};
        for (float temp : new float[] {1f, 0.7f}) {
            float[] logp = new float[n], lz = new float[n], dl = new float[n * vocab];
            LogprobGatherReference.forward(logits, 0, targets, 0, n, vocab, temp, logp, 0, lz, 0);
            LogprobGatherReference.backward(logits, 0, targets, 0, lz, 0, randn(r, n, 1f), 0, n, vocab, temp, dl, 0);
            put(md, logp, lz, dl);
        }
        float[] dce = new float[n * vocab], rowLoss = new float[n];
        double ce = CrossEntropyReference.forwardBackward(logits, 0, targets, 0, n, vocab, 0.5f, dce, 0, rowLoss, 0);
        put(md, dce, rowLoss);
        put(md, (float) ce);
        return md.digest();
    }

    private static float[] randn(Random r, int n, float s) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian() * s;
        }
        return x;
    }

    private static void put(MessageDigest md, float... xs) {
        ByteBuffer bb = ByteBuffer.allocate(4 * xs.length);
        for (float f : xs) {
            bb.putInt(Float.floatToRawIntBits(f));
        }
        md.update(bb.array());
    }

    private static void put(MessageDigest md, float[]... arrays) {
        for (float[] a : arrays) {
            put(md, a);
        }
    }
}
