package dev.rlsr.trainer.run;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The process's peak resident memory, for the run log: what the operating system held for the JVM at its largest
 * (heap, the encoder's native memory, code), which is what decides whether a run fits a machine.
 */
public final class PeakMemory {
    private PeakMemory() {
    }

    /**
     * Peak resident set size in bytes ({@code VmHWM} of {@code /proc/self/status}), or -1 where the system does not
     * report it (not Linux).
     *
     * @return the peak, or -1
     */
    public static long peakResidentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    String[] f = line.substring(6).trim().split("\\s+");
                    return Long.parseLong(f[0]) * (f.length > 1 && f[1].equalsIgnoreCase("kB") ? 1024 : 1);
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or an unreadable status file: the peak is only informative
        }
        return -1;
    }

    /**
     * One line for the log: the peak resident memory and the heap limit.
     *
     * @return e.g. "peak resident memory 1.42 GB (JVM heap limit 2.00 GB)"
     */
    public static String describe() {
        long peak = peakResidentBytes();
        String heap = String.format(Locale.ROOT, "JVM heap limit %.2f GB", Runtime.getRuntime().maxMemory() / 1e9);
        return peak < 0 ? "peak resident memory: not reported by this system (" + heap + ")"
                : String.format(Locale.ROOT, "peak resident memory %.2f GB (%s)", peak / 1e9, heap);
    }
}
