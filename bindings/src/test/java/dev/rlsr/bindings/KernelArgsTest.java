package dev.rlsr.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

@SuppressWarnings("restricted") // FFM downcalls and reinterpret are the point of this class
class KernelArgsTest {

    @Test
    void pointerArrayPointsAtOneAlignedSlotPerArgumentInOrder() {
        try (KernelArgs args = KernelArgs.of().ptr(0x7f00_1234_5000L).i32(-7).i64(1L << 40).f32(0.25f).f64(-1.5)
                .i16((short) 0x3f80)) {
            assertEquals(6, args.count());
            MemorySegment array = args.pointerArray();
            assertEquals(6 * ADDRESS.byteSize(), array.byteSize());
            for (int i = 0; i < 6; i++) {
                MemorySegment p = array.getAtIndex(ADDRESS, i);
                assertEquals(args.slot(i).address(), p.address(), "slot " + i);
                assertEquals(0, p.address() % 8, "slot " + i + " must be 8-byte aligned");
            }
            MemorySegment[] slots = new MemorySegment[6];
            for (int i = 0; i < 6; i++) {
                slots[i] = array.getAtIndex(ADDRESS, i).reinterpret(8);
            }
            assertEquals(0x7f00_1234_5000L, slots[0].get(JAVA_LONG, 0));
            assertEquals(-7, slots[1].get(JAVA_INT, 0));
            assertEquals(1L << 40, slots[2].get(JAVA_LONG, 0));
            assertEquals(0.25f, slots[3].get(JAVA_FLOAT, 0));
            assertEquals(-1.5, slots[4].get(JAVA_DOUBLE, 0));
            assertEquals((short) 0x3f80, slots[5].get(JAVA_SHORT, 0));
        }
    }

    @Test
    void appendingAfterPointerArrayRebuildsIt() {
        try (KernelArgs args = KernelArgs.of().i32(1)) {
            assertEquals(1, args.pointerArray().byteSize() / ADDRESS.byteSize());
            args.i32(2);
            MemorySegment array = args.pointerArray();
            assertEquals(2, array.byteSize() / ADDRESS.byteSize());
            assertEquals(2, array.getAtIndex(ADDRESS, 1).reinterpret(4).get(JAVA_INT, 0));
        }
    }

    @Test
    void closeIsIdempotentAndUseAfterCloseFails() {
        KernelArgs args = KernelArgs.of().f32(1f);
        args.close();
        assertDoesNotThrow(args::close);
        assertThrows(IllegalStateException.class, args::pointerArray);
        assertThrows(IllegalStateException.class, args::pointerArrayAddress);
        assertThrows(IllegalStateException.class, () -> args.i32(3));
    }

    @Test
    void localInstanceIsResetAndReusedWithoutAllocating() {
        KernelArgs first = KernelArgs.local().ptr(0x1000L).i32(5);
        long array = first.pointerArray().address();
        KernelArgs second = KernelArgs.local();
        assertEquals(first, second, "one reusable instance per thread");
        assertEquals(0, second.count(), "local() starts empty");
        second.f32(2.5f);
        assertEquals(array, second.pointerArray().address(), "the same native array is reused");
        assertEquals(array, second.pointerArrayAddress(), "what cuLaunchKernel gets is that array");
        assertEquals(2.5f, second.pointerArray().getAtIndex(ADDRESS, 0).reinterpret(4).get(JAVA_FLOAT, 0));
        second.close();
        assertDoesNotThrow(() -> KernelArgs.local().i32(1).pointerArray());
    }

    @Test
    void tooManyArgumentsAreRefusedByName() {
        KernelArgs args = KernelArgs.local();
        for (int i = 0; i < KernelArgs.MAX_ARGS; i++) {
            args.i32(i);
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> args.i32(0));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("at most " + KernelArgs.MAX_ARGS), e.getMessage());
    }
}
