package dev.rlsr.trainer.reward;

import java.util.Objects;

/**
 * One row of a reward batch: prompt x, sampled response y and reference (human) response y*.
 * {@code exampleId} names the (x, y*) pair; the G rollouts of one prompt share it, which is what lets the
 * cosine reward embed {@code x ⊕ y*} once per example. Empty strings are allowed; nulls are not.
 */
public record RewardInput(String exampleId, String prompt, String response, String reference) {
    public RewardInput {
        Objects.requireNonNull(exampleId, "RewardInput.exampleId is null");
        if (exampleId.isBlank()) {
            throw new IllegalArgumentException("RewardInput.exampleId must not be blank");
        }
        Objects.requireNonNull(prompt, () -> "prompt of example '" + exampleId + "' is null (use \"\" for no prompt)");
        Objects.requireNonNull(response, () -> "response of example '" + exampleId + "' is null (use \"\" for an empty response)");
        Objects.requireNonNull(reference, () -> "reference of example '" + exampleId + "' is null");
    }
}
