package dev.rlsr.kernels;

import java.util.Random;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * elementwise.cu vs {@link ElementwiseReference}, both dtypes, sizes 1 to 65539, views off 16-byte boundaries (the
 * same offset for every operand: vector path after a scalar head; different offsets: scalar path), NaN-poisoned
 * outputs with guard bytes.
 *
 * <p>Tolerances: fill, add and scale are <b>exact</b> (one fp32 operation, then one rounding to bf16 for bf16, on
 * both sides). The bias gradient sums in another order than the reference (per-thread row strides, warps, chunks,
 * then dBias, vs row after row into dBias): each side is within u * sqrt(k) * S of the exact sum with overwhelming
 * probability (u = 2^-24, k = rows + 1 terms, S = |dBias0| + sum |dy| of the column: the probabilistic bound of
 * Higham and Mary, lambda = 1), so |gpu - ref| &lt;= 2 u sqrt(k) S. A lost or doubled row moves a column by ~|dy| ~ 1,
 * hundreds of times more. Two launches must give the same bits (determinism).
 */
@Tag("gpu")
class ElementwiseGpuTest {
    private static final int[] SIZES = {1, 7, 33, 4097, 65539};
    private static final DType[] ACT = {DType.F32, DType.BF16};

    @BeforeEach
    void gpu() {
        GpuSupport.assumeGpu();
    }

    @Test
    void fill() {
        for (int n : SIZES) {
            for (int shift : new int[] {0, 4, 12}) {
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    DeviceArrays.Buf f = DeviceArrays.poisoned(m, 4L * n, shift);
                    Elementwise.fill(f.addr(), DType.F32, n, -2.75f, 0);
                    float[] want = new float[n];
                    ElementwiseReference.fill(want, 0, n, -2.75f);
                    DeviceArrays.assertSameValues("fill f32 n=" + n, 0, want, f.f32());
                    f.assertGuards("fill f32 n=" + n);

                    DeviceArrays.Buf b = DeviceArrays.poisoned(m, 2L * n, shift + 2);
                    Elementwise.fill(b.addr(), DType.BF16, n, 0.1f, 0);
                    short[] wantB = new short[n];
                    ElementwiseReference.fill(wantB, 0, n, 0.1f);
                    DeviceArrays.assertSameInts("fill bf16 n=" + n, 0, DeviceArrays.ints(wantB), DeviceArrays.ints(b.bf16()));
                    b.assertGuards("fill bf16 n=" + n);

                    DeviceArrays.Buf t = DeviceArrays.poisoned(m, 4L * n, shift);
                    Elementwise.fillI32(t.addr(), n, 123456789, 0);
                    int[] wantI = new int[n];
                    ElementwiseReference.fill(wantI, 0, n, 123456789);
                    DeviceArrays.assertSameInts("fill i32 n=" + n, 0, wantI, t.i32());
                    t.assertGuards("fill i32 n=" + n);
                }
            }
        }
    }

    /** addI32 is exact integer arithmetic, wrapping at 2^32 like the reference; views at every 16-byte phase. */
    @Test
    void addI32IsExactAndWraps() {
        for (int n : SIZES) {
            for (int shift : new int[] {0, 4, 8, 12}) {
                long seed = 900L + n + shift;
                Random r = new Random(seed);
                int[] t = new int[n];
                for (int i = 0; i < n; i++) {
                    t[i] = r.nextInt();
                }
                t[0] = Integer.MAX_VALUE;
                t[n - 1] = Integer.MIN_VALUE;
                try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                    DeviceArrays.Buf d = DeviceArrays.upload(m, t, shift);
                    for (int delta : new int[] {1, -1, 1000003, Integer.MIN_VALUE}) {
                        String what = "addI32 n=" + n + " shift " + shift + " delta " + delta;
                        Elementwise.addI32(d.addr(), n, delta, 0);
                        ElementwiseReference.addI32(t, 0, n, delta);
                        DeviceArrays.assertSameInts(what, seed, t, d.i32());
                        d.assertGuards(what);
                    }
                }
            }
        }
    }

    @Test
    void addIsExactIncludingInPlace() {
        // {a, b, out} shifts in elements
        int[][] shifts = {{0, 0, 0}, {3, 3, 3}, {1, 0, 0}, {0, 2, 5}};
        for (DType dt : ACT) {
            for (int n : SIZES) {
                long seed = 300 + n;
                Random r = new Random(seed);
                float[] a = DeviceArrays.held(GpuSupport.randn(r, n, 2f), dt), b = DeviceArrays.held(GpuSupport.randn(r, n, 1f), dt);
                float[] want = reference(a, b, dt);
                for (int[] sh : shifts) {
                    String what = "add " + dt + " n=" + n + " shifts " + java.util.Arrays.toString(sh);
                    int e = dt.bytes();
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf da = DeviceArrays.upload(m, a, dt, sh[0] * e);
                        DeviceArrays.Buf db = DeviceArrays.upload(m, b, dt, sh[1] * e);
                        DeviceArrays.Buf out = DeviceArrays.poisoned(m, (long) n * e, sh[2] * e);
                        Elementwise.add(da.addr(), db.addr(), out.addr(), dt, n, 0);
                        DeviceArrays.assertSameValues(what, seed, want, out.floats(dt));
                        out.assertGuards(what);
                        Elementwise.add(da.addr(), db.addr(), da.addr(), dt, n, 0); // out = a
                        DeviceArrays.assertSameValues(what + " in place over a", seed, want, da.floats(dt));
                        Elementwise.add(DeviceArrays.upload(m, a, dt, sh[0] * e).addr(), db.addr(), db.addr(), dt, n, 0);
                        DeviceArrays.assertSameValues(what + " in place over b", seed, want, db.floats(dt));
                        da.assertGuards(what + " in place");
                    }
                }
            }
        }
    }

    private static float[] reference(float[] a, float[] b, DType dt) {
        int n = a.length;
        if (dt == DType.F32) {
            float[] o = new float[n];
            ElementwiseReference.add(a, 0, b, 0, o, 0, n);
            return o;
        }
        short[] o = new short[n];
        ElementwiseReference.add(BF16.fromFloat(a), 0, BF16.fromFloat(b), 0, o, 0, n);
        return BF16.toFloat(o);
    }

    @Test
    void scaleIsExact() {
        for (DType dt : ACT) {
            for (int n : SIZES) {
                long seed = 400 + n;
                float[] x = DeviceArrays.held(GpuSupport.randn(new Random(seed), n, 3f), dt);
                float[] want;
                if (dt == DType.F32) {
                    want = x.clone();
                    ElementwiseReference.scale(want, 0, n, -0.3f);
                } else {
                    short[] w = BF16.fromFloat(x);
                    ElementwiseReference.scale(w, 0, n, -0.3f);
                    want = BF16.toFloat(w);
                }
                for (int shift : new int[] {0, 1, 7}) {
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf t = DeviceArrays.upload(m, x, dt, shift * dt.bytes());
                        Elementwise.scale(t.addr(), dt, n, -0.3f, 0);
                        String what = "scale " + dt + " n=" + n + " shift " + shift;
                        DeviceArrays.assertSameValues(what, seed, want, t.floats(dt));
                        t.assertGuards(what);
                    }
                }
            }
        }
    }

    /** {rows, cols}: single pass (wide), several row chunks with a finishing pass (narrow), odd columns. */
    private static final int[][] BIAS_SHAPES = {{1, 1}, {7, 33}, {129, 7}, {1000, 896}, {4099, 128}, {64, 4097},
            {3, 151936}, {8192, 5}};

    @Test
    void biasGradAccumulatesDeterministically() {
        for (DType dt : ACT) {
            for (int[] s : BIAS_SHAPES) {
                int rows = s[0], cols = s[1];
                long seed = 500L * rows + cols;
                Random r = new Random(seed);
                float[] dy = DeviceArrays.held(GpuSupport.randn(r, rows * cols, 1f), dt);
                float[] db0 = GpuSupport.randn(r, cols, 1f);
                float[] want = db0.clone();
                ElementwiseReference.biasGrad(dy, 0, rows, cols, want, 0);
                double[] tol = new double[cols];
                for (int c = 0; c < cols; c++) {
                    double sum = Math.abs(db0[c]);
                    for (int row = 0; row < rows; row++) {
                        sum += Math.abs(dy[row * cols + c]);
                    }
                    tol[c] = 2 * 0x1p-24 * Math.sqrt(rows + 1.0) * sum;
                }
                // shift 0: vector loads when cols % 4 == 0; one element: the scalar path
                for (int shift : new int[] {0, 1}) {
                    String what = "biasGrad " + dt + " rows=" + rows + " cols=" + cols + " shift " + shift;
                    try (GpuSupport.Mem m = new GpuSupport.Mem()) {
                        DeviceArrays.Buf dDy = DeviceArrays.upload(m, dy, dt, shift * dt.bytes());
                        long scratchBytes = Elementwise.biasGradScratchBytes(rows, cols);
                        long scratch = scratchBytes == 0 ? 0 : m.alloc(scratchBytes);
                        float[][] runs = new float[2][];
                        for (int run = 0; run < 2; run++) {
                            DeviceArrays.Buf dB = DeviceArrays.upload(m, db0, 4);
                            Elementwise.biasGrad(dDy.addr(), dt, rows, cols, dB.addr(), scratch, 0);
                            runs[run] = dB.f32();
                            dB.assertGuards(what);
                        }
                        DeviceArrays.assertWithin(what, seed, want, runs[0], tol);
                        DeviceArrays.assertSameInts(what + ": second launch differs (not deterministic)", seed,
                                DeviceArrays.ints(runs[0]), DeviceArrays.ints(runs[1]));
                    }
                }
            }
        }
    }
}
