package dev.rlsr.bindings;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where the GPU time of a stretch of work goes: every kernel launch, cuBLASLt GEMM, asynchronous copy or memset and
 * graph launch issued by the thread that called {@link #start()} is bracketed by a pair of CUDA events, and {@link #stop()} sums
 * the event times per op (the kernel's name; a GEMM's shape and types; the copy's kind; "graph launch" for a whole
 * replayed graph). Nothing is timed, created or looked up while no profiler is active: each hook costs one static
 * field read.
 *
 * <pre>{@code
 * try (CudaProfiler p = CudaProfiler.start()) {
 *     step.run();
 *     System.out.println(p.stop().table(20));
 * }
 * }</pre>
 *
 * <p>Reading the figures: an op's GPU time is the time between its two events on its stream. When the GPU waits for
 * the host (a launch-bound stretch: small kernels, a decode step), that time includes the wait for the op's own
 * launch, so the op's host time per call (also reported) bounds it from below; the sum of the ops against the span
 * from the first event to the last shows the rest. The events themselves add a few microseconds of host time per op
 * and keep the GPU from overlapping consecutive kernels, so profile a step apart from the one you time. Work captured
 * into a CUDA graph is not timed (a capturing stream is skipped and counted): profile the eager path. Ops issued
 * inside another op (a GEMM's copy of its C) count toward the outer one.
 */
public final class CudaProfiler implements AutoCloseable {
    /** Most ops one profile records; later ones are counted as dropped. */
    public static final int MAX_OPS = 100_000;

    private static final Map<Long, String> FUNCTION_NAMES = new ConcurrentHashMap<>();
    private static volatile CudaProfiler active;

    private final Thread owner;
    private final List<Long> events = new ArrayList<>(); // start and end event of op i at 2i and 2i + 1
    private final List<String> labels = new ArrayList<>();
    private final List<Long> hostNanos = new ArrayList<>();
    private final long startNanos;
    private int depth;
    private int dropped;
    private int skippedCapturing;
    private long pendingNanos;
    private boolean stopped;

    private CudaProfiler() {
        this.owner = Thread.currentThread();
        this.startNanos = System.nanoTime();
    }

    /**
     * Starts profiling the calling thread's CUDA work (in its current context).
     *
     * @return the profiler; {@link #stop()} it for the figures, or close it to discard them
     * @throws IllegalStateException when a profiler is already active (one at a time per process)
     */
    public static synchronized CudaProfiler start() {
        CudaProfiler p = active;
        if (p != null) {
            throw new IllegalStateException("a CudaProfiler is already active (started on thread "
                    + p.owner.getName() + "): stop it first");
        }
        p = new CudaProfiler();
        active = p;
        return p;
    }

    /** {@return true while a profiler records} */
    public static boolean isActive() {
        return active != null;
    }

    /** Remembers a loaded function's name so that its launches are labelled with it. */
    static void nameFunction(long function, String name) {
        FUNCTION_NAMES.put(function, name);
    }

    /** {@return the kernel name of a function loaded through {@link CudaDriver#moduleGetFunction}} */
    static String functionName(long function) {
        String n = FUNCTION_NAMES.get(function);
        return n != null ? n : "kernel 0x" + Long.toHexString(function);
    }

    /**
     * Opens an op on {@code stream}: records its start event when this thread is being profiled.
     *
     * @param stream the stream the op is issued on (0 for the legacy stream)
     * @return the token to hand to {@link #end}: negative when nothing is recorded
     */
    public static int begin(long stream) {
        CudaProfiler p = active;
        if (p == null || Thread.currentThread() != p.owner) {
            return -1;
        }
        return p.open(stream);
    }

    /**
     * Closes the op {@link #begin} opened: records its end event under {@code label}.
     *
     * @param token  what {@code begin} returned
     * @param stream the op's stream, as given to {@code begin}
     * @param label  the op's name in the profile (ops of the same label are summed)
     */
    public static void end(int token, long stream, String label) {
        if (token == -1) {
            return;
        }
        CudaProfiler p = active;
        if (p != null) {
            p.close(token, stream, label);
        }
    }

    /**
     * Closes the op {@link #begin} opened without timing it: the op failed.
     *
     * @param token what {@code begin} returned
     */
    public static void cancel(int token) {
        if (token == -1) {
            return;
        }
        CudaProfiler p = active;
        if (p != null && !p.stopped && p.depth > 0) {
            p.depth--; // a started op keeps its null label: stop() leaves it out
        }
    }

    private int open(long stream) {
        if (stopped) {
            return -1;
        }
        if (depth > 0) {
            depth++;
            return -2; // inside another op: counted there
        }
        if (labels.size() >= MAX_OPS) {
            dropped++;
            depth++;
            return -2;
        }
        if (CudaDriver.streamCaptureStatus(stream) != CudaDriver.CU_STREAM_CAPTURE_STATUS_NONE) {
            skippedCapturing++;
            depth++;
            return -2;
        }
        int op = labels.size();
        while (events.size() < 2 * op + 2) {
            events.add(CudaDriver.eventCreate(CudaDriver.CU_EVENT_DEFAULT));
        }
        CudaDriver.eventRecord(events.get(2 * op), stream);
        labels.add(null);
        hostNanos.add(0L);
        pendingNanos = System.nanoTime();
        depth++;
        return op;
    }

    private void close(int token, long stream, String label) {
        if (stopped || depth == 0) {
            return;
        }
        depth--;
        if (token < 0) {
            return;
        }
        long host = System.nanoTime() - pendingNanos; // the op's own call, without its events
        CudaDriver.eventRecord(events.get(2 * token + 1), stream);
        hostNanos.set(token, host);
        labels.set(token, label);
    }

    /**
     * The time of one op label over the profiled stretch.
     *
     * @param label  the op: a kernel's name, a GEMM's shape and types, a copy's kind, or "graph launch"
     * @param calls  how many times it ran
     * @param gpuMs  its GPU time, summed over the calls (ms)
     * @param hostMs the host time of its calls, summed (ms)
     */
    public record Row(String label, int calls, double gpuMs, double hostMs) {
        /** {@return the mean GPU time per call, microseconds} */
        public double gpuMicrosPerCall() {
            return 1e3 * gpuMs / calls;
        }

        /** {@return the mean host time per call (the op's Java call, without the profiler's events), microseconds} */
        public double hostMicrosPerCall() {
            return 1e3 * hostMs / calls;
        }
    }

    /**
     * The figures of a stopped profiler.
     *
     * @param rows             per label, the largest GPU time first
     * @param ops              the ops timed
     * @param gpuMs            the sum of the ops' GPU times
     * @param spanMs           from the first op's start event to the last op's end event (0 when no op was timed)
     * @param wallMs           host time from {@link #start()} to {@link #stop()}, the final synchronisation included
     * @param dropped          ops beyond {@link #MAX_OPS}, not timed
     * @param skippedCapturing ops issued on a capturing stream, not timed
     */
    public record Profile(List<Row> rows, int ops, double gpuMs, double spanMs, double wallMs, int dropped,
                          int skippedCapturing) {
        /**
         * The row of one op.
         *
         * @param label the op's label
         * @return its row, or null when it did not run
         */
        public Row row(String label) {
            for (Row r : rows) {
                if (r.label().equals(label)) {
                    return r;
                }
            }
            return null;
        }

        /**
         * The profile as a text table: the {@code top} rows by GPU time, then one line for the rest.
         *
         * @param top rows to show
         * @return the table, lines separated by '\n'
         */
        public String table(int top) {
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT, "%d ops, GPU %.3f ms summed over the ops, span %.3f ms, wall %.3f ms"
                    + "%s%s%n", ops, gpuMs, spanMs, wallMs,
                    dropped > 0 ? ", " + dropped + " dropped" : "",
                    skippedCapturing > 0 ? ", " + skippedCapturing + " on a capturing stream (not timed)" : ""));
            sb.append(String.format(Locale.ROOT, "%7s %9s %10s %6s %10s  %s%n", "calls", "GPU ms", "GPU us/call",
                    "GPU %", "host us/call", "op"));
            int shown = 0;
            double restMs = 0;
            int restCalls = 0;
            for (Row r : rows) {
                if (shown < top) {
                    sb.append(String.format(Locale.ROOT, "%7d %9.3f %10.2f %5.1f%% %10.2f  %s%n", r.calls(),
                            r.gpuMs(), r.gpuMicrosPerCall(), gpuMs > 0 ? 100 * r.gpuMs() / gpuMs : 0,
                            r.hostMicrosPerCall(), r.label()));
                    shown++;
                } else {
                    restMs += r.gpuMs();
                    restCalls += r.calls();
                }
            }
            if (shown < rows.size()) {
                sb.append(String.format(Locale.ROOT, "%7d %9.3f %10s %5.1f%% %10s  (%d more ops)%n", restCalls,
                        restMs, "", gpuMs > 0 ? 100 * restMs / gpuMs : 0, "", rows.size() - shown));
            }
            return sb.toString();
        }

        /**
         * The rows as plain maps (label, calls, gpu_ms, gpu_us_per_call, host_us_per_call), for a JSON record.
         *
         * @param top rows to include
         * @return the first {@code top} rows
         */
        public List<Map<String, Object>> topRows(int top) {
            List<Map<String, Object>> out = new ArrayList<>();
            for (Row r : rows.subList(0, Math.min(top, rows.size()))) {
                Map<String, Object> m = new java.util.LinkedHashMap<>();
                m.put("op", r.label());
                m.put("calls", r.calls());
                m.put("gpu_ms", r.gpuMs());
                m.put("gpu_us_per_call", r.gpuMicrosPerCall());
                m.put("host_us_per_call", r.hostMicrosPerCall());
                out.add(m);
            }
            return out;
        }
    }

    /**
     * Stops recording, waits for the recorded work (a context synchronisation) and sums it up.
     *
     * @return the profile
     * @throws IllegalStateException when called twice, or from another thread than {@link #start()}'s
     */
    public Profile stop() {
        if (stopped) {
            throw new IllegalStateException("CudaProfiler: already stopped");
        }
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("CudaProfiler: stop it on the thread that started it (" + owner.getName()
                    + ")");
        }
        deactivate();
        try {
            CudaDriver.contextSynchronize();
            double wallMs = (System.nanoTime() - startNanos) / 1e6;
            Map<String, double[]> sums = new HashMap<>(); // calls, gpu ms, host ms
            double total = 0;
            int ops = 0;
            for (int i = 0; i < labels.size(); i++) {
                String label = labels.get(i);
                if (label == null) {
                    continue; // opened but never closed: its op threw
                }
                double ms = CudaDriver.eventElapsedMs(events.get(2 * i), events.get(2 * i + 1));
                double[] s = sums.computeIfAbsent(label, k -> new double[3]);
                s[0]++;
                s[1] += ms;
                s[2] += hostNanos.get(i) / 1e6;
                total += ms;
                ops++;
            }
            double span = 0;
            if (ops > 0) {
                int first = 0;
                while (labels.get(first) == null) {
                    first++;
                }
                int last = labels.size() - 1;
                while (labels.get(last) == null) {
                    last--;
                }
                span = CudaDriver.eventElapsedMs(events.get(2 * first), events.get(2 * last + 1));
            }
            List<Row> rows = new ArrayList<>();
            sums.forEach((label, s) -> rows.add(new Row(label, (int) s[0], s[1], s[2])));
            rows.sort(Comparator.comparingDouble(Row::gpuMs).reversed().thenComparing(Row::label));
            return new Profile(List.copyOf(rows), ops, total, span, wallMs, dropped, skippedCapturing);
        } finally {
            destroyEvents();
        }
    }

    /** Discards the figures when {@link #stop()} was not called; idempotent. */
    @Override
    public void close() {
        if (stopped) {
            return;
        }
        deactivate();
        try {
            CudaDriver.contextSynchronize(); // the events may still be pending on a stream
        } finally {
            destroyEvents();
        }
    }

    private void deactivate() {
        stopped = true;
        synchronized (CudaProfiler.class) {
            if (active == this) {
                active = null;
            }
        }
    }

    private void destroyEvents() {
        for (long e : events) {
            CudaDriver.eventDestroy(e);
        }
        events.clear();
    }
}
