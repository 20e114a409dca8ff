package dev.rlsr.engine.model;

import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.io.CheckpointException;
import dev.rlsr.engine.io.SafeTensors;
import dev.rlsr.engine.io.SafeTensorsWriter;
import dev.rlsr.engine.io.TensorInfo;
import dev.rlsr.engine.optim.AdamW;
import dev.rlsr.engine.optim.ParamLayout;
import dev.rlsr.engine.optim.ParamStore;
import dev.rlsr.engine.tensor.Backend;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;
import dev.rlsr.kernels.DType;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * The weights of a decoder: a {@link ParamStore} (flat buffers, one view per HF parameter name), their loading,
 * random initialisation and saving, and per-layer handles for the forward and backward.
 *
 * <p>Loading streams each safetensors tensor from the memory-mapped file into the flat buffer on the backend
 * ({@link Backend#uploadRaw}), converting F16/BF16/F32 on the way, so a checkpoint is never held in host memory as
 * {@code float[]}. Saving writes the checkpoint's own dtype (the {@code torch_dtype}/{@code dtype} of its
 * config.json, fp32 for a model initialised here), so config.json and the tensors always agree.
 */
public final class DecoderWeights implements AutoCloseable {

    /** A linear layer's compute weight (out,in), optional bias (out), and their gradients (null when frozen). */
    record Lin(Tensor w, Tensor b, Tensor gw, Tensor gb) {}

    /** An RMSNorm weight and its gradient. */
    record Norm(Tensor w, Tensor gw) {}

    record Layer(Lin q, Lin k, Lin v, Lin o, Norm qNorm, Norm kNorm, Lin gate, Lin up, Lin down, Norm ln1,
                 Norm ln2) {}

    private final ModelConfig config;
    private final ParamStore store;
    final Tensor embed;
    final Tensor embedGrad;
    final Tensor lmHead;
    final Tensor lmHeadGrad;
    final Norm finalNorm;
    final Layer[] layers;
    final Tensor invFreq;

    private DecoderWeights(ModelConfig config, ParamStore store) {
        this.config = config;
        this.store = store;
        if (config.headDim() % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for RoPE, got " + config.headDim());
        }
        embed = store.compute("model.embed_tokens.weight");
        embedGrad = store.grad("model.embed_tokens.weight");
        lmHead = config.tieWordEmbeddings() ? embed : store.compute("lm_head.weight");
        lmHeadGrad = config.tieWordEmbeddings() ? embedGrad : store.grad("lm_head.weight");
        finalNorm = norm("model.norm");
        layers = new Layer[config.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "model.layers." + l + ".";
            layers[l] = new Layer(lin(p + "self_attn.q_proj"), lin(p + "self_attn.k_proj"),
                    lin(p + "self_attn.v_proj"), lin(p + "self_attn.o_proj"),
                    config.qkNorm() ? norm(p + "self_attn.q_norm") : null,
                    config.qkNorm() ? norm(p + "self_attn.k_norm") : null,
                    lin(p + "mlp.gate_proj"), lin(p + "mlp.up_proj"), lin(p + "mlp.down_proj"),
                    norm(p + "input_layernorm"), norm(p + "post_attention_layernorm"));
        }
        float[] inv = config.ropeInvFreq();
        invFreq = store.backend().upload(inv, inv.length);
    }

    private Lin lin(String prefix) {
        Map<String, long[]> shapes = store.layout().shapes();
        String bias = prefix + ".bias";
        boolean hasBias = shapes.containsKey(bias);
        return new Lin(store.compute(prefix + ".weight"), hasBias ? store.compute(bias) : null,
                store.grad(prefix + ".weight"), hasBias ? store.grad(bias) : null);
    }

    private Norm norm(String prefix) {
        return new Norm(store.compute(prefix + ".weight"), store.grad(prefix + ".weight"));
    }

    private static ParamStore allocate(ModelConfig cfg, Backend backend, Precision precision, boolean trainable) {
        ParamLayout layout = ParamLayout.of(cfg.parameterShapes(), AdamW.DEFAULT_DECAY);
        return ParamStore.allocate(backend, layout, precision, trainable);
    }

    // ================================================================== creation

    /**
     * Loads the tensors of an HF model directory.
     *
     * @param hfDir     directory with config.json and model.safetensors (or a sharded index)
     * @param cfg       its config (possibly adjusted, see {@code DecoderModel.loadBackbone})
     * @param backend   where the weights go
     * @param precision compute precision
     * @param trainable whether gradients and a master copy are allocated
     * @param nameOf    maps a parameter name to the tensor name in the checkpoint (null result: missing)
     * @return the weights
     */
    static DecoderWeights load(Path hfDir, ModelConfig cfg, Backend backend, Precision precision, boolean trainable,
                               Function<SafeTensors, Function<String, String>> nameOf) {
        try (SafeTensors st = SafeTensors.open(hfDir)) {
            Function<String, String> names = nameOf.apply(st);
            LinkedHashMap<String, long[]> shapes = cfg.parameterShapes();
            // check every tensor's presence and shape before anything is allocated
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                String found = names.apply(e.getKey());
                if (found == null) {
                    throw new CheckpointException("checkpoint " + hfDir + " has no tensor '" + e.getKey()
                            + "' required by its config (" + cfg.modelType() + ", "
                            + (cfg.tieWordEmbeddings() ? "tied" : "untied") + " embeddings)");
                }
                TensorInfo info = st.checkShape(found, e.getValue());
                if (!info.dtype().isFloating()) {
                    throw new CheckpointException("tensor '" + found + "' in " + hfDir + " is " + info.dtype()
                            + "; a weight must be F32, BF16 or F16");
                }
            }
            ParamStore store = allocate(cfg, backend, precision, trainable);
            try {
                Tensor flat = store.weightsFlat();
                for (String name : shapes.keySet()) {
                    String found = names.apply(name);
                    TensorInfo info = st.info(found);
                    backend.uploadRaw(st.segment(found), info.dtype(), info.numel(), flat,
                            store.layout().offset(name));
                }
                store.syncCompute();
                return new DecoderWeights(cfg, store);
            } catch (RuntimeException e) {
                store.close();
                throw e;
            }
        }
    }

    /**
     * Fresh weights initialised like HF {@code _init_weights}: linear and embedding weights ~ N(0, 0.02), biases 0,
     * norm weights 1; deterministic for a seed (the same numbers on every backend).
     *
     * @param cfg       architecture
     * @param seed      random seed
     * @param backend   where the weights go
     * @param precision compute precision
     * @param trainable whether gradients and a master copy are allocated
     * @return the weights
     */
    static DecoderWeights init(ModelConfig cfg, long seed, Backend backend, Precision precision, boolean trainable) {
        SplittableRandom rng = new SplittableRandom(seed);
        ParamStore store = allocate(cfg, backend, precision, trainable);
        Tensor flat = store.weightsFlat();
        for (Map.Entry<String, long[]> e : cfg.parameterShapes().entrySet()) {
            String name = e.getKey();
            float[] data = new float[Math.toIntExact(Tensor.count(e.getValue()))];
            if (name.endsWith("norm.weight") || name.endsWith("layernorm.weight")) {
                Arrays.fill(data, 1f);
            } else if (!name.endsWith(".bias")) {
                for (int i = 0; i < data.length; i++) {
                    data[i] = (float) (0.02 * rng.nextGaussian());
                }
            }
            backend.upload(data, flat.view(store.layout().offset(name), e.getValue()));
        }
        store.syncCompute();
        return new DecoderWeights(cfg, store);
    }

    /**
     * A frozen copy on the same backend (no gradients, no master copy beyond the compute weights), e.g. the GRPO
     * reference model.
     *
     * @return the copy
     */
    DecoderWeights frozenCopy() {
        ParamStore copy = allocate(config, store.backend(), store.precision(), false);
        copy.copyFrom(store);
        return new DecoderWeights(config, copy);
    }

    // ================================================================== saving

    /** The dtype a save writes: the checkpoint's own, from config.json. */
    DType saveDtype() {
        String raw = config.rawJson();
        for (String key : new String[]{"\"torch_dtype\"", "\"dtype\""}) {
            int i = raw.indexOf(key);
            if (i >= 0) {
                String rest = raw.substring(i + key.length());
                if (rest.matches("(?s)\\s*:\\s*\"bfloat16\".*")) {
                    return DType.BF16;
                }
                if (rest.matches("(?s)\\s*:\\s*\"float16\".*")) {
                    return DType.F16;
                }
                if (rest.matches("(?s)\\s*:\\s*\"float32\".*")) {
                    return DType.F32;
                }
            }
        }
        return DType.F32;
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors} (HF names, the checkpoint's dtype) so that
     * transformers loads the directory unchanged. Atomic: both files are written into a temporary sibling directory
     * first; a new directory is then renamed into place, an existing one gets each file renamed over the old one
     * (other files there, e.g. tokenizer files, are kept; a stale sharded index is removed so it cannot shadow the
     * new weights).
     *
     * @param dir the model directory
     */
    void save(Path dir) {
        Path target = dir.toAbsolutePath().normalize();
        Backend backend = store.backend();
        DType dtype = saveDtype();
        try {
            Path parent = target.getParent();
            Files.createDirectories(parent);
            Path tmp = Files.createTempDirectory(parent, "." + target.getFileName() + ".tmp-");
            try {
                SafeTensorsWriter w = new SafeTensorsWriter();
                w.metadata("format", "pt");
                for (Map.Entry<String, Tensor> e : store.weights().entrySet()) {
                    float[] values = backend.download(e.getValue());
                    long[] shape = e.getValue().shape();
                    switch (dtype) {
                        case BF16 -> w.putBF16(e.getKey(), shape, values);
                        case F16 -> w.putF16(e.getKey(), shape, values);
                        default -> w.putF32(e.getKey(), shape, values);
                    }
                }
                w.write(tmp.resolve(SafeTensors.SINGLE_FILE));
                Files.writeString(tmp.resolve("config.json"), config.toJson());
                if (!Files.exists(target)) {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                    return;
                }
                Files.deleteIfExists(target.resolve(SafeTensors.INDEX_FILE));
                for (String f : new String[]{SafeTensors.SINGLE_FILE, "config.json"}) {
                    Files.move(tmp.resolve(f), target.resolve(f), StandardCopyOption.ATOMIC_MOVE,
                            StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                if (Files.exists(tmp)) {
                    try (DirectoryStream<Path> ds = Files.newDirectoryStream(tmp)) {
                        for (Path p : ds) {
                            Files.deleteIfExists(p);
                        }
                    }
                    Files.deleteIfExists(tmp);
                }
            }
        } catch (IOException e) {
            throw new CheckpointException("cannot save model to " + dir + ": " + e.getMessage(), e);
        }
    }

    // ================================================================== accessors

    ModelConfig config() {
        return config;
    }

    ParamStore store() {
        return store;
    }

    @Override
    public void close() {
        store.close();
        invFreq.close();
    }
}
