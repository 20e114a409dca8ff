package dev.rlsr.trainer.encoder;

import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.trainer.reward.RewardInput;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Comparisons shared by the encoder device tests: device embeddings against the CPU's, component and cosine. */
final class EncoderParity {
    private EncoderParity() {
    }

    /** The texts of a reward batch as the cosine reward embeds them: every x ⊕ y, then every distinct x ⊕ y*. */
    static List<String> texts(List<RewardInput> batch) {
        List<String> t = new ArrayList<>();
        for (RewardInput in : batch) {
            t.add(in.prompt() + "\n" + in.response());
        }
        for (RewardInput in : batch) {
            String ref = in.prompt() + "\n" + in.reference();
            if (!t.subList(batch.size(), t.size()).contains(ref)) {
                t.add(ref);
            }
        }
        return t;
    }

    /** Row of the reference text of each batch row in {@link #texts}. */
    static int[] referenceRow(List<RewardInput> batch, List<String> texts) {
        int[] r = new int[batch.size()];
        for (int i = 0; i < r.length; i++) {
            RewardInput in = batch.get(i);
            r[i] = texts.subList(batch.size(), texts.size()).indexOf(in.prompt() + "\n" + in.reference())
                    + batch.size();
        }
        return r;
    }

    static double cos(float[] a, float[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < a.length; k++) {
            ab += (double) a[k] * b[k];
            aa += (double) a[k] * a[k];
            bb += (double) b[k] * b[k];
        }
        return ab / Math.sqrt(aa * bb);
    }

    /**
     * A device encoder of the given precision against the CPU's fp32 embeddings {@code cpu}: its dtype, every row
     * within {@link Bounds#FP32} or {@link Bounds#bf16}, and {@link #sameAsEmbed} on a few short texts (cheap).
     */
    static void checkOnDevice(String what, DeviceEncoder enc, Precision precision,
                              List<RewardInput> batch, List<String> texts, float[][] cpu) {
        assertEquals(precision.compute(), enc.dtype());
        float[][] got = enc.embed(texts);
        compare(what + " cuda-" + precision + " vs cpu-fp32", batch, texts, got, cpu,
                precision == Precision.FP32 ? Bounds.FP32 : Bounds.bf16(enc.dimension()));
        List<String> few = texts.subList(0, 3);
        sameAsEmbed(enc, few, enc.embed(few));
    }

    /** The embeddings of {@code embedOnDevice}, read back: what {@code embed} returned, bit for bit. */
    static void sameAsEmbed(DeviceEncoder enc, List<String> texts, float[][] embedded) {
        try (Tensor t = enc.embedOnDevice(texts)) {
            assertEquals(enc.dtype(), t.dtype(), "dtype of embedOnDevice");
            assertArrayEquals(new long[]{texts.size(), enc.dimension()}, t.shape(), "shape of embedOnDevice");
            float[] flat = enc.backend().download(t);
            for (int i = 0; i < texts.size(); i++) {
                for (int c = 0; c < enc.dimension(); c++) {
                    if (Float.floatToIntBits(flat[i * enc.dimension() + c]) != Float.floatToIntBits(embedded[i][c])) {
                        fail("embedOnDevice row " + i + " component " + c + " is " + flat[i * enc.dimension() + c]
                                + ", embed returned " + embedded[i][c]);
                    }
                }
            }
        }
    }

    /**
     * How far device embeddings may be from the CPU's fp32 ones.
     *
     * @param component every component
     * @param norm      the L2 norm of each row's difference
     * @param reward    the reward of each batch row (cosine of its response and reference embeddings)
     */
    record Bounds(double component, double norm, double reward) {
        /**
         * fp32 on both sides, the same weights, other summation orders (the device GEMM, attention and reductions
         * against the CPU's) through the whole network: 1e-6 per component of a unit embedding (components are
         * ~0.05; the bound BertEncoderMiniLmParityTest uses between ONNX Runtime and the engine), and the issue's
         * 1e-5 for rewards. Measured on the CUDA emulator (2026-11-27, RewardPairs' 20 texts of 11 to 231 word pieces):
         * MiniLM max |component diff| 9.7e-8, max |reward diff| 1.3e-7; qwen3_tiny 2.2e-7 and 9.7e-8.
         */
        static final Bounds FP32 = new Bounds(1e-6, Double.POSITIVE_INFINITY, 1e-5);

        /**
         * bf16 weights and activations against fp32. Every bf16 rounding of a weight or an activation moves it by up
         * to u = 2^-8 relative, in no particular direction; an embedding passes through a few dozen of them (all-
         * MiniLM-L6-v2: 6 layers x ~10 rounded tensors: q, k, v, the attention probabilities and output, the
         * projection, LayerNorm, the MLP input, GELU, the output and its LayerNorm; qwen3_tiny: 2 layers x ~15), and the
         * normalisations keep the gain near 1, so the errors add in quadrature: sqrt(60) u ~ 7.7u. The bound on
         * |e_bf16 - e_fp32| of a unit embedding is 8u = 2^-5. To first order, cos(a + da, b + db) - cos(a, b) =
         * da.(b - cos a) + db.(a - cos b), and |b - cos a| <= 1; an error of norm E in no particular direction of the
         * D-dimensional space projects onto a fixed unit direction with a standard deviation E / sqrt(D). Three of
         * those deviations, for the two independent embeddings: |reward diff| <= 3 sqrt(2) 2^-5 / sqrt(D) (6.8e-3 for
         * MiniLM's D = 384, 1.7e-2 for qwen3_tiny's D = 64). Components are not bounded one by one (the norm bound
         * covers them). Measured on the CUDA emulator: MiniLM max |embedding diff| 1.03e-2 (2.6u), max |reward diff|
         * 1.3e-3; qwen3_tiny 1.15e-2 and 1.2e-3. A GPU's tensor cores and bf16 attention probabilities round in other
         * places, hence the margin.
         *
         * @param d the embedding width D
         * @return the bounds
         */
        static Bounds bf16(int d) {
            double e = 8 * 0x1p-8;
            return new Bounds(Double.POSITIVE_INFINITY, e, 3 * Math.sqrt(2) * e / Math.sqrt(d));
        }
    }

    /**
     * Checks the embeddings and the reward of every batch row against the CPU's within {@code bounds}; prints the
     * worst of each (the measured values the bounds' comments quote).
     */
    static void compare(String what, List<RewardInput> batch, List<String> texts, float[][] got, float[][] want,
                        Bounds bounds) {
        double worstAbs = 0, worstNorm = 0;
        for (int i = 0; i < want.length; i++) {
            double sq = 0;
            for (int c = 0; c < want[i].length; c++) {
                double e = Math.abs((double) got[i][c] - want[i][c]);
                worstAbs = Math.max(worstAbs, Float.isNaN(got[i][c]) ? Double.POSITIVE_INFINITY : e);
                sq += e * e;
            }
            worstNorm = Math.max(worstNorm, Double.isNaN(sq) ? Double.POSITIVE_INFINITY : Math.sqrt(sq));
        }
        int[] ref = referenceRow(batch, texts);
        double worstReward = 0;
        StringBuilder rows = new StringBuilder();
        for (int i = 0; i < batch.size(); i++) {
            double g = cos(got[i], got[ref[i]]), w = cos(want[i], want[ref[i]]);
            double e = Double.isNaN(g) ? Double.POSITIVE_INFINITY : Math.abs(g - w);
            worstReward = Math.max(worstReward, e);
            rows.append(String.format("%n    row %2d: reward %.7f, cpu %.7f, |diff| %.2e", i, g, w, e));
        }
        String line = String.format("%s: max |component diff| %.3e (bound %.1e), max |embedding diff| %.3e (bound"
                + " %.1e), max |reward diff| %.3e (bound %.1e)", what, worstAbs, bounds.component(), worstNorm,
                bounds.norm(), worstReward, bounds.reward());
        System.out.println(line);
        if (worstAbs > bounds.component() || worstNorm > bounds.norm() || worstReward > bounds.reward()) {
            fail(line + rows);
        }
    }
}
