package dev.rlsr.trainer.rl;

import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;
import dev.rlsr.kernels.GroupAdvantagesReference;

/**
 * Rewards (P,G) to advantages (P,G), computed in double. GROUP and NONE_STD are
 * {@link GroupAdvantagesReference} (the CPU contract of the GPU kernel): {@code (r - mean_g) / (std_g + eps)} with
 * the SAMPLE standard deviation (divisor G-1; G = 1 gives 0), or {@code r - mean_g}. BATCH keeps the group mean and
 * divides by the sample std of all P*G rewards plus eps (TRL's {@code scale_rewards="batch"}).
 */
public final class Advantages {
    private Advantages() {}

    public static float[] compute(double[] rewards, int prompts, int groupSize, AdvantageNorm norm, double eps) {
        float[] r = checked(rewards, prompts, groupSize);
        return switch (norm) {
            case GROUP -> GroupAdvantagesReference.compute(r, prompts, groupSize, true, (float) eps);
            case NONE_STD -> GroupAdvantagesReference.compute(r, prompts, groupSize, false, (float) eps);
            case BATCH -> {
                float[] centred = GroupAdvantagesReference.compute(r, prompts, groupSize, false, (float) eps);
                double scale = 1.0 / (sampleStd(rewards) + eps);
                for (int i = 0; i < centred.length; i++) {
                    centred[i] = (float) (centred[i] * scale);
                }
                yield centred;
            }
        };
    }

    /**
     * The same advantages computed on a backend, where the update reads them: the P*G rewards are uploaded once and
     * {@link Backend#groupAdvantages} (the group-advantages kernel on a GPU, {@link GroupAdvantagesReference} on the
     * CPU) centres them per group; GROUP divides by the group's std there, BATCH scales by the batch's afterwards.
     *
     * @param be        the backend the update runs on
     * @param rewards   (P,G) rewards, finite
     * @param prompts   P
     * @param groupSize G
     * @param norm      the normalisation
     * @param eps       added to the std
     * @return F32 (P*G) advantages on {@code be}, owned by the caller
     */
    public static Tensor compute(Backend be, double[] rewards, int prompts, int groupSize, AdvantageNorm norm,
                                 double eps) {
        float[] r = checked(rewards, prompts, groupSize);
        Tensor adv = be.alloc(DType.F32, r.length);
        try (Tensor tr = be.upload(r, r.length)) {
            be.groupAdvantages(tr, groupSize, norm == AdvantageNorm.GROUP, (float) eps, adv);
            if (norm == AdvantageNorm.BATCH) {
                be.scale(adv, (float) (1.0 / (sampleStd(rewards) + eps)));
            }
            return adv;
        } catch (RuntimeException | Error e) {
            adv.close();
            throw e;
        }
    }

    private static float[] checked(double[] rewards, int prompts, int groupSize) {
        if (prompts < 1 || groupSize < 1 || rewards.length != prompts * groupSize) {
            throw new IllegalArgumentException("rewards must be (P,G) = (" + prompts + ", " + groupSize + "), got "
                    + rewards.length + " values");
        }
        float[] r = new float[rewards.length];
        for (int i = 0; i < r.length; i++) {
            if (!Double.isFinite(rewards[i])) {
                throw new IllegalArgumentException("reward " + i + " is not finite: " + rewards[i]);
            }
            r[i] = (float) rewards[i];
        }
        return r;
    }

    /** Sample standard deviation (divisor n-1; 0 for n = 1). */
    public static double sampleStd(double[] x) {
        if (x.length < 2) {
            return 0;
        }
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        mean /= x.length;
        double ss = 0;
        for (double v : x) {
            ss += (v - mean) * (v - mean);
        }
        return Math.sqrt(ss / (x.length - 1));
    }

    public static double mean(double[] x) {
        double s = 0;
        for (double v : x) {
            s += v;
        }
        return x.length == 0 ? 0 : s / x.length;
    }
}
