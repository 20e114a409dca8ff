package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.SplittableRandom;

/**
 * A GPU diagnostic (a main, not a test): for bf16 GEMMs with beta = 1 (in place and not), lists every algorithm the
 * cuBLASLt heuristic offers with its configuration (split-K count, reduction scheme, tile), and how far each one's D
 * is from the exact result in units of one bf16 rounding of D. Run on a real GPU:
 * {@code java -cp ... dev.rlsr.bindings.LtRoundingProbe}.
 */
public final class LtRoundingProbe {
    private static final int BF16 = Cublas.CUDA_R_16BF;
    private static final int F32 = Cublas.CUDA_R_32F;

    private LtRoundingProbe() {
    }

    public static void main(String[] args) throws Throwable {
        CudaContext ctx = CudaContext.open(0);
        CublasLt lt = CublasLt.create();
        MethodHandle cfg = null;
        try {
            SymbolLookup lib = SymbolLookup.libraryLookup("libcublasLt.so.13", Arena.global());
            cfg = Linker.nativeLinker().downcallHandle(lib.find("cublasLtMatmulAlgoConfigGetAttribute").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        } catch (RuntimeException e) {
            System.out.println("no algorithm configurations: " + e);
        }
        System.out.println("cuBLASLt version " + CublasLt.version());
        // name, transA, transB, m, n, k (row-major D (m,n) = op(A) op(B), as Gemm takes it), bias, beta, D type
        Object[][] problems = {
            {"linear 130x160->3 bias", false, true, 130, 3, 160, true, 1f, BF16},
            {"linear 130x160->3", false, true, 130, 3, 160, false, 1f, BF16},
            {"linear 130x160->3 bias beta 0", false, true, 130, 3, 160, true, 0f, BF16},
            {"linear 130x160->4 bias", false, true, 130, 4, 160, true, 1f, BF16},
            {"lbi 13x40->48", false, false, 13, 48, 40, false, 1f, BF16},
            {"lbi 13x40->48 fp32 D", false, false, 13, 48, 40, false, 1f, F32},
            {"lbw 40x13->48 fp32 D", true, false, 40, 48, 13, false, 1f, F32},
            {"lbi 130x160->37", false, false, 130, 37, 160, false, 1f, BF16},
        };
        for (Object[] p : problems) {
            for (int mode = 0; mode < 3; mode++) {
                if (mode < 2 && (float) p[7] == 0f) {
                    continue;
                }
                probe(lt, cfg, (String) p[0], (boolean) p[1], (boolean) p[2], (int) p[3], (int) p[4], (int) p[5],
                        (boolean) p[6], (float) p[7], (int) p[8], mode);
            }
        }
        System.out.println();
        refusal(lt, "bf16 D, fp32 bias", BF16, F32, 1, false);
        refusal(lt, "bf16 D, bf16 bias", BF16, BF16, 1, false);
        refusal(lt, "fp32 D, fp32 bias, 2 batches, bias stride, in place", F32, F32, 2, true);
        refusal(lt, "bf16 D, bf16 bias, 2 batches, bias stride, in place", BF16, BF16, 2, true);
        refusal(lt, "bf16 D, fp32 bias, 2 batches, bias stride, in place", BF16, F32, 2, true);
        lt.close();
        ctx.close();
    }

    /** Whether the heuristic takes a bias epilogue with these types (21 x 10 x 19, B transposed). */
    private static void refusal(CublasLt lt, String what, int dType, int biasType, int batch, boolean inPlace) {
        String outcome;
        try {
            outcome = biasHeuristic(lt, dType, biasType, batch, inPlace) + " algorithm(s)";
        } catch (CudaException e) {
            outcome = "refused: " + e.getMessage();
        }
        System.out.println("heuristic, bias epilogue, " + what + ": " + outcome);
    }

    /**
     * How many algorithms cuBLASLt's heuristic offers for a 21 x 10 x 19 product (B transposed, A and B bf16, or
     * fp32 with an fp32 D) with the bias epilogue, D and the bias of the given types, {@code batch} batches with a
     * bias batch stride; throws the heuristic's {@link CudaException} when it refuses. Frees what it creates.
     */
    static int biasHeuristic(CublasLt lt, int dType, int biasType, int batch, boolean inPlace) {
        int m = 21, n = 10, k = 19;
        long desc = 0, la = 0, lb = 0, lc = 0, ld = 0, pref = 0;
        try (Arena arena = Arena.ofConfined(); DeviceBuffer bias = DeviceBuffer.alloc(4L * m * batch)) {
            desc = CublasLt.matmulDescCreate(Cublas.CUBLAS_COMPUTE_32F, F32);
            CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSB, Cublas.CUBLAS_OP_T);
            CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_EPILOGUE, CublasLt.CUBLASLT_EPILOGUE_BIAS);
            CublasLt.matmulDescSetAttribute64(desc, CublasLt.CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias.address());
            CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, biasType);
            if (batch > 1) {
                CublasLt.matmulDescSetAttribute64(desc, 10, m); // CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE
            }
            int abType = dType == F32 ? F32 : BF16;
            la = layout(abType, m, k, m, batch);
            lb = layout(abType, n, k, n, batch);
            ld = layout(dType, m, n, m, batch);
            lc = inPlace ? ld : layout(dType, m, n, m, batch);
            pref = CublasLt.preferenceCreate();
            CublasLt.preferenceSetAttribute64(pref, CublasLt.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, 32L << 20);
            MemorySegment res = arena.allocate(CublasLt.HEURISTIC_RESULT);
            return CublasLt.algoGetHeuristic(lt.handle(), desc, la, lb, lc, ld, pref, res, 1);
        } finally {
            if (pref != 0) {
                CublasLt.preferenceDestroy(pref);
            }
            for (long l : new long[] {lc == ld ? 0 : lc, ld, lb, la}) {
                if (l != 0) {
                    CublasLt.matrixLayoutDestroy(l);
                }
            }
            if (desc != 0) {
                CublasLt.matmulDescDestroy(desc);
            }
        }
    }

    private static long layout(int type, int rows, int cols, int ld, int batch) {
        long l = CublasLt.matrixLayoutCreate(type, rows, cols, ld);
        if (batch > 1) {
            CublasLt.matrixLayoutSetAttribute(l, CublasLt.CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, batch);
            CublasLt.matrixLayoutSetAttribute64(l, CublasLt.CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                    (long) ld * cols);
        }
        return l;
    }

    private static float[] bf16(SplittableRandom r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            double g = Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
            v[i] = GpuTestSupport.fromBf16(GpuTestSupport.toBf16((float) (g * scale)));
        }
        return v;
    }

    /** mode 0: C == D, one layout; 1: C == D, two equal layouts; 2: C != D. */
    private static void probe(CublasLt lt, MethodHandle cfg, String name, boolean ta, boolean tb, int m, int n, int k,
            boolean withBias, float beta, int dType, int mode) throws Throwable {
        boolean inPlace = mode < 2, mask = true;
        SplittableRandom r = new SplittableRandom(42);
        int lda = ta ? m : k, ldb = tb ? k : n;
        float[] a = bf16(r, m * k, 1), b = bf16(r, k * n, 0.2), c = bf16(r, m * n, 1);
        float[] bias = withBias ? bf16(r, n, 1) : null;
        double[] exact = new double[m * n], tol = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = beta * c[i * n + j] + (withBias ? bias[j] : 0);
                double mag = Math.abs(s);
                for (int q = 0; q < k; q++) {
                    double t = (double) a[ta ? q * lda + i : i * lda + q] * b[tb ? j * ldb + q : q * ldb + j];
                    s += t;
                    mag += Math.abs(t);
                }
                exact[i * n + j] = s;
                double out = dType == BF16 ? Math.ulp((float) s) * 65536.0 / 2 : Math.ulp((float) s) / 2;
                tol[i * n + j] = out + 2 * (k + 4) * 0x1p-24 * mag;
            }
        }
        try (Arena arena = Arena.ofConfined();
                DeviceBuffer da = DeviceBuffer.of(GpuTestSupport.toBf16(a));
                DeviceBuffer db = DeviceBuffer.of(GpuTestSupport.toBf16(b));
                DeviceBuffer dc = dType == BF16 ? DeviceBuffer.of(GpuTestSupport.toBf16(c)) : DeviceBuffer.of(c);
                DeviceBuffer dbias = withBias ? DeviceBuffer.of(GpuTestSupport.toBf16(bias)) : DeviceBuffer.alloc(2);
                DeviceBuffer ws = DeviceBuffer.alloc(32L << 20)) {
            long desc = CublasLt.matmulDescCreate(Cublas.CUBLAS_COMPUTE_32F, F32);
            CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSA,
                    tb ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSB,
                    ta ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            if (withBias) {
                CublasLt.matmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_EPILOGUE,
                        CublasLt.CUBLASLT_EPILOGUE_BIAS);
                CublasLt.matmulDescSetAttribute64(desc, CublasLt.CUBLASLT_MATMUL_DESC_BIAS_POINTER, dbias.address());
            }
            long la = CublasLt.matrixLayoutCreate(BF16, tb ? k : n, tb ? n : k, ldb);
            long lb = CublasLt.matrixLayoutCreate(BF16, ta ? m : k, ta ? k : m, lda);
            long ld = CublasLt.matrixLayoutCreate(dType, n, m, n);
            long lc = mode == 0 ? ld : CublasLt.matrixLayoutCreate(dType, n, m, n);
            long pref = CublasLt.preferenceCreate();
            CublasLt.preferenceSetAttribute64(pref, CublasLt.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, 32L << 20);
            if (mask) {
                CublasLt.preferenceSetAttribute(pref, CublasLt.CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                        CublasLt.CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE);
            }
            int want = 16;
            MemorySegment res = arena.allocate(CublasLt.HEURISTIC_RESULT.byteSize() * want, 16);
            int found = CublasLt.algoGetHeuristic(lt.handle(), desc, la, lb, lc, ld, pref, res, want);
            System.out.printf("%n== %s, %s: %d algorithms%n", name, mode == 0 ? "in place (C == D)"
                    : mode == 1 ? "in place, two layouts" : "C != D", found);
            MemorySegment scal = arena.allocate(8, 8);
            scal.set(JAVA_FLOAT, 0, 1f);
            scal.set(JAVA_FLOAT, 4, beta);
            MemorySegment v = arena.allocate(8, 8), wr = arena.allocate(8, 8);
            for (int i = 0; i < Math.min(found, 3); i++) {
                MemorySegment algo = res.asSlice(i * CublasLt.HEURISTIC_RESULT.byteSize(), 64);
                int[] cf = new int[9];
                for (int q = 0; q < cf.length; q++) {
                    v.set(JAVA_LONG, 0, 0);
                    int st = cfg == null ? 99 : (int) cfg.invokeExact(algo, q, v, 4L, wr);
                    cf[q] = st == 0 ? v.get(JAVA_INT, 0) : -1000 - st;
                }
                long wsNeed = res.get(JAVA_LONG, i * CublasLt.HEURISTIC_RESULT.byteSize() + 64);
                DeviceBuffer dd = inPlace ? null : DeviceBuffer.alloc((long) m * n * (dType == BF16 ? 2 : 4));
                if (dType == BF16) {
                    dc.copyFrom(GpuTestSupport.toBf16(c));
                } else {
                    dc.copyFrom(c);
                }
                long out = inPlace ? dc.address() : dd.address();
                CublasLt.matmulRaw(lt.handle(), desc, scal.address(), db.address(), la, da.address(), lb,
                        scal.address() + 4, dc.address(), lc, out, ld, algo.address(), ws.address(), 32L << 20, 0);
                CudaDriver.contextSynchronize();
                DeviceBuffer res2 = inPlace ? dc : dd;
                float[] got = dType == BF16 ? GpuTestSupport.fromBf16(res2.toShortArray()) : res2.toFloatArray();
                if (dd != null) {
                    dd.close();
                }
                double worst = 0;
                int bad = 0, at = -1;
                for (int e = 0; e < got.length; e++) {
                    double units = Math.abs(got[e] - exact[e]) / tol[e]; // 1: one rounding of D + fp32 sums
                    if (units > worst) {
                        worst = units;
                        at = e;
                    }
                    if (!(units <= 1.0)) {
                        bad++;
                    }
                }
                System.out.printf("  algo %d: id %d tile %d splitK %d reduction %d stages %d ws %d: %d of %d beyond one"
                        + " rounding; worst %.2f x tolerance at (%d,%d): got %.6g, exact %.6g%n", i, cf[0], cf[1],
                        cf[2], cf[3], cf[6], wsNeed, bad, got.length, worst, at / n, at % n, got[Math.max(at, 0)],
                        exact[Math.max(at, 0)]);
            }
            CublasLt.preferenceDestroy(pref);
            CublasLt.matrixLayoutDestroy(la);
            CublasLt.matrixLayoutDestroy(lb);
            if (mode != 0) {
                CublasLt.matrixLayoutDestroy(lc);
            }
            CublasLt.matrixLayoutDestroy(ld);
            CublasLt.matmulDescDestroy(desc);
        }
    }
}
