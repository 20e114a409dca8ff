package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaStream;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The attention part of a graph-replayed decode step: {@link CopyRows#appendAt} of the new key, value and key-mask
 * rows at the device length, {@link Elementwise#addI32} of the length and the positions, and {@link
 * Attention#decodeAt} at the new length, captured once as a CUDA graph and replayed with a different device length
 * each time. Two copies of the decode state start equal; each step the host writes new inputs (q, k, v of the new
 * token), replays the graph on one copy and runs the same calls eagerly on the other: the two must agree bit for bit
 * (same kernels, same arguments), and the graph copy must match a host model of the step (the appends through
 * {@link CopyRowsReference}, the length and positions counted on the host, the attention through {@link
 * AttentionReference#decodeAt} within the tolerances of {@link AttentionGpuTest}).
 *
 * <p>Lengths replayed: growth over a 64-key split boundary (63, 64, 65, with the decode splits sized from kStride 131),
 * the host resetting the length to 16 and to 0 (L = 17, L = 1), a fresh prefill to kStride - 1 then L = kStride,
 * and one step past the capacity: the append writes nothing and the attention reads the length clamped to kStride.
 * Cache rows past the length hold NaN and the mask rows past it -1 until the append writes them.
 */
@Tag("gpu")
class DecodeGraphGpuTest {
    private static final int BATCH = 3;
    private static final int K_STRIDE = 131;
    private static final double OUT_ATOL = 2e-6, OUT_RTOL = 2e-6, BF16_RTOL = 1.0 / 128;

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void replayedStepMatchesEagerStepsF32() {
        run(DType.F32, 4, 2, 128, 7000);
    }

    @Test
    void replayedStepMatchesEagerStepsBf16() {
        run(DType.BF16, 14, 2, 64, 7100);
    }

    /** One copy of the decode state on the device: caches, mask, length, positions, outputs, workspace. */
    private record State(long k, long v, long mask, long len, long pos, long out, long lse, long ws) {
    }

    /** The host model of the decode state. */
    private static final class Host {
        float[] k;
        float[] v;
        int[] mask;
        int len;
        int[] pos = new int[BATCH];
    }

    private void run(DType dtype, int heads, int kvHeads, int headDim, long seed) {
        int kw = kvHeads * headDim, qw = heads * headDim, e = dtype.bytes();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        Random r = new Random(seed);
        long wsBytes = Attention.decodeWorkspaceBytes(BATCH, 1, heads, headDim);
        String tag = dtype + " H=" + heads + " Hkv=" + kvHeads + " D=" + headDim + " kStride=" + K_STRIDE;
        try (GpuSupport.Mem m = new GpuSupport.Mem(); CudaStream stream = CudaStream.create()) {
            long st = stream.handle();
            long q = m.alloc((long) BATCH * qw * e), kNew = m.alloc((long) BATCH * kw * e);
            long vNew = m.alloc((long) BATCH * kw * e), ones = m.upload(new int[] {1, 1, 1});
            State[] states = new State[2];
            for (int i = 0; i < 2; i++) {
                states[i] = new State(m.alloc((long) BATCH * K_STRIDE * kw * e),
                        m.alloc((long) BATCH * K_STRIDE * kw * e), m.alloc(4L * BATCH * K_STRIDE), m.alloc(4),
                        m.alloc(4L * BATCH), m.alloc((long) BATCH * qw * e), m.alloc(4L * BATCH * heads),
                        m.alloc(wsBytes));
            }
            State graphState = states[0], eager = states[1];
            Host host = new Host();
            prefill(host, states, r, 62, kw, dtype);

            // the first step runs eagerly: it checks the eager path and loads every kernel before the capture
            // (loading a module is not a stream operation and has no place in a graph)
            float[][] in = newToken(r, qw, kw, dtype, q, kNew, vNew);
            step(eager, q, kNew, vNew, ones, dtype, heads, kvHeads, headDim, scale, wsBytes, st);
            hostStep(host, in, kw, dtype, heads, kvHeads, headDim, scale);
            stream.synchronize();
            assertState("eager step, L=" + host.len + " " + tag, seed, eager, host, in, dtype, heads, qw, kw);
            // bring the graph copy level, by the same eager step
            step(graphState, q, kNew, vNew, ones, dtype, heads, kvHeads, headDim, scale, wsBytes, st);
            stream.synchronize();

            CudaDriver.streamBeginCapture(st);
            step(graphState, q, kNew, vNew, ones, dtype, heads, kvHeads, headDim, scale, wsBytes, st);
            long graph = CudaDriver.streamEndCapture(st);
            long exec = CudaDriver.graphInstantiate(graph);
            try {
                stream.synchronize();
                assertEquals(host.len, readInts(graphState.len(), 1)[0], "capture runs nothing: the length is as it was");
                // lengths after each replay: 64, 65 (over the split boundary); reset to 16 -> 17; reset to 0 -> 1;
                // prefill to kStride - 1 -> kStride; past the capacity -> kStride + 1 (clamped reads, no write)
                int[] resetTo = {-1, -1, 16, 0, -2, -1};
                for (int i = 0; i < resetTo.length; i++) {
                    if (resetTo[i] == -2) {
                        prefill(host, states, r, K_STRIDE - 1, kw, dtype);
                    } else if (resetTo[i] >= 0) {
                        host.len = resetTo[i];
                        for (State s : states) {
                            CudaDriver.memcpyHtoD(s.len(), MemorySegment.ofArray(new int[] {resetTo[i]}), 4);
                        }
                    }
                    in = newToken(r, qw, kw, dtype, q, kNew, vNew);
                    CudaDriver.graphLaunch(exec, st);
                    step(eager, q, kNew, vNew, ones, dtype, heads, kvHeads, headDim, scale, wsBytes, st);
                    hostStep(host, in, kw, dtype, heads, kvHeads, headDim, scale);
                    stream.synchronize();
                    String what = "replay " + i + ", L=" + host.len + " " + tag;
                    assertSameState(what, graphState, eager, dtype, heads, qw, kw);
                    assertState(what, seed, graphState, host, in, dtype, heads, qw, kw);
                }
            } finally {
                CudaDriver.graphExecDestroy(exec);
                CudaDriver.graphDestroy(graph);
            }
        }
    }

    /** The captured step: append k, v and the mask row at *len, advance len and the positions, attend at *len. */
    private static void step(State s, long q, long kNew, long vNew, long ones, DType dtype, int heads, int kvHeads,
            int headDim, float scale, long wsBytes, long stream) {
        int kw = kvHeads * headDim;
        CopyRows.appendAt(kNew, s.k(), s.len(), BATCH, K_STRIDE, kw, dtype, stream);
        CopyRows.appendAt(vNew, s.v(), s.len(), BATCH, K_STRIDE, kw, dtype, stream);
        CopyRows.appendAt(ones, s.mask(), s.len(), BATCH, K_STRIDE, 1, DType.I32, stream);
        Elementwise.addI32(s.len(), 1, 1, stream);
        Elementwise.addI32(s.pos(), BATCH, 1, stream);
        Attention.decodeAt(q, s.k(), s.v(), s.out(), s.lse(), s.mask(), s.ws(), wsBytes, dtype, BATCH, K_STRIDE,
                heads, kvHeads, headDim, scale, s.len(), stream);
    }

    /** The host model of {@link #step}: the row index is the length before the step; the attention reads after. */
    private static void hostStep(Host h, float[][] in, int kw, DType dtype, int heads, int kvHeads, int headDim,
            float scale) {
        int row = h.len;
        if (row >= 0 && row < K_STRIDE) { // past the capacity the kernel writes nothing (the reference would throw)
            CopyRowsReference.appendAt(in[1], 0, h.k, 0, row, BATCH, K_STRIDE, kw);
            CopyRowsReference.appendAt(in[2], 0, h.v, 0, row, BATCH, K_STRIDE, kw);
            CopyRowsReference.appendAt(new int[] {1, 1, 1}, 0, h.mask, 0, row, BATCH, K_STRIDE, 1);
        }
        ElementwiseReference.addI32(h.pos, 0, BATCH, 1);
        h.len++;
    }

    /** A new prefill of {@code rows} rows in every copy and the host model: rows past it NaN, mask -1 (unread). */
    private static void prefill(Host h, State[] states, Random r, int rows, int kw, DType dtype) {
        int n = BATCH * K_STRIDE * kw;
        h.k = DeviceArrays.held(GpuSupport.randn(r, n, 1f), dtype);
        h.v = DeviceArrays.held(GpuSupport.randn(r, n, 1f), dtype);
        h.mask = new int[BATCH * K_STRIDE];
        Arrays.fill(h.mask, -1);
        for (int b = 0; b < BATCH; b++) {
            Arrays.fill(h.k, (b * K_STRIDE + rows) * kw, (b + 1) * K_STRIDE * kw, Float.NaN);
            Arrays.fill(h.v, (b * K_STRIDE + rows) * kw, (b + 1) * K_STRIDE * kw, Float.NaN);
            // batch 0 unpadded, batch 1 padded up to its last prefill row, batch 2 a random left pad
            int pad = b == 0 ? 0 : b == 1 ? rows - 1 : r.nextInt(rows);
            for (int j = 0; j < rows; j++) {
                h.mask[b * K_STRIDE + j] = j >= pad ? 1 : 0;
            }
            h.pos[b] = rows - pad;
        }
        h.len = rows;
        for (State s : states) {
            put(s.k(), h.k, dtype);
            put(s.v(), h.v, dtype);
            CudaDriver.memcpyHtoD(s.mask(), MemorySegment.ofArray(h.mask), 4L * h.mask.length);
            CudaDriver.memcpyHtoD(s.len(), MemorySegment.ofArray(new int[] {rows}), 4);
            CudaDriver.memcpyHtoD(s.pos(), MemorySegment.ofArray(h.pos), 4L * BATCH);
        }
    }

    /** New q, k, v of the token (as the dtype holds them), written to the device inputs; returns {q, k, v}. */
    private static float[][] newToken(Random r, int qw, int kw, DType dtype, long q, long kNew, long vNew) {
        float[][] x = {DeviceArrays.held(GpuSupport.randn(r, BATCH * qw, 1f), dtype),
                DeviceArrays.held(GpuSupport.randn(r, BATCH * kw, 1f), dtype),
                DeviceArrays.held(GpuSupport.randn(r, BATCH * kw, 1f), dtype)};
        put(q, x[0], dtype);
        put(kNew, x[1], dtype);
        put(vNew, x[2], dtype);
        return x;
    }

    private static void put(long dst, float[] x, DType dtype) {
        if (dtype == DType.F32) {
            GpuSupport.put(dst, x);
        } else {
            GpuSupport.put(dst, BF16.fromFloat(x));
        }
    }

    private static float[] get(long src, int n, DType dtype) {
        return dtype == DType.F32 ? GpuSupport.getF32(src, n) : BF16.toFloat(GpuSupport.getBf16(src, n));
    }

    private static int[] readInts(long src, int n) {
        CudaDriver.contextSynchronize();
        int[] out = new int[n];
        CudaDriver.memcpyDtoH(MemorySegment.ofArray(out), src, 4L * n);
        return out;
    }

    /** Graph copy == eager copy, bit for bit, in every tensor of the state. */
    private static void assertSameState(String what, State g, State e, DType dtype, int heads, int qw, int kw) {
        int kn = BATCH * K_STRIDE * kw;
        assertArrayEquals(get(e.out(), BATCH * qw, dtype), get(g.out(), BATCH * qw, dtype), what + ": out");
        assertArrayEquals(GpuSupport.getF32(e.lse(), BATCH * heads), GpuSupport.getF32(g.lse(), BATCH * heads),
                what + ": lse");
        assertArrayEquals(get(e.k(), kn, dtype), get(g.k(), kn, dtype), what + ": key cache");
        assertArrayEquals(get(e.v(), kn, dtype), get(g.v(), kn, dtype), what + ": value cache");
        assertArrayEquals(readInts(e.mask(), BATCH * K_STRIDE), readInts(g.mask(), BATCH * K_STRIDE), what + ": mask");
        assertArrayEquals(readInts(e.len(), 1), readInts(g.len(), 1), what + ": length");
        assertArrayEquals(readInts(e.pos(), BATCH), readInts(g.pos(), BATCH), what + ": positions");
    }

    /** A device copy against the host model: caches, mask, length, positions exactly; out and lse within tolerance. */
    private static void assertState(String what, long seed, State s, Host h, float[][] in, DType dtype, int heads,
            int qw, int kw) {
        int kn = BATCH * K_STRIDE * kw;
        assertArrayEquals(h.k, get(s.k(), kn, dtype), what + ": key cache");
        assertArrayEquals(h.v, get(s.v(), kn, dtype), what + ": value cache");
        assertArrayEquals(h.mask, readInts(s.mask(), BATCH * K_STRIDE), what + ": mask");
        assertEquals(h.len, readInts(s.len(), 1)[0], what + ": length");
        assertArrayEquals(h.pos, readInts(s.pos(), BATCH), what + ": positions");
        int L = Math.min(h.len, K_STRIDE); // the kernel's clamp; the reference takes only lengths in range
        int headDim = qw / heads;
        float[] out = new float[BATCH * qw], lse = new float[BATCH * heads];
        AttentionReference.decodeAt(in[0], 0, h.k, 0, h.v, 0, out, 0, lse, 0, h.mask, 0, BATCH, K_STRIDE, heads,
                kw / headDim, headDim, (float) (1.0 / Math.sqrt(headDim)), L);
        if (dtype == DType.BF16) {
            out = BF16.round(out);
        }
        GpuSupport.assertClose(what + ": out", seed, out, get(s.out(), BATCH * qw, dtype), OUT_ATOL,
                dtype == DType.F32 ? OUT_RTOL : BF16_RTOL);
        GpuSupport.assertClose(what + ": lse", seed, lse, GpuSupport.getF32(s.lse(), BATCH * heads), OUT_ATOL,
                OUT_RTOL);
    }
}
