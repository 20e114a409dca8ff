package dev.rlsr.examples.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.examples.kernels.KernelsJCudaExample.Inputs;
import dev.rlsr.examples.kernels.KernelsJCudaExample.Outputs;

import jcuda.driver.JCudaDriver;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The example's three paths. The CPU path is checked against double-precision formulas written here; the GPU paths
 * against the CPU path with the fp32 tolerances of the kernels' own GPU tests. GPU paths skip, with the reason,
 * where they cannot run.
 */
class KernelsJCudaExampleTest {
    private static final long SEED = 42;
    private static final Inputs IN = Inputs.random(SEED);
    // fp32 kernels against the double-accumulating references: fp32 partial sums over up to 1000 terms
    private static final double COS_ATOL = 1e-5, COS_RTOL = 1e-5, LP_ATOL = 2e-5, LP_RTOL = 1e-5;
    private static final double ADV_ATOL = 1e-5, ADV_RTOL = 1e-5;

    @Test
    void referencesMatchDoublePrecisionFormulas() {
        Outputs cpu = KernelsJCudaExample.onCpu(IN);
        int n = IN.n(), d = IN.d(), v = IN.vocab(), g = IN.group();
        double[] cos = new double[n];
        for (int i = 0; i < n; i++) {
            double ab = 0, aa = 0, bb = 0;
            for (int k = 0; k < d; k++) {
                double x = IN.a()[i * d + k], y = IN.b()[i * d + k];
                ab += x * y;
                aa += x * x;
                bb += y * y;
            }
            cos[i] = ab / Math.max(Math.sqrt(aa) * Math.sqrt(bb), 1e-8);
        }
        double[] logp = new double[IN.rows()], lse = new double[IN.rows()];
        for (int r = 0; r < IN.rows(); r++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int k = 0; k < v; k++) {
                max = Math.max(max, IN.logits()[r * v + k]);
            }
            for (int k = 0; k < v; k++) {
                sum += Math.exp(IN.logits()[r * v + k] - max);
            }
            lse[r] = max + Math.log(sum);
            int t = IN.targets()[r];
            logp[r] = t < 0 ? 0 : IN.logits()[r * v + t] - lse[r];
        }
        double[] adv = new double[IN.prompts() * g];
        for (int p = 0; p < IN.prompts(); p++) {
            double mean = 0, ss = 0;
            for (int k = 0; k < g; k++) {
                mean += IN.rewards()[p * g + k];
            }
            mean /= g;
            for (int k = 0; k < g; k++) {
                double dev = IN.rewards()[p * g + k] - mean;
                ss += dev * dev;
            }
            double std = Math.sqrt(ss / (g - 1));
            for (int k = 0; k < g; k++) {
                adv[p * g + k] = (IN.rewards()[p * g + k] - mean) / (std + 1e-4);
            }
        }
        // the references accumulate in double and round once to fp32: within one fp32 ulp of the formula
        assertWithinUlp("cosine", cos, cpu.cosine());
        assertWithinUlp("logp", logp, cpu.logp());
        assertWithinUlp("lse", lse, cpu.lse());
        assertWithinUlp("advantages", adv, cpu.advantages());
        assertEquals(0f, cpu.logp()[IN.rows() - 1], "an ignored row (target < 0) has logp 0");
    }

    @Test
    void jcudaMemoryGivesTheReferenceResults() {
        // JCuda's native library links the real libcuda.so.1; the emulator stands in for libcuda only inside
        // dev.rlsr.bindings, so JCuda cannot see its device (onRlsrBindingsMemory covers the emulator)
        Assumptions.assumeFalse(CudaDriver.isEmulator(),
                "JCuda links the real libcuda and cannot use the RLSR CUDA emulator");
        Assumptions.assumeTrue(CudaDriver.isAvailable(), () -> "no CUDA device: " + CudaDriver.unavailableReason());
        try {
            JCudaDriver.cuInit(0);
        } catch (Throwable t) { // UnsatisfiedLinkError and friends: no JCuda natives for this platform
            Assumptions.abort("JCuda's native library does not load here: " + t);
        }
        assertMatchesReferences(KernelsJCudaExample.onJCudaMemory(IN));
    }

    @Test
    void rlsrBindingsMemoryGivesTheReferenceResults() {
        Assumptions.assumeTrue(CudaDriver.isAvailable(), () -> "no CUDA device: " + CudaDriver.unavailableReason());
        assertMatchesReferences(KernelsJCudaExample.onRlsrBindingsMemory(IN));
    }

    private static void assertMatchesReferences(Outputs gpu) {
        Outputs cpu = KernelsJCudaExample.onCpu(IN);
        assertClose("cosine", cpu.cosine(), gpu.cosine(), COS_ATOL, COS_RTOL);
        assertClose("logp", cpu.logp(), gpu.logp(), LP_ATOL, LP_RTOL);
        assertClose("lse", cpu.lse(), gpu.lse(), LP_ATOL, LP_RTOL);
        assertClose("advantages", cpu.advantages(), gpu.advantages(), ADV_ATOL, ADV_RTOL);
    }

    private static void assertWithinUlp(String what, double[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double tol = Math.ulp((float) expected[i]);
            if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
                fail(String.format("%s[%d] (seed %d): expected %.9g got %.9g, more than one fp32 ulp (%.3g) apart",
                        what, i, SEED, expected[i], actual[i], tol));
            }
        }
    }

    private static void assertClose(String what, float[] expected, float[] actual, double atol, double rtol) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double tol = atol + rtol * Math.abs(expected[i]);
            if (!(Math.abs(actual[i] - expected[i]) <= tol)) { // NaN fails
                fail(String.format("%s[%d] (seed %d): GPU %.9g, reference %.9g, tolerance %.3g", what, i, SEED,
                        actual[i], expected[i], tol));
            }
        }
    }
}
