package dev.rlsr.trainer.train;

import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.optim.AdamW;

/** Saves everything a resumed run needs (implemented by the run directory: atomic temp dir + rename, "latest"). */
public interface Checkpointer {

    /** A checkpointer that saves nothing. */
    Checkpointer NONE = (stage, state, model, optimizer) -> {};

    /**
     * Called by a trainer at its checkpoint points, after an optimizer step. The state lets the run continue with
     * the same step count and data order; the optimizer's moments come from {@link AdamW#state()} (restored
     * with {@link AdamW#loadState}).
     */
    void save(String stage, TrainState state, DecoderModel model, AdamW optimizer);
}
