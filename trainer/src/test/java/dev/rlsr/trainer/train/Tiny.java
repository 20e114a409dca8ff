package dev.rlsr.trainer.train;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.engine.tokenizer.ByteLevelTokenizer;
import dev.rlsr.engine.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Test fixtures for the trainers: the byte-level ChatML tokenizer and a tiny Qwen2 model over its vocabulary. */
public final class Tiny {
    private Tiny() {}

    public static Tokenizer tokenizer(Path dir) {
        ByteLevelTokenizer.writeByteLevel(dir);
        return Tokenizer.load(dir);
    }

    public static ModelConfig config() {
        return ModelConfig.of("qwen2", ByteLevelTokenizer.VOCAB_SIZE, 32, 64, 2, 4, 2, 8, true);
    }

    public static DecoderModel model(long seed) {
        return DecoderModel.init(config(), seed, CpuBackend.INSTANCE);
    }

    /** A separate model with the same parameters (what a checkpoint save + load gives). */
    public static DecoderModel copyOf(DecoderModel m) {
        DecoderModel c = DecoderModel.init(m.config(), 0, m.backend());
        c.copyParametersFrom(m);
        return c;
    }

    /** A checkpointer that snapshots (state, parameters, optimizer state) at one step of one stage. */
    public static final class Snapshot implements Checkpointer {
        final long atStep;
        public TrainState state;
        public DecoderModel model;
        public AdamW.State optimizer;

        public Snapshot(long atStep) {
            this.atStep = atStep;
        }

        @Override
        public void save(String stage, TrainState s, DecoderModel m, AdamW opt) {
            if (s.step() == atStep) {
                state = s;
                model = copyOf(m);
                optimizer = opt.state();
            }
        }
    }

    /** A listener that records every metrics line. */
    public static final class Recorder implements TrainListener {
        public final List<Map<String, Object>> lines = new ArrayList<>();
        public final List<Long> steps = new ArrayList<>();

        @Override
        public void step(String stage, long step, Map<String, Object> metrics) {
            steps.add(step);
            lines.add(metrics);
        }
    }

    /** max over parameters of ||a - b|| / ||a||. */
    public static double maxRelativeDifference(Map<String, Tensor> a, Map<String, Tensor> b) {
        double worst = 0;
        for (var e : a.entrySet()) {
            float[] x = e.getValue().backend().download(e.getValue());
            float[] y = b.get(e.getKey()).backend().download(b.get(e.getKey()));
            double d = 0, n = 0;
            for (int i = 0; i < x.length; i++) {
                d += (x[i] - y[i]) * (double) (x[i] - y[i]);
                n += x[i] * (double) x[i];
            }
            if (n > 0) {
                worst = Math.max(worst, Math.sqrt(d / n));
            }
        }
        return worst;
    }
}
