package dev.rlsr.trainer.config;

import dev.rlsr.engine.generate.SamplingConfig;
import dev.rlsr.engine.model.GrpoLoss;
import dev.rlsr.trainer.encoder.BertEncoder;
import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import dev.rlsr.trainer.reward.CosineReward;
import dev.rlsr.trainer.rl.AdvantageNorm;
import dev.rlsr.trainer.rl.RlConfig;
import dev.rlsr.trainer.sft.SftConfig;

import java.util.Locale;
import java.util.function.Supplier;

/**
 * Maps the sections of a {@link RunConfig} onto the trainer config records. A record's own check that fails (a
 * combination the per-key checks cannot see) becomes a {@link ConfigException} naming the section.
 */
public final class TrainerConfigs {
    private TrainerConfigs() {
    }

    public static SftConfig sft(RunConfig c) {
        return build("sft", () -> new SftConfig(c.getInt("sft.epochs"), c.getInt("sft.batch_size"),
                c.getInt("sft.grad_accum"), c.getDouble("sft.lr"), c.getInt("sft.warmup_steps"),
                c.getDouble("sft.min_lr_ratio"), c.getDouble("sft.weight_decay"), c.getDouble("sft.max_grad_norm"),
                c.getBool("sft.packing"), c.getInt("sft.max_seq_len"), c.getInt("sft.eval_every"),
                c.getInt("sft.checkpoint_every"), c.getLong("sft.seed"), c.getBool("sft.prompt_masking"),
                c.getBool("sft.group_by_length")));
    }

    /** The sampling of {@code section} ("rl.sampling" or "eval.sampling"). */
    public static SamplingConfig sampling(RunConfig c, String section) {
        return build(section, () -> new SamplingConfig(c.getDouble(section + ".temperature"),
                c.getDouble(section + ".top_p"), c.getInt(section + ".top_k"), c.getInt(section + ".max_new_tokens"),
                c.getStringList(section + ".stop_strings"), c.getLong(section + ".seed")));
    }

    public static RlConfig rl(RunConfig c) {
        SamplingConfig sampling = sampling(c, "rl.sampling");
        GrpoLoss.Level level = GrpoLoss.Level.valueOf(c.getString("rl.loss_level").toUpperCase(Locale.ROOT));
        AdvantageNorm norm = AdvantageNorm.valueOf(c.getString("rl.advantage_norm").toUpperCase(Locale.ROOT));
        return build("rl", () -> new RlConfig(c.getInt("rl.prompts_per_step"), c.getInt("rl.group_size"),
                c.getInt("rl.steps"), c.getInt("rl.mu"), c.getDouble("rl.lr"), c.getInt("rl.warmup_steps"),
                c.getDouble("rl.min_lr_ratio"), c.getDouble("rl.weight_decay"), c.getDouble("rl.max_grad_norm"),
                c.getDouble("rl.clip_low"), c.getDouble("rl.clip_high"), c.getDouble("rl.beta"), level, norm,
                c.getDouble("rl.eps"), c.getInt("rl.micro_batch"), sampling, c.getInt("rl.checkpoint_every"),
                c.getLong("rl.seed")));
    }

    public static CosineReward.Options cosineOptions(RunConfig c) {
        return build("reward", () -> CosineReward.Options.defaults()
                .withSeparator(c.getString("reward.separator"))
                .withResponsesOnly(c.getBool("reward.responses_only")));
    }

    public static MiniLmOnnxEncoder.Config encoderConfig(RunConfig c) {
        return build("reward", () -> new MiniLmOnnxEncoder.Config(c.getInt("reward.encoder_batch_size"),
                MiniLmOnnxEncoder.DEFAULT_MAX_TOKENS, c.getInt("reward.encoder_threads")));
    }

    /** The engine BERT encoder's settings (reward.device cuda): the batch size and the MiniLM default length. */
    public static BertEncoder.Config bertEncoderConfig(RunConfig c) {
        return build("reward", () -> new BertEncoder.Config(c.getInt("reward.encoder_batch_size"),
                MiniLmOnnxEncoder.DEFAULT_MAX_TOKENS));
    }

    private static <T> T build(String section, Supplier<T> s) {
        try {
            return s.get();
        } catch (IllegalArgumentException e) {
            throw new ConfigException(section, e.getMessage(), e);
        }
    }
}
