package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaDriver;
import dev.rlsr.bindings.CudaEvent;
import dev.rlsr.engine.config.ModelConfig;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.cuda.CudaBackend;
import dev.rlsr.engine.model.DecoderModel;
import dev.rlsr.engine.tensor.Precision;
import dev.rlsr.engine.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The SFT training step on the GPU (issue [F]): a Qwen2.5-0.5B-shaped decoder (random init: hidden 896, 24 layers,
 * 14 heads / 2 KV heads, FFN 4864, vocab 151936, tied; 494,032,768 parameters) on {@link CudaBackend}, batch
 * 8 x 1024 random tokens, bf16 compute with fp32 master weights (or all fp32), one optimizer step as
 * {@code SftTrainer} runs it ({@link SftStep}).
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -cp CLASSPATH \
 *      dev.rlsr.bench.gpu.TrainStepGpuBench [--model=qwen2.5-0.5b|tiny] [--precision=bf16|fp32] [--batch=8]
 *      [--seq=1024] [--warmup=3] [--steps=10] [--budget=SECONDS] [--validate=true] [--profile=true]
 * </pre>
 *
 * <p>Validate first, then time. The validation runs two steps of a tiny model of the same family on this backend
 * and on the CPU backend from the same initial weights and compares the losses and the gradient norm (tolerances
 * below); the timed run also fails on a loss or gradient norm that is not finite.
 *
 * <p>Reported (one JSON line in {@code -Drlsr.bench.out}, read by bench/gpu/table.py):
 * <ul>
 *   <li>tokens/s = B*T / (wall time per step), the mean over the timed steps (each step ends in its one host read,
 *       so the wall clock sees the GPU work); the GPU time per step from CUDA events around all timed steps;</li>
 *   <li>MFU = tokens/s x (6 P + 12 L H D T) / peak, P all parameters (the tied embedding once), L layers, H D the
 *       attention width, T the sequence length: the PaLM count, the same formula torch_bench.py applies to PyTorch
 *       (attention counted without the causal half, as PyTorch's anchor did); peak = the card's dense bf16 peak
 *       (fp32 non-tensor peak for the fp32 run), see {@link DeviceFacts};</li>
 *   <li>peak device memory: the backend's allocator peak (live tensors, size classes) since it opened, and the
 *       driver's view at the end (cuMemGetInfo total - free: the allocator's cache, the context, cuBLASLt);</li>
 *   <li>allocations after warm-up: {@link CudaBackend#driverAllocations()} must not change over the timed steps;</li>
 *   <li>the dtype and size of the (N,V) logits buffer the fused loss works in, read from the buffer (never F32 in
 *       the bf16 run).</li>
 * </ul>
 * Runs on the CUDA emulator as well (small models only; its timings mean nothing and the line says so).
 */
public final class TrainStepGpuBench {
    private static final Set<String> OPTIONS = Set.of("model", "precision", "batch", "seq", "warmup", "steps",
            "budget", "validate", "lr", "seed", "profile");
    /** Qwen2.5-0.5B's parameter count (embedding tied, counted once), as PyTorch reports it for the anchor. */
    static final long QWEN05B_PARAMS = 494_032_768L;

    private TrainStepGpuBench() {
    }

    /**
     * Runs the benchmark; exits 0 when it ran (or there is no device at all: SKIP), 1 when validation or the run
     * failed, 2 on bad options.
     *
     * @param args the options above
     */
    public static void main(String[] args) {
        int rc;
        try {
            rc = run(args);
        } catch (IllegalArgumentException e) {
            System.err.println("TrainStepGpuBench: " + e.getMessage());
            rc = 2;
        }
        System.exit(rc);
    }

    /**
     * The architectures by name: the [F]/[G] workload, and tiny ones for the emulator and the validation
     * ({@code tiny-151936} keeps Qwen's vocabulary, so that a Qwen tokenizer's special ids fit it).
     */
    static ModelConfig model(String name) {
        return switch (name) {
            case "qwen2.5-0.5b" -> ModelConfig.of("qwen2", 151936, 896, 4864, 24, 14, 2, 64, true);
            case "tiny" -> ModelConfig.of("qwen2", 1024, 64, 128, 2, 4, 2, 16, true);
            case "tiny-151936" -> ModelConfig.of("qwen2", 151936, 64, 128, 2, 4, 2, 16, true);
            default -> throw new IllegalArgumentException("--model must be qwen2.5-0.5b, tiny or tiny-151936, got '"
                    + name + "'");
        };
    }

    static Precision precision(String name) {
        return switch (name) {
            case "bf16" -> Precision.BF16;
            case "fp32" -> Precision.FP32;
            default -> throw new IllegalArgumentException("--precision must be bf16 or fp32, got '" + name + "'");
        };
    }

    static int run(String[] args) {
        BenchArgs a = new BenchArgs(args, OPTIONS);
        String modelName = a.str("model", "qwen2.5-0.5b");
        String precName = a.str("precision", "bf16");
        ModelConfig cfg = model(modelName);
        Precision precision = precision(precName);
        int batch = a.integer("batch", 8);
        int seq = a.integer("seq", 1024);
        int warmup = a.integer("warmup", 3);
        int steps = a.integer("steps", 10);
        double budget = a.number("budget", 300);
        boolean validate = Boolean.parseBoolean(a.str("validate", "true"));
        boolean profile = Boolean.parseBoolean(a.str("profile", "true"));
        float lr = (float) a.number("lr", 1e-4);
        long seed = a.integer("seed", 1234);
        if (batch < 1 || seq < 2 || warmup < 1 || steps < 1) {
            throw new IllegalArgumentException("need --batch >= 1, --seq >= 2, --warmup >= 1, --steps >= 1");
        }
        if (modelName.equals("qwen2.5-0.5b") && cfg.numParameters() != QWEN05B_PARAMS) {
            throw new IllegalStateException("the Qwen2.5-0.5B shape has " + cfg.numParameters() + " parameters, "
                    + "expected " + QWEN05B_PARAMS);
        }
        String key = "train_" + modelName + "_" + precName + "_B" + batch + "_T" + seq;
        if (!CudaDriver.isAvailable()) {
            String why = "no usable CUDA device (" + CudaDriver.unavailableReason() + ")";
            System.out.println("SKIP " + key + ": " + why);
            GpuResults.record(new LinkedHashMap<>(Map.of("key", key, "skipped", why)));
            return 0;
        }
        long t0 = System.nanoTime();
        boolean emulator = CudaDriver.isEmulator();
        try (CudaBackend be = CudaBackend.open(0, precision)) {
            String device = be.deviceName();
            System.out.printf(Locale.ROOT, "[train] %s on %s%s: %s, %d parameters, B=%d T=%d%n", key, device,
                    emulator ? " (CUDA emulator: timings mean nothing)" : "", precision, cfg.numParameters(), batch,
                    seq);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("key", key);
            out.put("device", device);
            out.put("emulator", emulator);
            if (validate) {
                try {
                    out.put("validation", validateAgainstCpu(be, precision, seed));
                } catch (RuntimeException e) {
                    GpuResults.failure(key, "validation: " + e.getMessage());
                    return 1;
                }
            }
            try {
                measure(be, cfg, precision, batch, seq, warmup, steps, budget - (System.nanoTime() - t0) / 1e9, lr,
                        seed, profile, out);
            } catch (RuntimeException e) {
                e.printStackTrace();
                GpuResults.failure(key, e.toString());
                return 1;
            }
            GpuResults.record(out);
            return 0;
        }
    }

    /**
     * The timed run: model init, warm-up steps (the first allocates every buffer and compiles every kernel), then
     * the timed steps; with {@code profile}, one more step under a {@link dev.rlsr.bindings.CudaProfiler} (untimed)
     * for the GPU time per op.
     */
    static void measure(CudaBackend be, ModelConfig cfg, Precision precision, int batch, int seq, int warmup,
                        int steps, double budgetLeft, float lr, long seed, boolean profile, Map<String, Object> out) {
        long tInit = System.nanoTime();
        int V = cfg.vocabSize();
        int[] ids = randomIds(batch * seq, V, seed);
        try (DecoderModel model = DecoderModel.init(cfg, seed, be, precision);
             SftStep step = new SftStep(model, lr, 1.0f)) {
            be.synchronize();
            double initS = (System.nanoTime() - tInit) / 1e9;
            List<Double> losses = new ArrayList<>();
            long tw = System.nanoTime();
            for (int i = 0; i < warmup; i++) {
                losses.add(finite(step.run(batch, ids), i + 1).loss());
            }
            be.synchronize();
            double warmS = (System.nanoTime() - tw) / 1e9;
            double perStep = warmS / warmup; // the first step compiles and allocates: an over-estimate
            double left = budgetLeft - (System.nanoTime() - tInit) / 1e9;
            int timed = (int) Math.max(2, Math.min(steps, Math.floor(0.8 * left / perStep)));
            if (timed < steps) {
                System.out.printf(Locale.ROOT, "[train] budget: %d timed steps instead of %d (%.0f s left, %.2f s per"
                        + " warm-up step)%n", timed, steps, left, perStep);
            }
            long allocsBefore = be.driverAllocations();
            double[] stepMs = new double[timed];
            double[] norms = new double[timed];
            long tStart;
            double gpuMs;
            try (CudaEvent e0 = CudaEvent.create(); CudaEvent e1 = CudaEvent.create()) {
                tStart = System.nanoTime();
                e0.record(be.stream());
                for (int i = 0; i < timed; i++) {
                    long ts = System.nanoTime();
                    SftStep.Result r = finite(step.run(batch, ids), warmup + i + 1);
                    stepMs[i] = (System.nanoTime() - ts) / 1e6;
                    losses.add(r.loss());
                    norms[i] = r.gradNorm();
                }
                e1.record(be.stream());
                e1.synchronize();
                gpuMs = e1.elapsedMsSince(e0) / timed;
            }
            double wallMs = (System.nanoTime() - tStart) / 1e6 / timed;
            long allocsAfter = be.driverAllocations();
            long usedBytes = DeviceFacts.deviceUsedBytes();

            long tokens = (long) batch * seq;
            double tokPerS = tokens / (wallMs / 1e3);
            long params = cfg.numParameters();
            double attnWidth = (double) cfg.numHeads() * cfg.headDim();
            double flopsPerToken = 6.0 * params + 12.0 * cfg.numLayers() * attnWidth * seq;
            double tflops = tokPerS * flopsPerToken / 1e12;
            boolean bf16 = precision.compute() == dev.rlsr.kernels.DType.BF16;
            double peak = bf16 ? DeviceFacts.denseBf16PeakTflops(be.deviceName())
                    : DeviceFacts.fp32PeakTflops(be.deviceName());
            double[] sorted = stepMs.clone();
            Arrays.sort(sorted);
            // the (N,V) buffer the fused loss turns into dlogits in place: one more training forward of the same
            // shape returns it (cached activations, nothing allocated), so its dtype is observed, not assumed
            Tensor logits = model.forward(batch, ids, null, null);
            if (logits.numel() != tokens * cfg.vocabSize()) {
                throw new IllegalStateException("the logits buffer is " + logits + ", expected (" + tokens + ", "
                        + cfg.vocabSize() + ")");
            }
            String logitsDtype = logits.dtype().name();
            long logitsBytes = logits.byteSize();
            if (profile) {
                int last = warmup + timed + 2;
                GpuResults.profile(out.get("key") + ", one more step", () -> finite(step.run(batch, ids), last), out);
            }

            out.put("model", cfg.modelType() + " C" + cfg.hiddenSize() + " L" + cfg.numLayers() + " H"
                    + cfg.numHeads() + "/" + cfg.numKvHeads() + " F" + cfg.intermediateSize() + " V"
                    + cfg.vocabSize() + (cfg.tieWordEmbeddings() ? " tied" : ""));
            out.put("precision", bf16 ? "bf16 compute, fp32 master weights and AdamW state" : "fp32");
            out.put("params", params);
            out.put("batch", batch);
            out.put("seq", seq);
            out.put("tokens_per_step", tokens);
            out.put("init_s", initS);
            out.put("warmup_steps", warmup);
            out.put("warmup_s", warmS);
            out.put("steps", timed);
            out.put("step_ms", wallMs);
            out.put("step_ms_median", sorted[timed / 2]);
            out.put("gpu_step_ms", gpuMs);
            out.put("tokens_per_s", tokPerS);
            out.put("flops_per_token", flopsPerToken);
            out.put("mfu_formula", "tokens/s * (6*params + 12*layers*heads*head_dim*seq) / peak");
            out.put("TFLOPs", tflops);
            out.put("peak_TFLOPs", peak);
            out.put("mfu", tflops / peak);
            out.put("peak_alloc_bytes", be.peakMemory());
            out.put("peak_alloc_gib", DeviceFacts.gib(be.peakMemory()));
            out.put("device_used_gib", DeviceFacts.gib(usedBytes));
            out.put("driver_allocs_after_warmup", allocsAfter - allocsBefore);
            out.put("driver_allocs_total", allocsAfter);
            out.put("logits_dtype", logitsDtype);
            out.put("logits_gib", DeviceFacts.gib(logitsBytes));
            out.put("losses", losses);
            out.put("grad_norm_last", norms[timed - 1]);
            out.put("validated", true);
            System.out.printf(Locale.ROOT, "[train] %s: %.0f tokens/s (%.1f ms/step wall, %.1f ms GPU, %d steps), "
                    + "%.0f TFLOP/s = MFU %.1f%% of %.0f; peak %.2f GiB allocated, %.2f GiB used on the device; "
                    + "%d driver allocations after warm-up; logits (N,V) %s %.2f GiB; loss %.4f -> %.4f%n",
                    out.get("key"), tokPerS, wallMs, gpuMs, timed, tflops, 100 * tflops / peak, peak,
                    DeviceFacts.gib(be.peakMemory()), DeviceFacts.gib(usedBytes), allocsAfter - allocsBefore,
                    logitsDtype, DeviceFacts.gib(logitsBytes), losses.get(0), losses.get(losses.size() - 1));
        }
    }

    private static SftStep.Result finite(SftStep.Result r, int step) {
        if (!Double.isFinite(r.loss()) || !Double.isFinite(r.gradNorm())) {
            throw new IllegalStateException("step " + step + ": loss " + r.loss() + ", gradient norm " + r.gradNorm()
                    + " (not finite)");
        }
        return r;
    }

    static int[] randomIds(int n, int vocab, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = rng.nextInt(vocab);
        }
        return ids;
    }

    /**
     * Two SFT steps of the tiny model on {@code be} and on the CPU backend (fp32, the kernels' references) from the
     * same initial weights; the losses of both steps and the first gradient norm must agree. Tolerances, from the
     * HF parity budgets ({@code ParityTolerances}: each backend is within them of HF's fp32): fp32, losses 2e-5
     * relative and the norm 2e-3 (twice the fp32 budgets, both sides carry one); bf16, losses 2^-7 + 1e-5 and the
     * norm 10 * 2^-8 + 1e-3 (the bf16 budgets plus the CPU's fp32 ones). The second loss checks the update too.
     *
     * @return the errors found, for the record
     */
    static Map<String, Object> validateAgainstCpu(CudaBackend be, Precision precision, long seed) {
        ModelConfig tiny = model("tiny");
        int batch = 2;
        int seq = 48;
        int[] ids = randomIds(batch * seq, tiny.vocabSize(), seed + 1);
        float lr = 1e-3f;
        SftStep.Result[] cpu = new SftStep.Result[2];
        SftStep.Result[] gpu = new SftStep.Result[2];
        try (DecoderModel m = DecoderModel.init(tiny, seed, CpuBackend.INSTANCE, Precision.FP32);
             SftStep s = new SftStep(m, lr, 1.0f)) {
            cpu[0] = s.run(batch, ids);
            cpu[1] = s.run(batch, ids);
        }
        try (DecoderModel m = DecoderModel.init(tiny, seed, be, precision); SftStep s = new SftStep(m, lr, 1.0f)) {
            gpu[0] = s.run(batch, ids);
            gpu[1] = s.run(batch, ids);
        }
        boolean bf16 = precision.compute() == dev.rlsr.kernels.DType.BF16;
        double lossTol = bf16 ? 0x1p-7 + 1e-5 : 2e-5;
        double normTol = bf16 ? 10 * 0x1p-8 + 1e-3 : 2e-3;
        double e0 = rel(gpu[0].loss(), cpu[0].loss());
        double e1 = rel(gpu[1].loss(), cpu[1].loss());
        double en = rel(gpu[0].gradNorm(), cpu[0].gradNorm());
        String msg = String.format(Locale.ROOT, "tiny %s step vs CPU fp32: loss %.6f vs %.6f (rel %.2e), after the "
                + "update %.6f vs %.6f (rel %.2e), grad norm %.6f vs %.6f (rel %.2e); tolerances loss %.1e, norm %.1e",
                precision, gpu[0].loss(), cpu[0].loss(), e0, gpu[1].loss(), cpu[1].loss(), e1, gpu[0].gradNorm(),
                cpu[0].gradNorm(), en, lossTol, normTol);
        System.out.println("[train] validation: " + msg);
        if (!(e0 <= lossTol && e1 <= lossTol && en <= normTol)) {
            throw new IllegalStateException(msg);
        }
        if (!(cpu[1].loss() < cpu[0].loss())) {
            throw new IllegalStateException("the reference loss did not decrease over one step (" + cpu[0].loss()
                    + " -> " + cpu[1].loss() + "): the check would not see a missing update");
        }
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("loss_rel_err", e0);
        v.put("loss_after_update_rel_err", e1);
        v.put("grad_norm_rel_err", en);
        v.put("loss_tol", lossTol);
        v.put("norm_tol", normTol);
        return v;
    }

    private static double rel(double got, double ref) {
        return Math.abs(got - ref) / Math.max(Math.abs(ref), 1e-30);
    }
}
