package dev.rlsr.trainer.run;

import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.io.SafeTensorsWriter;
import dev.rlsr.engine.io.TempFiles;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.train.Checkpointer;
import dev.rlsr.trainer.train.NonFiniteException;
import dev.rlsr.trainer.train.TrainState;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes checkpoints into a {@link RunDir}: {@code checkpoints/<stage>-step-NNNNNN/} holds the model as a Hugging
 * Face directory (config.json, model.safetensors, the tokenizer files), {@code optimizer.safetensors} (AdamW moments
 * {@code <param>.exp_avg}, {@code <param>.exp_avg_sq}, step count in the metadata) and {@code trainer_state.json}.
 *
 * <p>A model with a NaN or infinite weight is never written ({@link NonFiniteException}). Order of a save, each step
 * safe to crash in: write everything into {@code checkpoints/.<name>.rlsr-tmp-<n>}
 * (trainer_state.json last), rename it to its final name, point {@code latest} at it (atomic rename), then delete
 * checkpoints of the stage beyond the newest {@code keep}. Until the pointer moves, {@code latest} names the previous
 * complete checkpoint.
 */
public final class RunCheckpointer implements Checkpointer {
    private static final String DIVERGED_SETTINGS = "sft.lr / rl.lr, max_grad_norm > 0";
    private final RunDir run;
    private final Path tokenizerDir;
    private final int keep;
    private int saves;

    /**
     * @param tokenizerDir directory of the tokenizer files copied into every checkpoint (null: none)
     * @param keep         checkpoints kept per stage (>= 1)
     */
    public RunCheckpointer(RunDir run, Path tokenizerDir, int keep) {
        if (keep < 1) {
            throw new IllegalArgumentException("keep must be >= 1, got " + keep);
        }
        this.run = run;
        this.tokenizerDir = tokenizerDir;
        this.keep = keep;
    }

    /** Number of checkpoints written by this instance. */
    public int saves() {
        return saves;
    }

    @Override
    public void save(String stage, TrainState state, DecoderModel model, AdamW optimizer) {
        String name = RunDir.checkpointName(stage, state.step());
        Path target = run.checkpoints().resolve(name);
        NonFiniteException.checkWeights(stage, state.step(), model, DIVERGED_SETTINGS);
        Path tmp = run.checkpoints().resolve(TempFiles.name(name));
        try {
            writeModelDir(tmp, model, tokenizerDir);
            if (optimizer != null) {
                saveOptimizer(optimizer, tmp.resolve(RunDir.OPTIMIZER));
            }
            RunDir.writeAtomically(tmp.resolve(RunDir.TRAINER_STATE), RunDir.JSON.writeValueAsString(state));
            RunDir.publish(tmp, target);
        } catch (IOException | RuntimeException e) {
            try {
                RunDir.deleteTree(tmp);
            } catch (IOException ignored) {
                // the next open removes it
            }
            if (e instanceof CheckpointException ce) {
                throw ce;
            }
            throw new CheckpointException("cannot write checkpoint " + target + ": " + (e instanceof IOException io
                    ? dev.rlsr.engine.io.IoMessages.describe(io) : e.getMessage()), e);
        }
        run.setLatest(name);
        saves++;
        prune(stage, name);
    }

    private void prune(String stage, String newest) {
        List<RunDir.Checkpoint> all = run.listCheckpoints().stream().filter(c -> c.stage().equals(stage)).toList();
        for (int i = 0; i < all.size() - keep; i++) {
            RunDir.Checkpoint c = all.get(i);
            if (!c.dir().getFileName().toString().equals(newest)) {
                try {
                    RunDir.deleteTree(c.dir());
                } catch (IOException ignored) {
                    // an old checkpoint that cannot be deleted costs disk space, nothing else
                }
            }
        }
    }

    /**
     * Writes a complete HF model directory at {@code dir} (which must not exist): weights + config via
     * {@link DecoderModel#save}, then the tokenizer files.
     */
    static void writeModelDir(Path dir, DecoderModel model, Path tokenizerDir) {
        model.save(dir);
        if (tokenizerDir != null) {
            Tokenizer.copyFiles(tokenizerDir, dir);
        }
    }

    /**
     * Writes a stage's final model to {@code models/<stage>/} atomically (temporary directory, then rename), so that
     * {@link RunDir#stageDone} is true only for a complete directory.
     */
    public static Path saveStageModel(RunDir run, String stage, DecoderModel model, Path tokenizerDir) {
        Path target = run.stageModel(stage);
        String bad = NonFiniteException.firstNonFiniteParameter(model.parameters());
        if (bad != null) {
            throw new NonFiniteException(stage, -1, "the final " + stage + " model holds values that are not finite"
                    + " numbers (weight '" + bad + "'); it was not saved. Lower the learning rate or enable gradient"
                    + " clipping (" + DIVERGED_SETTINGS + ").");
        }
        Path tmp = target.resolveSibling(TempFiles.name(stage));
        try {
            writeModelDir(tmp, model, tokenizerDir);
            RunDir.publish(tmp, target);
        } catch (IOException e) {
            throw new CheckpointException("cannot write the " + stage + " model to " + target + ": "
                    + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
        return target;
    }

    /** AdamW moments and step count as safetensors ({@code <param>.exp_avg}, {@code <param>.exp_avg_sq}). */
    static void saveOptimizer(AdamW opt, Path file) {
        AdamW.State st = opt.state();
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.metadata("format", "rlsr-adamw");
        w.metadata("step", Long.toString(st.step()));
        w.metadata("lr", Float.toString(opt.config().lr()));
        for (String name : new java.util.TreeSet<>(st.m().keySet())) {
            float[] m = st.m().get(name), v = st.v().get(name);
            w.putF32(name + ".exp_avg", new long[]{m.length}, m);
            w.putF32(name + ".exp_avg_sq", new long[]{v.length}, v);
        }
        w.write(file);
    }

    /** What {@link #saveOptimizer} wrote, ready for {@link AdamW#loadState}. */
    public static AdamW.State readOptimizer(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException("checkpoint has no optimizer state " + file);
        }
        try (SafeTensors st = SafeTensors.open(file)) {
            long step = Long.parseLong(st.metadata().getOrDefault("step", "0"));
            Map<String, float[]> m = new LinkedHashMap<>(), v = new LinkedHashMap<>();
            for (String n : st.names()) {
                if (n.endsWith(".exp_avg")) {
                    String p = n.substring(0, n.length() - ".exp_avg".length());
                    m.put(p, st.floats(n));
                    v.put(p, st.floats(p + ".exp_avg_sq"));
                }
            }
            return new AdamW.State(step, m, v);
        }
    }
}
