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

    private static final java.lang.foreign.ValueLayout.OfInt LE_I32 =
            java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final java.lang.foreign.ValueLayout.OfShort LE_I16 =
            java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    /**
     * Throws unless every element of one floating tensor of the checkpoint is a finite number, reading the
     * memory-mapped bytes directly (F32, BF16 or F16: an exponent of all ones is infinite or NaN), so a checkpoint is
     * checked without being converted to {@code float[]}.
     *
     * @param st   the opened checkpoint
     * @param name the tensor's name in the file
     * @throws CheckpointException naming the file, the tensor, the first bad element and how many there are
     */
    public static void requireFinite(SafeTensors st, String name) {
        TensorInfo info = st.info(name);
        java.lang.foreign.MemorySegment seg = st.segment(name);
        long n = info.numel(), first = -1, bad = 0;
        dev.rlsr.kernels.DType t = info.dtype();
        for (long i = 0; i < n; i++) {
            boolean finite = switch (t) {
                case F32 -> (seg.getAtIndex(LE_I32, i) & 0x7f800000) != 0x7f800000;
                case BF16 -> (seg.getAtIndex(LE_I16, i) & 0x7f80) != 0x7f80;
                case F16 -> (seg.getAtIndex(LE_I16, i) & 0x7c00) != 0x7c00;
                default -> true;
            };
            if (!finite) {
                bad++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        if (bad > 0) {
            float value = switch (t) {
                case F32 -> Float.intBitsToFloat(seg.getAtIndex(LE_I32, first));
                case BF16 -> Float.intBitsToFloat((seg.getAtIndex(LE_I16, first) & 0xffff) << 16);
                default -> Float.float16ToFloat(seg.getAtIndex(LE_I16, first));
            };
            throw new CheckpointException(info.file() + ": tensor '" + name + "' holds " + value + " at element "
                    + first + " (" + bad + " of its " + n + " values are not finite numbers). A NaN or infinite"
                    + " weight makes every output NaN: the file is damaged, or the run that wrote it diverged.");
        }
    }
}
