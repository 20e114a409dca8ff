package dev.rlsr.trainer.train;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Warmup + cosine values at hand-computed points. */
class LrScheduleTest {

    @Test
    void warmupThenCosineToTheFloor() {
        LrSchedule s = new LrSchedule(1e-3, 10, 110, 0.1);
        assertEquals(0.0, s.lr(0), 1e-15, "HF: lr 0 at the first warmup step");
        assertEquals(5e-4, s.lr(5), 1e-15);
        assertEquals(1e-3, s.lr(10), 1e-15, "peak right after warmup");
        // halfway through the decay: cos(pi/2) = 0 -> f = 0.5 -> 0.1 + 0.9 * 0.5 = 0.55
        assertEquals(0.55e-3, s.lr(60), 1e-12);
        // a quarter: f = 0.5 * (1 + cos(pi/4)) = 0.853553...
        assertEquals(1e-3 * (0.1 + 0.9 * 0.8535533905932737), s.lr(35), 1e-12);
        assertEquals(1e-4, s.lr(110), 1e-15, "floor at the end");
        assertEquals(1e-4, s.lr(500), 1e-15, "and after it");
    }

    @Test
    void noWarmupNoFloor() {
        LrSchedule s = new LrSchedule(2.0, 0, 4, 0.0);
        assertEquals(2.0, s.lr(0), 1e-12);
        assertEquals(1.0, s.lr(2), 1e-12);
        assertEquals(0.0, s.lr(4), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new LrSchedule(1, 0, 4, 1.5));
    }
}
