package dev.rlsr.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The launchers of cast, elementwise, copy_rows, argmax, embedding, rope and swiglu reject bad arguments on the host,
 * naming them, before any CUDA call: this runs without a GPU. (Addresses are made up; nothing is launched.)
 */
class TransformerOpsPreconditionsTest {
    private static void rejects(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' should mention " + fragment);
    }

    @Test
    void cast() {
        rejects("n (elements) must be positive", () -> Cast.f32ToBf16(256, 4096, 0, 0));
        rejects("src (0x102) must be aligned to 4", () -> Cast.f32ToBf16(258, 4096, 8, 0));
        rejects("dst is a null device pointer", () -> Cast.bf16ToF32(256, 0, 8, 0));
        rejects("overlap", () -> Cast.f32ToBf16(4096, 4096 + 30, 8, 0));
    }

    @Test
    void elementwise() {
        rejects("dtype must be F32 or BF16", () -> Elementwise.fill(256, DType.I32, 4, 1f, 0));
        rejects("t (0x101) must be aligned to 4", () -> Elementwise.fillI32(257, 4, 1, 0));
        rejects("out and a overlap", () -> Elementwise.add(4096, 8192, 4100, DType.F32, 16, 0));
        rejects("aligned to 2", () -> Elementwise.scale(4097, DType.BF16, 16, 2f, 0));
        rejects("t (0x102) must be aligned to 4", () -> Elementwise.addI32(258, 4, 1, 0));
        rejects("n (elements) must be positive", () -> Elementwise.addI32(256, 0, 1, 0));
        rejects("cols must be positive", () -> Elementwise.biasGrad(4096, DType.F32, 4, 0, 8192, 0, 0));
        rejects("dBias and dy overlap", () -> Elementwise.biasGrad(4096, DType.F32, 4, 8, 4100, 0, 0));
        // 8192 rows of 5 columns need scratch: a null scratch is named
        rejects("scratch is a null device pointer", () -> Elementwise.biasGrad(4096, DType.F32, 8192, 5, 1 << 24, 0, 0));
    }

    @Test
    void biasGradScratchStaysBounded() {
        assertEquals(0, Elementwise.biasGradScratchBytes(8192, 151936), "wide layers sum in one pass");
        assertTrue(Elementwise.biasGradScratchBytes(8192, 896) > 0, "narrow layers split the rows");
        for (int rows : new int[] {1, 64, 8192, 1 << 20}) {
            for (int cols : new int[] {1, 127, 128, 896, 4864, 131071, 151936}) {
                long b = Elementwise.biasGradScratchBytes(rows, cols);
                assertTrue(b <= Elementwise.BIAS_GRAD_SCRATCH_MAX_BYTES, rows + "x" + cols + ": " + b);
            }
        }
    }

    @Test
    void copyRows() {
        rejects("srcRow0 + rows = 5 exceeds srcStride 4",
                () -> CopyRows.copyRows(4096, 4, 2, 1 << 20, 8, 0, 1, 3, 16, DType.F32, 0));
        rejects("dstRow0 + rows", () -> CopyRows.copyRows(4096, 4, 0, 1 << 20, 8, 6, 1, 3, 16, DType.F32, 0));
        rejects("2 or 4 bytes", () -> CopyRows.copyRows(4096, 4, 0, 1 << 20, 8, 0, 1, 3, 16, DType.I64, 0));
        rejects("src and dst overlap", () -> CopyRows.copyRows(4096, 4, 0, 4096 + 64, 8, 0, 1, 3, 16, DType.F32, 0));
        rejects("srcRow0 must be >= 0", () -> CopyRows.copyRows(4096, 4, -1, 1 << 20, 8, 0, 1, 3, 16, DType.F32, 0));
        rejects("dtype must be F32 or BF16", () -> CopyRows.gatherRows(4096, DType.I32, 4, 8192, 2, 1 << 20, 8, 0));
        rejects("rows (0x2002) must be aligned to 4", () -> CopyRows.gatherRows(4096, DType.F32, 4, 8194, 2, 1 << 20, 8, 0));
        rejects("dst and src overlap", () -> CopyRows.gatherRows(4096, DType.F32, 4, 1 << 20, 2, 4096 + 16, 8, 0));
        // appendAt(src, dst, row, batch, dstStride, width, dtype, stream)
        rejects("row is a null device pointer", () -> CopyRows.appendAt(4096, 1 << 20, 0, 2, 8, 16, DType.F32, 0));
        rejects("row (0x2002) must be aligned to 4",
                () -> CopyRows.appendAt(4096, 1 << 20, 8194, 2, 8, 16, DType.BF16, 0));
        rejects("row and dst overlap",
                () -> CopyRows.appendAt(4096, 1 << 20, (1 << 20) + 64, 2, 8, 16, DType.F32, 0));
        rejects("src and dst overlap", () -> CopyRows.appendAt(4096, 4096 + 64, 1 << 24, 2, 8, 16, DType.F32, 0));
        rejects("dstStride must be positive", () -> CopyRows.appendAt(4096, 1 << 20, 1 << 24, 2, 0, 16, DType.F32, 0));
        rejects("2 or 4 bytes", () -> CopyRows.appendAt(4096, 1 << 20, 1 << 24, 2, 8, 16, DType.I64, 0));
    }

    @Test
    void argmax() {
        rejects("width must be positive", () -> Argmax.rows(4096, DType.F32, 3, 0, 8192, 0));
        rejects("out and x overlap", () -> Argmax.rows(4096, DType.F32, 3, 8, 4100, 0));
        rejects("out (0x2001) must be aligned to 4", () -> Argmax.rows(4096, DType.BF16, 3, 8, 8193, 0));
    }

    @Test
    void embedding() {
        rejects("v (vocabulary) must be positive", () -> Embedding.forward(256, 4, 4096, DType.F32, 0, 8, 1 << 20, 0));
        rejects("out and table overlap", () -> Embedding.forward(256, 4, 4096, DType.F32, 10, 8, 4096 + 32, 0));
        rejects("scratch (0x100008) must be aligned to 16",
                () -> Embedding.backward(256, 4, 4096, DType.F32, 8, 1 << 16, 100, (1 << 20) + 8, 0));
        rejects("scratch and dTable overlap",
                () -> Embedding.backward(256, 4, 4096, DType.F32, 8, 1 << 16, 100, (1 << 16) + 256, 0));
        rejects("dTable and dOut overlap", () -> Embedding.backward(256, 4, 4096, DType.BF16, 8, 4096, 100, 1 << 24, 0));
        assertEquals(16L * 33 + 2L * 2 * 7 * 4, Embedding.backwardScratchBytes(33, 7));
    }

    @Test
    void rope() {
        rejects("headDim must be even", () -> Rope.table(256, 4, 512, 7, 4096, 0));
        rejects("table and positions overlap", () -> Rope.table(4096, 4, 512, 8, 4096 + 8, 0));
        rejects("xRowStride 100 is less than heads*headDim = 128",
                () -> Rope.apply(4096, DType.F32, 4, 2, 64, 100, 1 << 20, false, 0));
        rejects("x and table overlap", () -> Rope.apply(4096, DType.F32, 4, 2, 64, 4096 + 512, false, 0));
        rejects("dtype must be F32 or BF16", () -> Rope.apply(4096, DType.F16, 4, 2, 64, 1 << 20, false, 0));
    }

    @Test
    void swiglu() {
        rejects("h and g overlap", () -> Swiglu.forward(4096, 1 << 20, 4100, DType.F32, 16, 0));
        rejects("dg and du overlap", () -> Swiglu.backward(4096, 8192, 12288, 1 << 20, 1 << 20, DType.F32, 16, 0));
        rejects("du and dh overlap", () -> Swiglu.backward(4096, 8192, 12288, 1 << 20, 12290, DType.BF16, 16, 0));
        rejects("n (elements) must be positive", () -> Swiglu.forward(4096, 8192, 4096, DType.F32, 0, 0));
    }
}
