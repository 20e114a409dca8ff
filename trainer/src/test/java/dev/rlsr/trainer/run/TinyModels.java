package dev.rlsr.trainer.run;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;

import java.nio.file.Path;

/** Small byte-level models for run-directory tests (seconds on a CPU). */
public final class TinyModels {
    private TinyModels() {
    }

    public static ModelConfig config() {
        return ModelConfig.of("qwen3", ByteLevelTokenizer.VOCAB_SIZE, 32, 64, 1, 2, 1, 16, true);
    }

    public static DecoderModel model(long seed) {
        return DecoderModel.init(config(), seed, CpuBackend.INSTANCE);
    }

    /** Writes a complete HF model directory (weights, config, byte-level tokenizer) at {@code dir}. */
    public static Path writeModelDir(Path dir, long seed) {
        try (DecoderModel m = model(seed)) {
            m.save(dir);
        }
        ByteLevelTokenizer.writeByteLevel(dir);
        return dir;
    }
}
