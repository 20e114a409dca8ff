package dev.rlsr.engine.model;

/**
 * The per-tensor tolerances of the HF parity suite ({@link HfParity}) for one precision. Logits and log-probs are
 * compared by max-abs error, losses by relative error, gradients per parameter tensor by
 * {@code ||g - ref|| / ||ref||}.
 *
 * @param name           "fp32", "bf16"
 * @param logitsAbs      logits (full forward, left padding, KV cache): absolute part of the max-abs error
 * @param logitsOfMax    logits: part proportional to the fixture's max |logit|
 * @param logpOfLogits   GRPO log-probs {@code x_t - lse}: max-abs error as a multiple of the logits tolerance
 * @param lossRel        SFT cross-entropy and GRPO losses: relative error (a GRPO loss may also be off by its
 *                       first-order sensitivity to the log-probs times their tolerance, see {@link HfParity})
 * @param weightGrad     gradients of weight matrices (token embedding, lm_head, attention and MLP projections)
 * @param vectorGrad     gradients of vectors (biases, RMSNorm weights): sums over every token
 * @param repeatAbs      the same model's logits computed twice (save/load round trip): absolute part...
 * @param repeatOfLogits ...plus this multiple of the logits tolerance
 * @param greedyExact    true: free-running greedy decoding must reproduce HF's tokens exactly; false: with HF's
 *                       tokens fed through the KV cache, each of HF's choices must be within twice the logits
 *                       tolerance of the best logit (a bf16 model may break HF's near-ties the other way)
 */
public record ParityTolerances(String name, double logitsAbs, double logitsOfMax, double logpOfLogits, double lossRel,
                               double weightGrad, double vectorGrad, double repeatAbs, double repeatOfLogits,
                               boolean greedyExact) {

    /** Checks that every tolerance is a finite number &gt;= 0. */
    public ParityTolerances {
        for (double t : new double[]{logitsAbs, logitsOfMax, logpOfLogits, lossRel, weightGrad, vectorGrad,
                repeatAbs, repeatOfLogits}) {
            if (!(t >= 0) || Double.isInfinite(t)) {
                throw new IllegalArgumentException("tolerances must be finite and >= 0, got " + t + " in " + name);
            }
        }
    }

    /** bf16 unit roundoff: the largest relative error of one rounding to bf16 (8 significant bits). */
    public static final double U_BF16 = 0x1p-8;

    /**
     * fp32 against HF's fp32 (the fixtures README): logits and log-probs 1e-4, losses 1e-5, every gradient 1e-3,
     * the same logits twice 1e-5, greedy tokens exact.
     */
    public static final ParityTolerances FP32 = new ParityTolerances("fp32", 1e-4, 0, 1, 1e-5, 1e-3, 1e-3, 1e-5, 0,
            true);

    /**
     * bf16 compute weights and activations with fp32 master weights and accumulation, against HF's fp32; derived in
     * {@link HfParity}. With u = 2^-8: logits 6u x max|logit|, log-probs twice that, losses 2u, weight-matrix
     * gradients 10u, bias and norm-weight gradients 12u, the same logits twice within the logits tolerance, greedy
     * tokens within tolerance.
     */
    public static final ParityTolerances BF16 = new ParityTolerances("bf16", 0, 6 * U_BF16, 2, 2 * U_BF16,
            10 * U_BF16, 12 * U_BF16, 0, 1, false);

    /**
     * The logits tolerance of a fixture.
     *
     * @param maxAbsLogit the largest |logit| of HF's reference
     * @return the max-abs error allowed
     */
    public double logits(double maxAbsLogit) {
        return logitsAbs + logitsOfMax * maxAbsLogit;
    }

    /**
     * The tolerance between two evaluations of the same model on this backend.
     *
     * @param logitsTol the fixture's logits tolerance
     * @return the max-abs difference allowed
     */
    public double repeat(double logitsTol) {
        return repeatAbs + repeatOfLogits * logitsTol;
    }

    /**
     * The gradient tolerance of a parameter, by its HF name.
     *
     * @param param e.g. {@code model.layers.0.mlp.up_proj.weight}
     * @return the relative-norm tolerance
     */
    public double grad(String param) {
        return param.endsWith(".bias") || param.endsWith("norm.weight") ? vectorGrad : weightGrad;
    }
}
