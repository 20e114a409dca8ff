package dev.rlsr.trainer.reward;

import dev.rlsr.trainer.encoder.MiniLmOnnxEncoder;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The RLSR reward end to end with the default SentenceBERT encoder. */
class CosineRewardMiniLmTest {

    @Test
    void rlsrRewardWithMiniLm() {
        try (Reward reward = Reward.fromSpec("cosine", MiniLmOnnxEncoder::create)) {
            CosineReward cosine = assertInstanceOf(CosineReward.class, reward);
            String prompt = "What is the capital of France?";
            String reference = "The capital of France is Paris.";
            List<RewardInput> batch = List.of(
                    new RewardInput("q1", prompt, reference, reference),
                    new RewardInput("q1", prompt, "Paris is France's capital city.", reference),
                    new RewardInput("q1", prompt, "Bananas are rich in potassium and grow in tropical climates.", reference),
                    new RewardInput("q1", prompt, "", reference));
            double[] r = reward.score(batch);
            assertEquals(1, cosine.encoderCalls());
            assertEquals(1.0, r[0], 1e-6);
            assertTrue(r[1] > r[2], "paraphrase " + r[1] + " vs unrelated " + r[2]);
            assertEquals(0.0, r[3], "blank response");
            for (double v : r) {
                assertTrue(Double.isFinite(v) && v >= -1 && v <= 1);
            }
        }
    }
}
