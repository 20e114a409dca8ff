package dev.rlsr.bench.reward;

import dev.rlsr.trainer.reward.RewardInput;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The synthetic English-like texts the reward and encoder benchmarks score (CPU {@link RewardBench},
 * {@link EncoderBench}, and the GPU {@code RewardGpuBench}): sentences of words drawn from a fixed list, so every
 * benchmark sees the same texts for the same seed.
 */
public final class BenchTexts {
    private static final String[] WORDS = ("the a of to and in is that for it with as was on be by this are at from "
            + "model reward policy gradient sentence embedding learning training response reference prompt answer "
            + "question because however therefore example method result value important different system process "
            + "people water energy light city country history science language number small large first second "
            + "explain describe consider compute measure improve return provide include require follow").split(" ");

    private BenchTexts() {
    }

    /**
     * The CPU benchmarks' batch: {@code prompts} prompts of 34 words and their 140-word references first, then
     * {@code group} 140-word responses per prompt, drawn from one seeded generator; rows grouped by prompt
     * (example id {@code "p" + prompt}).
     *
     * @param prompts prompts
     * @param group   responses per prompt
     * @return prompts x group rows
     */
    public static List<RewardInput> rows(int prompts, int group) {
        SplittableRandom rnd = new SplittableRandom(2510_14200L);
        List<String> ps = new ArrayList<>(prompts);
        List<String> references = new ArrayList<>(prompts);
        for (int p = 0; p < prompts; p++) {
            ps.add(sentence(rnd, 34) + "?");
            references.add(sentence(rnd, 140) + ".");
        }
        List<RewardInput> rows = new ArrayList<>(prompts * group);
        for (int p = 0; p < prompts; p++) {
            for (int g = 0; g < group; g++) {
                rows.add(new RewardInput("p" + p, ps.get(p), sentence(rnd, 140) + ".", references.get(p)));
            }
        }
        return rows;
    }

    /**
     * What the encoder embeds for each row: the prompt, a newline, the response.
     *
     * @param rows the rows
     * @return one text per row
     */
    public static List<String> texts(List<RewardInput> rows) {
        List<String> texts = new ArrayList<>(rows.size());
        for (RewardInput r : rows) {
            texts.add(r.prompt() + "\n" + r.response());
        }
        return texts;
    }

    /**
     * A sentence of {@code words} words: the first capitalised, a comma before every 13th, no final punctuation.
     *
     * @param rnd   the generator (advanced by one draw per word)
     * @param words how many words
     * @return the sentence
     */
    public static String sentence(SplittableRandom rnd, int words) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < words; i++) {
            String w = WORDS[rnd.nextInt(WORDS.length)];
            if (i == 0) {
                w = Character.toUpperCase(w.charAt(0)) + w.substring(1);
            } else {
                sb.append(i % 13 == 0 ? ", " : " ");
            }
            sb.append(w);
        }
        return sb.toString();
    }
}
