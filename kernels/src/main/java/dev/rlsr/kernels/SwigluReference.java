package dev.rlsr.kernels;

import static dev.rlsr.kernels.cpu.CpuVec.L;
import static dev.rlsr.kernels.cpu.CpuVec.S;

import dev.rlsr.kernels.cpu.CpuParallel;
import dev.rlsr.kernels.cpu.CpuVec;

import jdk.incubator.vector.FloatVector;

/**
 * CPU reference and CPU implementation of {@link Swiglu} on {@code (array, offset)} views: CpuBackend's
 * {@code swiglu} and {@code swigluBackward} with the same vector code and splits (the vector lanes and the scalar
 * tail use {@link CpuVec#exp}, which agree bit for bit). Outputs are distinct from the inputs here. bf16 variants widen, run
 * the fp32 code and round the outputs once.
 */
public final class SwigluReference {
    private SwigluReference() {
    }

    /**
     * {@code h = silu(g) * u} over n elements.
     *
     * @param g    gate
     * @param gOff its offset
     * @param u    up
     * @param uOff its offset
     * @param h    output
     * @param hOff its offset
     * @param n    elements
     */
    public static void forward(float[] g, int gOff, float[] u, int uOff, float[] h, int hOff, int n) {
        Views.check("g", g.length, gOff, n);
        Views.check("u", u.length, uOff, n);
        Views.check("h", h.length, hOff, n);
        CpuParallel.forRange(n, CpuParallel.MIN_TASK_WORK, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector x = FloatVector.fromArray(S, g, gOff + i);
                FloatVector sig = one.div(one.add(CpuVec.exp(x.neg())));
                x.mul(sig).mul(FloatVector.fromArray(S, u, uOff + i)).intoArray(h, hOff + i);
            }
            for (; i < hi; i++) {
                float x = g[gOff + i];
                float sig = 1f / (1f + CpuVec.exp(-x));
                h[hOff + i] = x * sig * u[uOff + i];
            }
        });
    }

    /**
     * bf16 forward (bits).
     *
     * @param g    gate
     * @param gOff its offset
     * @param u    up
     * @param uOff its offset
     * @param h    output
     * @param hOff its offset
     * @param n    elements
     */
    public static void forward(short[] g, int gOff, short[] u, int uOff, short[] h, int hOff, int n) {
        float[] hf = new float[n];
        forward(Views.widen(g, gOff, n), 0, Views.widen(u, uOff, n), 0, hf, 0, n);
        Views.narrow(hf, h, hOff);
    }

    /**
     * {@code du = dh * silu(g)}, {@code dg = dh * u * silu'(g)} over n elements, overwritten.
     *
     * @param g     gate
     * @param gOff  its offset
     * @param u     up
     * @param uOff  its offset
     * @param dh    upstream gradient
     * @param dhOff its offset
     * @param dg    gradient of g
     * @param dgOff its offset
     * @param du    gradient of u
     * @param duOff its offset
     * @param n     elements
     */
    public static void backward(float[] g, int gOff, float[] u, int uOff, float[] dh, int dhOff, float[] dg, int dgOff,
            float[] du, int duOff, int n) {
        Views.check("g", g.length, gOff, n);
        Views.check("u", u.length, uOff, n);
        Views.check("dh", dh.length, dhOff, n);
        Views.check("dg", dg.length, dgOff, n);
        Views.check("du", du.length, duOff, n);
        CpuParallel.forRange(n, CpuParallel.MIN_TASK_WORK, (lo, hi) -> {
            int i = lo;
            FloatVector one = FloatVector.broadcast(S, 1f);
            for (int ub = lo + S.loopBound(hi - lo); i < ub; i += L) {
                FloatVector x = FloatVector.fromArray(S, g, gOff + i);
                FloatVector up = FloatVector.fromArray(S, u, uOff + i);
                FloatVector d = FloatVector.fromArray(S, dh, dhOff + i);
                FloatVector sig = one.div(one.add(CpuVec.exp(x.neg())));
                FloatVector silu = x.mul(sig);
                d.mul(silu).intoArray(du, duOff + i);
                // d silu/dx = sig * (1 + x * (1 - sig))
                d.mul(up).mul(sig.mul(one.add(x.mul(one.sub(sig))))).intoArray(dg, dgOff + i);
            }
            for (; i < hi; i++) {
                float x = g[gOff + i];
                float sig = 1f / (1f + CpuVec.exp(-x));
                du[duOff + i] = dh[dhOff + i] * x * sig;
                dg[dgOff + i] = dh[dhOff + i] * u[uOff + i] * sig * (1f + x * (1f - sig));
            }
        });
    }

    /**
     * bf16 backward (bits).
     *
     * @param g     gate
     * @param gOff  its offset
     * @param u     up
     * @param uOff  its offset
     * @param dh    upstream gradient
     * @param dhOff its offset
     * @param dg    gradient of g
     * @param dgOff its offset
     * @param du    gradient of u
     * @param duOff its offset
     * @param n     elements
     */
    public static void backward(short[] g, int gOff, short[] u, int uOff, short[] dh, int dhOff, short[] dg, int dgOff,
            short[] du, int duOff, int n) {
        float[] dgf = new float[n], duf = new float[n];
        backward(Views.widen(g, gOff, n), 0, Views.widen(u, uOff, n), 0, Views.widen(dh, dhOff, n), 0, dgf, 0, duf, 0,
                n);
        Views.narrow(dgf, dg, dgOff);
        Views.narrow(duf, du, duOff);
    }
}
