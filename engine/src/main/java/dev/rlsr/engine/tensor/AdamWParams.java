package dev.rlsr.engine.tensor;

/**
 * Hyper-parameters of one AdamW update of one parameter, as torch.optim.AdamW (decoupled weight decay):
 * {@code p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)} with {@code bc1 = 1-b1^t}, {@code bc2 = 1-b2^t}.
 *
 * @param lr              learning rate
 * @param beta1           decay of the first moment (b1)
 * @param beta2           decay of the second moment (b2)
 * @param eps             added to the denominator
 * @param weightDecay     decoupled weight decay (wd)
 * @param biasCorrection1 {@code 1 - b1^t} for step t &gt;= 1
 * @param biasCorrection2 {@code 1 - b2^t} for step t &gt;= 1
 */
public record AdamWParams(float lr, float beta1, float beta2, float eps, float weightDecay,
                          double biasCorrection1, double biasCorrection2) {
    /** Checks that both bias corrections are positive (step &gt;= 1). */
    public AdamWParams {
        if (!(biasCorrection1 > 0) || !(biasCorrection2 > 0)) {
            throw new IllegalArgumentException("bias corrections must be > 0 (step >= 1): " + biasCorrection1 + ", "
                    + biasCorrection2);
        }
    }
}
