package dev.rlsr.bindings;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Tensor cores through native/cuda/rlsr_mma.cuh (mma_kernels.cu): D (16x8) = A (16x16) B (16x8) + C for bf16 A and B,
 * with the fragments built by the PTX ISA's layout formulas, by ldmatrix and by ldmatrix.trans, against a double
 * product. A wrong fragment layout (in the header's use of the instruction or in the emulator's model of it) puts
 * elements in the wrong place and fails here. On the emulator and on a GPU (sm_80 or newer).
 *
 * <p>Tolerance: bf16 products are exact in fp32, so the only error is the fp32 accumulation of 16 products and C:
 * |d - ref| <= 2 * 17 u (|c| + sum |a b|), u = 2^-24, doubled because tensor cores need not round to nearest inside.
 */
@Tag("gpu")
class MmaGpuTest {
    private static CudaContext ctx;
    private static CudaModule module;

    @BeforeAll
    static void open() {
        GpuTestSupport.requireGpu();
        ctx = CudaContext.open(0);
        int[] cc = ctx.computeCapability();
        org.junit.jupiter.api.Assumptions.assumeTrue(cc[0] >= 8, "bf16 mma.sync needs sm_80 or newer");
        module = TestKernels.load(TestKernels.MMA);
    }

    @AfterAll
    static void close() {
        if (module != null) {
            module.close();
        }
        if (ctx != null) {
            ctx.close();
        }
    }

    @BeforeEach
    void current() {
        ctx.makeCurrent();
    }

    private static short[] randomBf16(SplittableRandom r, int n) {
        short[] out = new short[n];
        for (int i = 0; i < n; i++) {
            out[i] = GpuTestSupport.toBf16((float) (r.nextDouble() * 4 - 2));
        }
        return out;
    }

    private static void check(String what, short[] a, short[] bRowMajor, float[] c, float[] d) {
        double u = Math.scalb(1.0, -24);
        StringBuilder bad = new StringBuilder();
        int count = 0;
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 8; j++) {
                double sum = c[i * 8 + j], mag = Math.abs(c[i * 8 + j]);
                for (int k = 0; k < 16; k++) {
                    double p = (double) GpuTestSupport.fromBf16(a[i * 16 + k]) * GpuTestSupport.fromBf16(bRowMajor[k * 8 + j]);
                    sum += p;
                    mag += Math.abs(p);
                }
                double tol = 2 * 17 * u * mag;
                if (!(Math.abs(d[i * 8 + j] - sum) <= tol) && count++ < 8) {
                    bad.append(String.format("%n  D[%d][%d] = %s, expected %.9g (tolerance %.3g)", i, j, d[i * 8 + j],
                            sum, tol));
                }
            }
        }
        if (count > 0) {
            fail(what + ": " + count + " of 128 elements wrong:" + bad);
        }
    }

    @Test
    void fragmentsByTheLayoutFormulasAndByLdmatrix() {
        SplittableRandom r = new SplittableRandom(81);
        for (int rep = 0; rep < 3; rep++) {
            short[] a = randomBf16(r, 256);
            short[] b = randomBf16(r, 128); // B (16,8) row-major
            short[] bt = new short[128];    // B^T (8,16) row-major
            for (int k = 0; k < 16; k++) {
                for (int n = 0; n < 8; n++) {
                    bt[n * 16 + k] = b[k * 8 + n];
                }
            }
            float[] c = GpuTestSupport.random(82 + rep, 128);
            try (DeviceBuffer da = DeviceBuffer.of(a); DeviceBuffer db = DeviceBuffer.of(b);
                    DeviceBuffer dbt = DeviceBuffer.of(bt); DeviceBuffer dc = DeviceBuffer.of(c);
                    DeviceBuffer dd = DeviceBuffer.alloc(4 * 128)) {
                dd.fill(Float.NaN);
                try (KernelArgs args = KernelArgs.of().ptr(da).ptr(dbt).ptr(dc).ptr(dd)) {
                    CudaDriver.launchKernel(module.function("mma_fragments_kernel"), 1, 1, 1, 32, 1, 1, 0, 0, args);
                }
                check("fragments by the PTX layout formulas", a, b, c, dd.toFloatArray());
                for (int trans = 0; trans < 2; trans++) {
                    dd.fill(Float.NaN);
                    try (KernelArgs args = KernelArgs.of().ptr(da).ptr(trans == 1 ? db : dbt).ptr(dc).ptr(dd)
                            .i32(trans)) {
                        CudaDriver.launchKernel(module.function("mma_ldmatrix_kernel"), 1, 1, 1, 32, 1, 1, 0, 0, args);
                    }
                    check(trans == 1 ? "ldmatrix.x4 + ldmatrix.x2.trans" : "ldmatrix.x4 + ldmatrix.x2", a, b, c,
                            dd.toFloatArray());
                }
            }
        }
    }
}
