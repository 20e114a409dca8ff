package dev.rlsr.engine.io;

import dev.rlsr.engine.config.ModelConfig;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checks of a decoder checkpoint that run before, and right after, its weights are read:
 * <ul>
 *   <li>{@link #configMatchesHeaders}: config.json against the safetensors headers, before anything is allocated.
 *       An absurd {@code num_hidden_layers} (say 1e9) would otherwise be expanded into a billion parameter names
 *       and run for minutes before failing on the first missing tensor.</li>
 *   <li>{@link #requireFinite}: every weight read is a finite number. One NaN weight makes every logit NaN; found
 *       here it is named (file and tensor) instead of surfacing later as a sampling error.</li>
 * </ul>
 */
public final class CheckpointChecks {
    private static final Pattern LAYER = Pattern.compile("(?:model\\.)?layers\\.(\\d+)\\..+");

    private CheckpointChecks() {
    }

    /**
     * Throws unless the checkpoint's headers hold every decoder layer config.json asks for and an input embedding
     * of shape (vocab_size, hidden_size).
     *
     * @param cfg      the parsed config.json
     * @param st       the opened checkpoint (headers only are read)
     * @param dir      the model directory, for messages
     * @param backbone names may lack the {@code model.} prefix (an embedding backbone saved without the LM head)
     * @throws CheckpointException naming config.json, the key, its value and what the checkpoint holds
     */
    public static void configMatchesHeaders(ModelConfig cfg, SafeTensors st, Path dir, boolean backbone) {
        Path config = dir.resolve("config.json");
        TreeSet<Integer> layers = new TreeSet<>();
        for (String name : st.names()) {
            Matcher m = LAYER.matcher(name);
            if (m.matches() && (backbone || name.startsWith("model."))) {
                try {
                    layers.add(Integer.parseInt(m.group(1)));
                } catch (NumberFormatException ignored) {
                    // an index beyond int is not a layer the config could ask for
                }
            }
        }
        int want = cfg.numLayers();
        // bounded by the number of tensors in the file, whatever the config says
        boolean complete = want <= layers.size();
        for (int l = 0; complete && l < want; l++) {
            complete = layers.contains(l);
        }
        if (!complete) {
            int missing = 0;
            while (missing < want && layers.contains(missing)) {
                missing++;
            }
            throw new CheckpointException(config + ": num_hidden_layers is " + want + ", but the checkpoint ("
                    + describeFiles(st) + ") holds " + layers.size() + " decoder layer" + (layers.size() == 1 ? "" : "s")
                    + (layers.isEmpty() ? "" : " (" + layerRange(layers) + ")") + "; layer " + missing + " is missing."
                    + " config.json and the weights do not belong together.");
        }
        String embed = "model.embed_tokens.weight";
        if (backbone && !st.contains(embed) && st.contains("embed_tokens.weight")) {
            embed = "embed_tokens.weight";
        }
        if (st.contains(embed)) {
            TensorInfo t = st.info(embed);
            long[] expected = {cfg.vocabSize(), cfg.hiddenSize()};
            if (!Arrays.equals(t.shape(), expected)) {
                throw new CheckpointException(config + ": vocab_size " + cfg.vocabSize() + " and hidden_size "
                        + cfg.hiddenSize() + " need '" + embed + "' of shape " + Arrays.toString(expected) + ", but "
                        + t.file().getFileName() + " holds " + Arrays.toString(t.shape())
                        + "; config.json and the weights do not belong together.");
            }
        }
    }

    private static String layerRange(TreeSet<Integer> layers) {
        return layers.size() == 1 ? "layer " + layers.first() : "layers " + layers.first() + ".." + layers.last();
    }

    private static String describeFiles(SafeTensors st) {
        var files = st.files();
        return files.size() == 1 ? files.getFirst().getFileName().toString()
                : files.size() + " shards listed in " + SafeTensors.INDEX_FILE;
    }

    /**
     * Throws at the first weight that is NaN or infinite.
     *
     * @param values tensor name to its values, as read from {@code st} (a backbone's {@code model.x} may be stored
     *               as {@code x}; the message names the tensor as the file does)
     * @param st     the checkpoint they were read from, for the file names
     * @throws CheckpointException naming the file, the tensor and the element
     */
    public static void requireFinite(Map<String, float[]> values, SafeTensors st) {
        for (Map.Entry<String, float[]> e : values.entrySet()) {
            float[] v = e.getValue();
            for (int i = 0; i < v.length; i++) {
                if (!Float.isFinite(v[i])) {
                    String inFile = e.getKey();
                    if (!st.contains(inFile) && inFile.startsWith("model.")
                            && st.contains(inFile.substring("model.".length()))) {
                        inFile = inFile.substring("model.".length());
                    }
                    Path file = st.contains(inFile) ? st.info(inFile).file() : st.path();
                    throw new CheckpointException(file + ": tensor '" + inFile + "' holds " + v[i] + " at element "
                            + i + " (" + count(v) + " of its " + v.length + " values are not finite numbers). A"
                            + " NaN or infinite weight makes every output NaN: the file is damaged, or the run that"
                            + " wrote it diverged.");
                }
            }
        }
    }

    private static int count(float[] v) {
        int n = 0;
        for (float x : v) {
            if (!Float.isFinite(x)) {
                n++;
            }
        }
        return n;
    }
}
