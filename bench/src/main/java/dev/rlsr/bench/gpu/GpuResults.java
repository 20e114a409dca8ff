package dev.rlsr.bench.gpu;

import dev.rlsr.bindings.CudaProfiler;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The kernel-side results of the GPU benchmarks: one JSON object per line, appended to the file named by the system
 * property {@code rlsr.bench.out} (else the environment variable {@code RLSR_BENCH_OUT}; else stdout only), and a
 * one-line summary on stdout starting with {@code [gpu]}. JMH runs forks one after another, so appending lines
 * needs no locking. bench/gpu/table.py reads the file.
 */
final class GpuResults {
    private GpuResults() {
    }

    /** Kernel timing of a validated workload: {@code bytes} read + written by the kernel, for GB/s. */
    static void kernel(GpuSession session, String key, GpuSession.Timing t, long bytes, Map<String, Object> extra) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", key);
        m.put("kernel_ms", t.medianMs());
        m.put("kernel_min_ms", t.minMs());
        m.put("kernel_p90_ms", t.p90Ms());
        m.put("runs", t.runs());
        if (!Double.isNaN(t.backToBackMs())) {
            m.put("back_to_back_ms", t.backToBackMs());
        }
        m.put("bytes", bytes);
        double gbps = bytes / (t.medianMs() * 1e-3) / 1e9;
        m.put("GBps", gbps);
        m.put("validated", true);
        m.put("device", session.deviceName());
        m.putAll(extra);
        write(m);
        System.out.printf(Locale.ROOT, "[gpu] %-34s kernel median %9.4f ms (min %.4f, p90 %.4f, %d runs), %7.0f GB/s%s%n",
                key, t.medianMs(), t.minMs(), t.p90Ms(), t.runs(), gbps,
                Double.isNaN(t.backToBackMs()) ? ""
                        : String.format(Locale.ROOT, ", back-to-back %.4f ms", t.backToBackMs()));
    }

    /**
     * Timing of a validated compute-bound workload: {@code flops} per run, reported as TFLOP/s next to
     * {@code peakTflops} (the device's dense peak for the data type; NaN when unknown).
     */
    static void compute(GpuSession session, String key, GpuSession.Timing t, double flops, double peakTflops,
            Map<String, Object> extra) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", key);
        m.put("kernel_ms", t.medianMs());
        m.put("kernel_min_ms", t.minMs());
        m.put("kernel_p90_ms", t.p90Ms());
        m.put("runs", t.runs());
        if (!Double.isNaN(t.backToBackMs())) {
            m.put("back_to_back_ms", t.backToBackMs());
        }
        double tflops = flops / (t.medianMs() * 1e-3) / 1e12;
        m.put("flops", flops);
        m.put("TFLOPs", tflops);
        m.put("peak_TFLOPs", peakTflops);
        m.put("fraction_of_peak", tflops / peakTflops);
        m.put("validated", true);
        m.put("device", session.deviceName());
        m.putAll(extra);
        write(m);
        System.out.printf(Locale.ROOT, "[gpu] %-34s kernel median %9.4f ms (min %.4f, p90 %.4f, %d runs), %7.1f TFLOP/s"
                + " (%.0f%% of the %.0f TFLOP/s dense peak)%n", key, t.medianMs(), t.minMs(), t.p90Ms(), t.runs(),
                tflops, 100 * tflops / peakTflops, peakTflops);
    }

    /** A workload that failed validation or setup: recorded so the table shows it instead of a blank. */
    static void failure(String key, String error) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("key", key);
        m.put("validated", false);
        m.put("error", error);
        write(m);
        System.out.println("[gpu] " + key + " FAILED: " + error);
    }

    /**
     * An end-to-end result (training step, rollouts, RLSR step): the map as one JSON line, keyed by its "key".
     * Nothing is printed; the benchmark prints its own summary.
     */
    static void record(Map<String, Object> m) {
        if (!m.containsKey("key")) {
            throw new IllegalArgumentException("a result needs a \"key\": " + m.keySet());
        }
        write(m);
    }

    /** Rows of a profile printed (the result line keeps them all, for table.py's per-category sums). */
    static final int PROFILE_ROWS = 30;

    /**
     * Runs {@code work} once under a {@link CudaProfiler} (not a timed run: the events slow it a little), prints the
     * per-op table under {@code title} and keeps every row in {@code out} as {@code "profile"}, with the summed
     * GPU time, span and wall as {@code "profile_gpu_ms"}, {@code "profile_span_ms"} and {@code "profile_wall_ms"}.
     *
     * @param title what ran, for the printed header
     * @param work  the work, on the calling thread
     * @param out   the result line to add to
     */
    static void profile(String title, Runnable work, Map<String, Object> out) {
        CudaProfiler.Profile p;
        try (CudaProfiler prof = CudaProfiler.start()) {
            work.run();
            p = prof.stop();
        }
        System.out.println("[profile] " + title + ": GPU time per op (one untimed run; event pairs around every op)");
        System.out.print(p.table(PROFILE_ROWS));
        out.put("profile", p.topRows(Integer.MAX_VALUE));
        out.put("profile_ops", p.ops());
        out.put("profile_gpu_ms", p.gpuMs());
        out.put("profile_span_ms", p.spanMs());
        out.put("profile_wall_ms", p.wallMs());
    }

    private static void write(Map<String, Object> m) {
        String line = toJson(m);
        String path = System.getProperty("rlsr.bench.out", System.getenv("RLSR_BENCH_OUT"));
        if (path == null || path.isBlank()) {
            return;
        }
        try {
            Files.writeString(Path.of(path), line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            System.err.println("[gpu] cannot append to " + path + ": " + e);
        }
    }

    static String toJson(Map<String, Object> m) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, Object> e : m.entrySet()) {
            if (sb.length() > 1) {
                sb.append(", ");
            }
            sb.append(quote(e.getKey())).append(": ");
            value(sb, e.getValue());
        }
        return sb.append('}').toString();
    }

    @SuppressWarnings("unchecked")
    private static void value(StringBuilder sb, Object v) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Double d && (d.isNaN() || d.isInfinite())) {
            sb.append("null"); // JSON has no NaN
        } else if (v instanceof Float f && (f.isNaN() || f.isInfinite())) {
            sb.append("null");
        } else if (v instanceof Number || v instanceof Boolean) {
            sb.append(v);
        } else if (v instanceof double[] arr) {
            sb.append('[');
            for (int i = 0; i < arr.length; i++) {
                sb.append(i > 0 ? ", " : "");
                value(sb, arr[i]);
            }
            sb.append(']');
        } else if (v instanceof java.util.List<?> list) {
            sb.append('[');
            for (int i = 0; i < list.size(); i++) {
                sb.append(i > 0 ? ", " : "");
                value(sb, list.get(i));
            }
            sb.append(']');
        } else if (v instanceof Map<?, ?> map) {
            sb.append(toJson((Map<String, Object>) map));
        } else {
            sb.append(quote(String.valueOf(v)));
        }
    }

    private static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"').toString();
    }
}
