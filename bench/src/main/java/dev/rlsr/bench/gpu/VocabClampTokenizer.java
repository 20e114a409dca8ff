package dev.rlsr.bench.gpu;

import dev.rlsr.engine.tokenizer.ChatTemplate;
import dev.rlsr.engine.tokenizer.SpecialTokens;
import dev.rlsr.engine.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;

/**
 * A tokenizer whose decode accepts every id of a padded embedding: a randomly initialised Qwen2.5-0.5B-shaped
 * policy samples from all 151936 ids, the Qwen tokenizer knows 151669, and {@code HfTokenizer} rejects the rest.
 * Ids at or above the tokenizer's vocabulary are decoded as {@code id mod vocabSize}; everything else is the wrapped
 * tokenizer's. Only the texts handed to the reward change (by about 0.2% of their tokens); the sampled ids, the
 * trained tokens and the timings do not. A trained model gives those padding ids almost no probability.
 */
final class VocabClampTokenizer implements Tokenizer {
    private final Tokenizer inner;
    private final int vocab;

    VocabClampTokenizer(Tokenizer inner) {
        this.inner = inner;
        this.vocab = inner.vocabSize();
    }

    private int[] clamp(int[] ids) {
        int[] out = ids;
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] >= vocab) {
                if (out == ids) {
                    out = ids.clone();
                }
                out[i] = ids[i] % vocab;
            }
        }
        return out;
    }

    @Override
    public int vocabSize() {
        return inner.vocabSize();
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        return inner.encode(text, addSpecialTokens);
    }

    @Override
    public List<int[]> encodeBatch(List<String> texts, boolean addSpecialTokens) {
        return inner.encodeBatch(texts, addSpecialTokens);
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        return inner.decode(clamp(ids), skipSpecialTokens);
    }

    @Override
    public List<String> decodeBatch(List<int[]> ids, boolean skipSpecialTokens) {
        List<int[]> clamped = new ArrayList<>(ids.size());
        for (int[] row : ids) {
            clamped.add(clamp(row));
        }
        return inner.decodeBatch(clamped, skipSpecialTokens);
    }

    @Override
    public OptionalInt tokenId(String token) {
        return inner.tokenId(token);
    }

    @Override
    public String idToToken(int id) {
        return inner.idToToken(id);
    }

    @Override
    public SpecialTokens specialTokens() {
        return inner.specialTokens();
    }

    @Override
    public ChatTemplate chatTemplate() {
        return inner.chatTemplate();
    }

    @Override
    public Path directory() {
        return inner.directory();
    }

    @Override
    public void close() {
        inner.close();
    }
}
