package dev.rlsr.trainer.run;

import java.nio.file.Path;

/** A second process for the lock tests: opens a run directory, says so on stdout, then waits to be killed. */
public final class HoldRunDir {
    private HoldRunDir() {
    }

    public static void main(String[] args) throws Exception {
        RunDir.open(Path.of(args[0]));
        System.out.println("locked");
        System.out.flush();
        Thread.sleep(600_000);
    }
}
