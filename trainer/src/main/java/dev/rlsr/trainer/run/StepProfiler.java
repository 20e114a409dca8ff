package dev.rlsr.trainer.run;

import dev.rlsr.bindings.CudaProfiler;
import dev.rlsr.engine.io.IoMessages;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;

/**
 * {@code run.profile_step}: one optimizer step of each training stage run under a {@link CudaProfiler}. The GPU time
 * of every kernel, GEMM and copy of that step goes to {@code profile/<stage>_step<N>.txt} in the run directory (every
 * op, the largest first), and the log gets one line with the largest five. The profiled step runs a little slower
 * (an event pair around every op); its metrics.jsonl line is still written. A decode step replayed from a CUDA graph
 * shows as one {@code graph launch} per step; {@code -Drlsr.decode.eager=true} (through {@code RLSR_JAVA_OPTS})
 * splits it into its kernels.
 */
final class StepProfiler implements AutoCloseable {
    /** The folder of the run directory the tables go to. */
    static final String DIR = "profile";

    private final long step;
    private final Path dir;
    private final Consumer<String> log;
    private final Set<String> done = new HashSet<>();
    private CudaProfiler active;
    private String activeStage;

    StepProfiler(long step, Path dir, Consumer<String> log) {
        this.step = step;
        this.dir = dir;
        this.log = log;
    }

    /** At the start of every step: starts the profiler at step N of a stage not yet profiled. */
    void starting(String stage, long n) {
        if (n != step || active != null || done.contains(stage)) {
            return;
        }
        try {
            active = CudaProfiler.start();
            activeStage = stage;
        } catch (IllegalStateException e) {
            log.accept("profile of " + stage + " step " + n + " skipped: " + e.getMessage());
            done.add(stage);
        }
    }

    /** At the end of every step: stops the profiler at the step it started at, writes the table and logs a line. */
    void finished(String stage, long n) {
        if (active == null || n != step || !stage.equals(activeStage)) {
            return;
        }
        CudaProfiler p = active;
        active = null;
        done.add(stage);
        CudaProfiler.Profile profile = p.stop();
        Path file = dir.resolve(stage + "_step" + n + ".txt");
        String header = String.format(Locale.ROOT, "rlsr profile: stage %s, optimizer step %d, %s%n"
                + "GPU time per op: CUDA events before and after every kernel launch, cuBLASLt GEMM, copy and memset of"
                + " the training thread (the events slow the step a little; ops on a graph-capturing stream are not"
                + " timed)%n%n", stage, n, Instant.now());
        try {
            Files.createDirectories(dir);
            Files.writeString(file, header + profile.table(Integer.MAX_VALUE), StandardCharsets.UTF_8);
        } catch (IOException e) {
            log.accept("warning: cannot write the profile " + file + ": " + IoMessages.describe(e));
            file = null;
        }
        StringBuilder top = new StringBuilder();
        for (CudaProfiler.Row r : profile.rows().subList(0, Math.min(5, profile.rows().size()))) {
            top.append(top.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%s %.1f%% (%d x %.1f us)",
                    r.label(), profile.gpuMs() > 0 ? 100 * r.gpuMs() / profile.gpuMs() : 0, r.calls(),
                    r.gpuMicrosPerCall()));
        }
        log.accept(String.format(Locale.ROOT, "profile of %s step %d: %d ops, GPU %.1f ms summed, %.1f ms from the"
                + " first to the last; largest: %s%s", stage, n, profile.ops(), profile.gpuMs(), profile.spanMs(),
                top.isEmpty() ? "none" : top, file == null ? "" : "; table in " + DIR + "/" + file.getFileName()));
    }

    /** Discards a profile still running (its step failed). */
    @Override
    public void close() {
        if (active != null) {
            try {
                active.close();
            } catch (RuntimeException ignored) {
                // the step's own error is what the user needs to see
            }
            active = null;
        }
    }
}
