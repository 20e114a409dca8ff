package dev.rlsr.trainer;

import dev.rlsr.trainer.data.DemoDataset;
import dev.rlsr.trainer.data.Example;
import dev.rlsr.trainer.reward.RewardInput;

import java.util.ArrayList;
import java.util.List;

/**
 * A small RLSR reward batch of real prompt/response pairs for the device tests: P = 4 prompts x G = 4 responses. Three
 * prompts come from the bundled demo evaluation set, each with its reference, the reference of another example of the
 * same task (a confident wrong answer), the first half of its reference and an unrelated sentence; the fourth asks
 * for an explanation and is answered with paragraphs of ~40 to ~240 word pieces, so the batch also holds long
 * sequences (padding within a batch, attention over a few hundred positions). Kept small: on the CUDA emulator every
 * kernel runs at CPU speed.
 */
public final class RewardPairs {
    /** G: responses per prompt. */
    public static final int G = 4;

    private static final String PASSAGE = "Photosynthesis is the process by which green plants, algae and some"
            + " bacteria turn light into chemical energy. In the chloroplasts, chlorophyll absorbs mostly red and blue"
            + " light; the energy splits water molecules, which releases oxygen, and drives the synthesis of ATP and"
            + " NADPH. In the Calvin cycle these carriers fix carbon dioxide from the air into three-carbon sugars,"
            + " from which the plant builds glucose, starch and cellulose. The rate of photosynthesis depends on the"
            + " light intensity, the concentration of carbon dioxide and the temperature, and each of them can become"
            + " the limiting factor.";

    private RewardPairs() {
    }

    /** {@return the batch, rows grouped by prompt (the GRPO layout)} */
    public static List<RewardInput> batch() {
        List<Example> eval = DemoDataset.load(DemoDataset.EVAL_RESOURCE);
        List<RewardInput> out = new ArrayList<>();
        int[] picks = {0, 2, 7};
        for (int pick : picks) {
            Example e = eval.get(pick);
            String prompt = e.lastUserContent();
            String ref = e.response();
            String wrong = eval.stream().skip(pick + 1L).filter(o -> sameTask(o, e)).findFirst().orElseThrow()
                    .response();
            out.add(new RewardInput(e.id(), prompt, ref, ref));
            out.add(new RewardInput(e.id(), prompt, wrong, ref));
            out.add(new RewardInput(e.id(), prompt, ref.substring(0, ref.length() / 2), ref));
            out.add(new RewardInput(e.id(), prompt, "I am not sure, but the weather is nice today.", ref));
        }
        String prompt = "Explain how a plant makes sugar from light.";
        String ref = "The plant captures light with chlorophyll in its chloroplasts. The light energy splits water,"
                + " which releases oxygen, and produces the energy carriers ATP and NADPH. The Calvin cycle then uses"
                + " these carriers to fix carbon dioxide from the air into three-carbon sugars, and the plant builds"
                + " glucose, starch and cellulose from them. How fast this happens depends on light, carbon dioxide"
                + " and temperature.";
        out.add(new RewardInput("passage", prompt, ref, ref));
        out.add(new RewardInput("passage", prompt, PASSAGE, ref));
        out.add(new RewardInput("passage", prompt, "Plants make sugar by absorbing nutrients from the soil through"
                + " their roots and storing them in the leaves, where the sun warms them until they turn sweet.", ref));
        out.add(new RewardInput("passage", prompt, PASSAGE + " " + ref + " In short, light becomes sugar.", ref));
        return out;
    }

    private static boolean sameTask(Example o, Example e) {
        // demo ids carry no task; the first word of the prompt is a close enough proxy (Reverse, Compute, What...)
        return !o.id().equals(e.id()) && o.lastUserContent().split(" ")[0].equals(e.lastUserContent().split(" ")[0]);
    }
}
