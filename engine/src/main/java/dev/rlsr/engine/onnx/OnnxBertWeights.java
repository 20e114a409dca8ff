package dev.rlsr.engine.onnx;

import dev.rlsr.engine.model.BertConfig;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Takes the weights of a BERT encoder exported to ONNX by {@code torch.onnx.export} (e.g. the all-MiniLM-L6-v2
 * graph that ships in langchain4j's jar) and names them as HF {@code BertModel} parameters.
 *
 * <p>Biases, embeddings and LayerNorm parameters keep their torch names as initializers. The exporter turns each
 * {@code nn.Linear} into {@code MatMul(x, W')} + {@code Add(bias, ·)} with {@code W' = Wᵀ (in,out)} stored under
 * an anonymous name ({@code onnx::MatMul_787}); such a weight is named from the graph, not from its position:
 * the {@code Add} that consumes the MatMul's output adds the initializer {@code <prefix>.bias}, so the weight is
 * {@code <prefix>.weight}, transposed back to (out,in). Where no such Add exists the MatMul node's own name
 * ({@code /encoder/layer.0/attention/self/query/MatMul}) gives the prefix.
 */
public final class OnnxBertWeights {
    private OnnxBertWeights() {}

    /**
     * HF parameter names (no {@code bert.} prefix) to fp32 values; includes every float initializer it could name.
     *
     * @param graph a BERT ONNX graph
     * @return the weights by HF name
     */
    public static Map<String, float[]> hfWeights(OnnxGraph graph) {
        Map<String, OnnxGraph.Initializer> inits = graph.initializers();
        Map<String, float[]> out = new LinkedHashMap<>();
        for (OnnxGraph.Initializer t : inits.values()) {
            if (t.floats() != null && (t.name().startsWith("embeddings.") || t.name().startsWith("encoder.")
                    || t.name().startsWith("bert."))) {
                out.put(strip(t.name()), t.floats());
            }
        }
        Map<String, List<OnnxGraph.Node>> consumers = new HashMap<>();
        for (OnnxGraph.Node n : graph.nodes()) {
            for (String in : n.inputs()) {
                consumers.computeIfAbsent(in, k -> new java.util.ArrayList<>()).add(n);
            }
        }
        for (OnnxGraph.Node n : graph.nodes()) {
            if (!n.opType().equals("MatMul") || n.inputs().size() != 2) {
                continue;
            }
            OnnxGraph.Initializer w = inits.get(n.inputs().get(1));
            if (w == null || w.floats() == null || w.dims().length != 2 || out.containsKey(strip(w.name()))) {
                continue;
            }
            String prefix = biasPrefix(n, inits, consumers);
            if (prefix == null) {
                prefix = namePrefix(n.name());
            }
            if (prefix == null) {
                throw new IllegalArgumentException("cannot name the weight '" + w.name() + "' of MatMul node '"
                        + n.name() + "': no Add of a '.bias' initializer follows it and the node name is not a module"
                        + " path");
            }
            String name = strip(prefix) + ".weight";
            if (out.containsKey(name)) {
                throw new IllegalArgumentException("two ONNX MatMul weights map to '" + name + "'");
            }
            out.put(name, transpose(w.floats(), (int) w.dims()[0], (int) w.dims()[1]));
        }
        return out;
    }

    /**
     * The config implied by the weights' shapes; the head count is not in the weights (only in reshape constants),
     * so the caller gives it. The activation is taken as gelu and LayerNorm eps as 1e-12 (BERT's).
     *
     * @param weights       the weights from {@link #hfWeights}
     * @param numHeads      attention heads
     * @param typeVocabSize token type ids
     * @return the config
     */
    public static BertConfig inferConfig(Map<String, float[]> weights, int numHeads, int typeVocabSize) {
        float[] words = need(weights, "embeddings.word_embeddings.weight");
        float[] lnw = need(weights, "embeddings.LayerNorm.weight");
        int c = lnw.length;
        int layers = 0;
        while (weights.containsKey("encoder.layer." + layers + ".attention.self.query.weight")) {
            layers++;
        }
        int f = need(weights, "encoder.layer.0.intermediate.dense.bias").length;
        int positions = need(weights, "embeddings.position_embeddings.weight").length / c;
        return new BertConfig(words.length / c, c, layers, numHeads, f, positions, typeVocabSize, 1e-12, "gelu");
    }

    private static float[] need(Map<String, float[]> w, String name) {
        float[] v = w.get(name);
        if (v == null) {
            throw new IllegalArgumentException("the ONNX graph has no weight for '" + name + "'");
        }
        return v;
    }

    private static String biasPrefix(OnnxGraph.Node matmul, Map<String, OnnxGraph.Initializer> inits,
                                     Map<String, List<OnnxGraph.Node>> consumers) {
        for (OnnxGraph.Node c : consumers.getOrDefault(matmul.outputs().getFirst(), List.of())) {
            if (!c.opType().equals("Add")) {
                continue;
            }
            for (String in : c.inputs()) {
                if (inits.containsKey(in) && in.endsWith(".bias")) {
                    return in.substring(0, in.length() - ".bias".length());
                }
            }
        }
        return null;
    }

    /** {@code /encoder/layer.0/attention/self/query/MatMul} to {@code encoder.layer.0.attention.self.query}. */
    private static String namePrefix(String nodeName) {
        if (!nodeName.startsWith("/") || !nodeName.endsWith("/MatMul")) {
            return null;
        }
        String p = nodeName.substring(1, nodeName.length() - "/MatMul".length()).replace('/', '.');
        return p.startsWith("encoder.") || p.startsWith("bert.") ? p : null;
    }

    private static String strip(String name) {
        return name.startsWith("bert.") ? name.substring("bert.".length()) : name;
    }

    /** (rows, cols) to (cols, rows). */
    static float[] transpose(float[] a, int rows, int cols) {
        float[] t = new float[a.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = a[r * cols + c];
            }
        }
        return t;
    }
}
