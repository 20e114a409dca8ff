package dev.rlsr.trainer.sft;

import dev.rlsr.engine.tokenizer.Tokenizer;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.train.Batcher.Sequence;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Tokenization for the supervised stages. Chat examples become {@code encodeChat(prompt, addGenerationPrompt=true)
 * ⊕ encode(response) ⊕ eos}: exactly the ids a rollout produces (prompt through the same template, completion ending
 * with the stop token, for ChatML {@code <|im_end|>}), so SFT and RL train the same distribution. Raw texts (base
 * model pretraining) become {@code encode(text) ⊕ eos}, no chat format, every token trained.
 */
public final class SftData {
    private SftData() {}

    /**
     * One sequence per example, truncated on the right to maxSeqLen. With prompt masking the prompt's labels are
     * -100; the response and its eos are always trained.
     */
    public static List<Sequence> fromExamples(Tokenizer tokenizer, List<Example> examples, boolean promptMasking,
                                              int maxSeqLen) {
        int eos = tokenizer.specialTokens().eosId();
        List<Sequence> out = new ArrayList<>(examples.size());
        for (Example e : examples) {
            int[] prompt = tokenizer.encodeChat(e.prompt(), true);
            int[] response = tokenizer.encode(e.response(), false);
            int n = prompt.length + response.length + (eos >= 0 ? 1 : 0);
            int[] ids = new int[n];
            System.arraycopy(prompt, 0, ids, 0, prompt.length);
            System.arraycopy(response, 0, ids, prompt.length, response.length);
            if (eos >= 0) {
                ids[n - 1] = eos;
            }
            int[] labels = ids.clone();
            if (promptMasking) {
                Arrays.fill(labels, 0, prompt.length, -100);
            }
            int keep = Math.min(n, maxSeqLen);
            out.add(new Sequence(Arrays.copyOf(ids, keep), Arrays.copyOf(labels, keep)));
        }
        return out;
    }

    /** Raw texts for language-model pretraining, each followed by eos and split into chunks of maxSeqLen. */
    public static List<Sequence> fromTexts(Tokenizer tokenizer, List<String> texts, int maxSeqLen) {
        int eos = tokenizer.specialTokens().eosId();
        List<Sequence> out = new ArrayList<>();
        List<int[]> encoded = tokenizer.encodeBatch(texts, true);
        for (int[] t : encoded) {
            int[] ids = eos >= 0 ? Arrays.copyOf(t, t.length + 1) : t;
            if (eos >= 0) {
                ids[t.length] = eos;
            }
            for (int from = 0; from < ids.length; from += maxSeqLen) {
                int[] chunk = Arrays.copyOfRange(ids, from, Math.min(ids.length, from + maxSeqLen));
                if (chunk.length >= 2) {
                    out.add(new Sequence(chunk, chunk.clone()));
                }
            }
        }
        return out;
    }
}
