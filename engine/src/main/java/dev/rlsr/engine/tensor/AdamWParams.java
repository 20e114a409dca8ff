package dev.rlsr.engine.tensor;

/**
 * Hyper-parameters of one AdamW update of one parameter, as torch.optim.AdamW (decoupled weight decay):
 * {@code p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)} with {@code bc1 = 1-b1^t}, {@code bc2 = 1-b2^t}.
 */
public record AdamWParams(float lr, float beta1, float beta2, float eps, float weightDecay,
                          double biasCorrection1, double biasCorrection2) {
    public AdamWParams {
        if (!(biasCorrection1 > 0) || !(biasCorrection2 > 0)) {
            throw new IllegalArgumentException("bias corrections must be > 0 (step >= 1): " + biasCorrection1 + ", "
                    + biasCorrection2);
        }
    }
}
