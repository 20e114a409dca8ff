package dev.rlsr.trainer.reward;

import dev.rlsr.trainer.encoder.Encoder;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RewardSpecTest {

    static final Supplier<Encoder> NO_ENCODER = () -> {
        throw new AssertionError("the encoder must not be created for a spec without cosine");
    };

    @Test
    void parsesTextForms() {
        assertEquals(Map.of("cosine", 1.0), RewardSpec.parse("cosine").weights());
        RewardSpec mix = RewardSpec.parse("0.7*cosine+0.3*rougeL");
        assertEquals(List.of("cosine", "rougeL"), List.copyOf(mix.weights().keySet()));
        assertEquals(0.7, mix.weights().get("cosine"));
        assertEquals(0.3, mix.weights().get("rougeL"));
        RewardSpec spaced = RewardSpec.parse(" cosine - 0.1 * length + 1e-1*BLEU ");
        assertEquals(1.0, spaced.weights().get("cosine"));
        assertEquals(-0.1, spaced.weights().get("length"));
        assertEquals(0.1, spaced.weights().get("bleu"));
        assertEquals(-1.0, RewardSpec.parse("-length").weights().get("length"));
        assertEquals(Map.of("rougeL", 2.0), RewardSpec.parse("2*rougel").weights());
    }

    @Test
    void textFormRoundTrips() {
        for (String s : List.of("cosine", "0.7*cosine+0.3*rougeL", "cosine-0.1*length", "-2*exact+bleu")) {
            RewardSpec spec = RewardSpec.parse(s);
            assertEquals(spec, RewardSpec.parse(spec.toString()), s + " -> " + spec);
        }
        assertEquals("0.7*cosine+0.3*rougeL", RewardSpec.parse("0.7 * cosine + 0.3 * rougeL").toString());
    }

    @Test
    void mapForm() {
        Map<String, Number> m = new LinkedHashMap<>();
        m.put("cosine", 0.7);
        m.put("rougeL", 0.3);
        assertEquals(RewardSpec.parse("0.7*cosine+0.3*rougeL"), RewardSpec.of(m));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RewardSpec.of(Map.of("bertscore", 1)));
        assertTrue(e.getMessage().contains("unknown reward 'bertscore'"), e.getMessage());
        assertTrue(e.getMessage().contains("cosine, bleu, rougeL, exact, length"), e.getMessage());
    }

    @Test
    void errorsNameTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RewardSpec.parse("0.7*cosin+0.3*rougeL"));
        assertTrue(e.getMessage().contains("unknown reward 'cosin'"), e.getMessage());
        assertTrue(e.getMessage().contains("known rewards: cosine, bleu, rougeL, exact, length"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RewardSpec.parse("cosine+0.5*cosine"));
        assertTrue(e.getMessage().contains("'cosine' appears more than once"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RewardSpec.parse("0*bleu"));
        assertTrue(e.getMessage().contains("non-zero"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RewardSpec.parse("0.7 cosine"));
        assertTrue(e.getMessage().contains("position"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RewardSpec.parse("cosine+"));
        assertTrue(e.getMessage().contains("position"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RewardSpec.parse("  "));
        e = assertThrows(IllegalArgumentException.class, () -> Reward.fromSpec("cosine", null));
        assertTrue(e.getMessage().contains("encoder"), e.getMessage());
    }

    @Test
    void fromSpecBuildsRewards() {
        assertInstanceOf(BleuReward.class, Reward.fromSpec("bleu", NO_ENCODER));
        assertInstanceOf(LengthReward.class, Reward.fromSpec(RewardSpec.single("length"), NO_ENCODER));
        Reward mix = Reward.fromSpec("0.5*bleu+0.25*rougeL-0.1*length", NO_ENCODER);
        WeightedReward weighted = assertInstanceOf(WeightedReward.class, mix);
        assertEquals("0.5*bleu+0.25*rougeL-0.1*length", weighted.name());
        List<RewardInput> batch = List.of(
                new RewardInput("a", "q", "The cat sat on the mat.", "A cat was sitting on the mat."),
                new RewardInput("b", "q", "", "Some reference."),
                new RewardInput("c", "q", "Paris", "Paris"));
        double[] bleu = new BleuReward().score(batch);
        double[] rouge = new RougeLReward().score(batch);
        double[] length = new LengthReward().score(batch);
        WeightedReward.Scores scores = weighted.scoreWithComponents(batch);
        for (int i = 0; i < batch.size(); i++) {
            assertEquals(0.5 * bleu[i] + 0.25 * rouge[i] - 0.1 * length[i], scores.total()[i], 1e-12);
            assertEquals(bleu[i], scores.components().get("bleu")[i]);
        }
        mix.close();
    }
}
