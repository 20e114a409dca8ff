package dev.rlsr.engine.io;

import dev.rlsr.kernels.DType;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writer -> reader round trips for every dtype, bf16/f16 rounding against independent references, shards. */
class SafeTensorsRoundTripTest {

    private static final long SEED = 20251126L;

    /** Random floats of many magnitudes plus the special values a converter gets wrong. */
    static float[] nastyFloats(int n, long seed) {
        Random r = new Random(seed);
        float[] specials = {0f, -0f, 1f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE, -Float.MAX_VALUE,
                65504f, 65520f, 65519.996f, 6.1035156e-5f, 5.9604645e-8f, 2.9802322e-8f, 1.0009766f,
                // bf16 ties: exactly halfway between two bf16 values, once with an even and once with an odd lower
                Float.intBitsToFloat(0x3F808000), Float.intBitsToFloat(0x3F818000),
                Float.intBitsToFloat(0x7F7F8000), Float.intBitsToFloat(0x7F7F7FFF)};
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            if (i < specials.length) {
                out[i] = specials[i];
            } else if (i % 3 == 0) {
                out[i] = Float.intBitsToFloat(r.nextInt()); // every exponent, NaNs included
            } else {
                out[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(12) - 6));
            }
        }
        return out;
    }

    /**
     * Reference float -> bf16 by value, not by bit tricks: the two bf16 neighbours of |x| (truncation and the next
     * bf16 up, taken as 2^128 = infinity past the largest finite one), the nearer wins, ties go to the even one.
     */
    static float refBF16(float x) {
        if (Float.isNaN(x)) {
            return Float.NaN;
        }
        if (Float.isInfinite(x) || x == 0) {
            return x;
        }
        double a = Math.abs((double) x);
        int lowBits = Float.floatToRawIntBits(Math.abs(x)) & 0xFFFF0000;
        double low = Float.intBitsToFloat(lowBits);
        int highBits = lowBits + 0x10000;
        double high = highBits >= 0x7F800000 ? Math.scalb(1.0, 128) : Float.intBitsToFloat(highBits);
        double dl = a - low, dh = high - a;
        int pick = dl < dh ? lowBits : dh < dl ? highBits : (((lowBits >>> 16) & 1) == 0 ? lowBits : highBits);
        float m = pick >= 0x7F800000 ? Float.POSITIVE_INFINITY : Float.intBitsToFloat(pick);
        return x < 0 ? -m : m;
    }

    /** Every non-negative finite binary16 value, ascending, decoded from its definition. */
    private static final double[] F16_VALUES = buildF16();

    private static double[] buildF16() {
        double[] v = new double[0x7C00 + 1];
        for (int bits = 0; bits < 0x7C00; bits++) {
            int e = bits >> 10, m = bits & 0x3FF;
            v[bits] = e == 0 ? m * Math.scalb(1.0, -24) : (1 + m / 1024.0) * Math.scalb(1.0, e - 15);
        }
        v[0x7C00] = 65536.0; // the "next" value after 65504 for rounding purposes: overflow goes to infinity
        return v;
    }

    /** Reference float -> binary16 by nearest search over the table, ties to even bit pattern. */
    static float refF16(float x) {
        if (Float.isNaN(x)) {
            return Float.NaN;
        }
        if (Float.isInfinite(x)) {
            return x;
        }
        double a = Math.abs((double) x);
        int i = Arrays.binarySearch(F16_VALUES, a);
        int pick;
        if (i >= 0) {
            pick = i;
        } else {
            int hi = -i - 1;
            if (hi >= F16_VALUES.length) {
                pick = 0x7C00;
            } else {
                int lo = hi - 1;
                double dl = a - F16_VALUES[lo], dh = F16_VALUES[hi] - a;
                pick = dl < dh ? lo : dh < dl ? hi : ((lo & 1) == 0 ? lo : hi);
            }
        }
        double m = pick == 0x7C00 ? Double.POSITIVE_INFINITY : F16_VALUES[pick];
        return (float) (x < 0 || (x == 0 && 1 / x < 0) ? -m : m);
    }

    private static void assertSameFloats(float[] expected, float[] got, String what) {
        assertEquals(expected.length, got.length);
        for (int i = 0; i < expected.length; i++) {
            boolean same = Float.isNaN(expected[i]) ? Float.isNaN(got[i])
                    : Float.floatToIntBits(expected[i]) == Float.floatToIntBits(got[i]);
            if (!same) {
                throw new AssertionError(what + " [seed " + SEED + "]: element " + i + " input-derived expected "
                        + expected[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(expected[i]))
                        + "), got " + got[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(got[i])) + ")");
            }
        }
    }

    @Test
    void everyDtypeRoundTrips(@TempDir Path tmp) throws IOException {
        float[] f = nastyFloats(3000, SEED);
        long[] l = new Random(SEED + 1).longs(77).toArray();
        l[0] = Long.MIN_VALUE;
        l[1] = Long.MAX_VALUE;
        int[] ints = new Random(SEED + 2).ints(35).toArray();
        ints[0] = Integer.MIN_VALUE;
        byte[] mask = {1, 0, 0, 1, 1};
        byte[] u8 = {0, 1, (byte) 200, (byte) 255};
        Path file = tmp.resolve("all.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            new SafeTensorsWriter()
                    .putF16("half", new long[]{3, 1000}, f)
                    .putF32("full", new long[]{3000}, f)
                    .putBF16("brain", new long[]{10, 300}, f)
                    .putI64("longs", new long[]{7, 11}, l)
                    .putI32("ints", new long[]{5, 7}, ints)
                    .putRaw("mask", DType.BOOL, new long[]{5}, arena.allocateFrom(ValueLayout.JAVA_BYTE, mask))
                    .putRaw("bytes", DType.U8, new long[]{2, 2}, arena.allocateFrom(ValueLayout.JAVA_BYTE, u8))
                    .putF32("scalar", new long[]{}, new float[]{42.5f})
                    .putF32("empty", new long[]{0, 4}, new float[0])
                    .metadata("note", "round trip")
                    .write(file);
        }
        float[] bf = new float[f.length], hf = new float[f.length];
        for (int i = 0; i < f.length; i++) {
            bf[i] = refBF16(f[i]);
            hf[i] = refF16(f[i]);
        }
        try (SafeTensors st = SafeTensors.open(file)) {
            assertEquals(List.of("half", "full", "brain", "longs", "ints", "mask", "bytes", "scalar", "empty"),
                    new ArrayList<>(st.names()), "insertion order");
            assertEquals("pt", st.metadata().get("format"));
            assertEquals("round trip", st.metadata().get("note"));
            assertSameFloats(f, st.floats("full"), "F32");
            assertSameFloats(bf, st.floats("brain", 10, 300), "BF16");
            assertSameFloats(hf, st.floats("half", 3, 1000), "F16");
            assertArrayEquals(l, st.longs("longs"));
            assertArrayEquals(ints, st.ints("ints"));
            assertArrayEquals(Arrays.stream(ints).asLongStream().toArray(), st.longs("ints"));
            assertArrayEquals(new int[]{1, 0, 0, 1, 1}, st.ints("mask"));
            assertArrayEquals(new int[]{0, 1, 200, 255}, st.ints("bytes"));
            assertArrayEquals(new float[]{42.5f}, st.floats("scalar"));
            assertEquals(1, st.info("scalar").numel());
            assertEquals(0, st.floats("empty", 0, 4).length);
            CheckpointException tooBig = assertThrows(CheckpointException.class, () -> st.ints("longs"));
            assertTrue(tooBig.getMessage().contains("does not fit an int"), tooBig.getMessage());
            // Aligned like HF's writer: data starts at a multiple of 8, each tensor at a multiple of its size.
            for (String n : st.names()) {
                TensorInfo t = st.info(n);
                assertEquals(0, t.dataOffset() % t.dtype().bytes(), n + " misaligned at " + t.dataOffset());
            }
        }
        long headerLen = readHeaderLength(file);
        assertEquals(0, (8 + headerLen) % 8);
        // The naive decoder agrees on the raw bytes, so the file is not only readable by our own reader.
        var naive = CheckpointFixtures.naiveRead(file);
        assertArrayEquals(l, naive.get("longs").i64());
        assertEquals("BF16", naive.get("brain").dtype());
        // The writer never hands back a temp file.
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(file), s.toList());
        }
    }

    @Test
    void bf16RoundingMatchesReferenceOnTiesAndOverflow() {
        // Known results (IEEE round-to-nearest-even) that do not depend on either implementation.
        assertEquals(1.0f, SafeTensorsWriter.fromBF16(SafeTensorsWriter.toBF16(Float.intBitsToFloat(0x3F808000))));
        assertEquals(Float.intBitsToFloat(0x3F820000),
                SafeTensorsWriter.fromBF16(SafeTensorsWriter.toBF16(Float.intBitsToFloat(0x3F818000))));
        assertEquals(Float.POSITIVE_INFINITY, SafeTensorsWriter.fromBF16(SafeTensorsWriter.toBF16(Float.MAX_VALUE)));
        assertTrue(Float.isNaN(SafeTensorsWriter.fromBF16(SafeTensorsWriter.toBF16(Float.intBitsToFloat(0x7F800001)))));
        Random r = new Random(SEED);
        for (int i = 0; i < 200_000; i++) {
            float x = Float.intBitsToFloat(r.nextInt());
            float got = SafeTensorsWriter.fromBF16(SafeTensorsWriter.toBF16(x));
            float ref = refBF16(x);
            if (!(Float.isNaN(ref) ? Float.isNaN(got) : Float.floatToIntBits(ref) == Float.floatToIntBits(got))) {
                throw new AssertionError("seed " + SEED + " draw " + i + ": bf16(" + x + ") = " + got + ", expected " + ref);
            }
        }
    }

    @Test
    void shardedRoundTripThroughIndex(@TempDir Path tmp) throws IOException {
        Random r = new Random(SEED);
        SafeTensorsWriter w = new SafeTensorsWriter();
        List<String> names = new ArrayList<>();
        List<float[]> values = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            float[] v = new float[100 + 37 * i];
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) r.nextGaussian();
            }
            String name = "model.layers." + i + ".w";
            w.putF32(name, new long[]{v.length}, v);
            names.add(name);
            values.add(v);
        }
        w.putI64("ids", new long[]{3}, new long[]{5, 6, 7});
        w.writeSharded(tmp, 1200);
        // Expected shard assignment, computed independently: greedy packing in insertion order.
        List<Long> sizes = new ArrayList<>();
        for (float[] v : values) {
            sizes.add(4L * v.length);
        }
        sizes.add(24L);
        int shards = 1;
        long cur = 0;
        for (long s : sizes) {
            if (cur > 0 && cur + s > 1200) {
                shards++;
                cur = 0;
            }
            cur += s;
        }
        assertTrue(shards > 2, "test should produce several shards, got " + shards);
        Path index = tmp.resolve("model.safetensors.index.json");
        assertTrue(Files.isRegularFile(index));
        assertFalse(Files.exists(tmp.resolve("model.safetensors")));
        JsonNode idx = CheckpointFixtures.json(index);
        long total = sizes.stream().mapToLong(Long::longValue).sum();
        assertEquals(total, idx.get("metadata").get("total_size").asLong());
        for (int i = 1; i <= shards; i++) {
            assertTrue(Files.isRegularFile(tmp.resolve(String.format("model-%05d-of-%05d.safetensors", i, shards))));
        }
        assertEquals(names.size() + 1, idx.get("weight_map").size());
        assertEquals(String.format("model-%05d-of-%05d.safetensors", 1, shards),
                idx.get("weight_map").get(names.getFirst()).asText());
        assertEquals(String.format("model-%05d-of-%05d.safetensors", shards, shards),
                idx.get("weight_map").get("ids").asText());
        try (SafeTensors st = SafeTensors.open(tmp)) {
            assertEquals(shards, st.files().size());
            for (int i = 0; i < names.size(); i++) {
                assertArrayEquals(values.get(i), st.floats(names.get(i), values.get(i).length));
            }
            assertArrayEquals(new long[]{5, 6, 7}, st.longs("ids"));
            assertEquals(String.valueOf(total), st.metadata().get("total_size"));
        }
        // The index file itself can be opened too.
        try (SafeTensors st = SafeTensors.open(index)) {
            assertEquals(names.size() + 1, st.size());
        }
    }

    @Test
    void singleShardIsPlainModelSafetensors(@TempDir Path tmp) {
        new SafeTensorsWriter().putF32("a", new long[]{2}, new float[]{1, 2}).writeSharded(tmp, 1L << 30);
        assertTrue(Files.isRegularFile(tmp.resolve("model.safetensors")));
        assertFalse(Files.exists(tmp.resolve("model.safetensors.index.json")));
        try (SafeTensors st = SafeTensors.open(tmp)) {
            assertArrayEquals(new float[]{1, 2}, st.floats("a"));
        }
    }

    @Test
    void resavingWithAnotherShardCountRemovesStaleFiles(@TempDir Path tmp) throws IOException {
        SafeTensorsWriter big = new SafeTensorsWriter();
        for (int i = 0; i < 3; i++) {
            big.putF32("w" + i, new long[]{300}, new float[300]);
        }
        big.writeSharded(tmp, 1300);
        Files.writeString(tmp.resolve("config.json"), "{}");
        new SafeTensorsWriter().putF32("small", new long[]{2}, new float[]{3, 4}).writeSharded(tmp, 1300);
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of("config.json", "model.safetensors"),
                    s.map(p -> p.getFileName().toString()).sorted().toList());
        }
        try (SafeTensors st = SafeTensors.open(tmp)) {
            assertEquals(List.of("small"), new ArrayList<>(st.names()));
        }
        big.writeSharded(tmp, 1300);
        assertFalse(Files.exists(tmp.resolve("model.safetensors")));
        try (SafeTensors st = SafeTensors.open(tmp)) {
            assertEquals(3, st.size());
            assertEquals(3, st.files().size());
        }
    }

    @Test
    void indexPointingAtMissingShardIsReported(@TempDir Path tmp) throws IOException {
        new SafeTensorsWriter().putF32("a", new long[]{300}, new float[300])
                .putF32("b", new long[]{300}, new float[300]).writeSharded(tmp, 1000);
        Path gone = tmp.resolve("model-00002-of-00002.safetensors");
        Files.delete(gone);
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(tmp));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors"), e.getMessage());
        assertTrue(e.getMessage().contains("'b'"), e.getMessage());
    }

    @Test
    void truncatedFileSaysHowMuchIsMissing(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("t.safetensors");
        new SafeTensorsWriter().putF32("w", new long[]{10, 10}, new float[100]).write(file);
        long size = Files.size(file);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(size - 13);
        }
        long dataStart = 8 + readHeaderLength(file);
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(file));
        assertTrue(e.getMessage().startsWith(file + " is truncated: header says 400 bytes of tensor data, file has "
                + (size - 13 - dataStart)), e.getMessage());
    }

    @Test
    void corruptHeadersAreRejectedWithAReason(@TempDir Path tmp) throws IOException {
        Path huge = write(tmp.resolve("huge.safetensors"), Long.MAX_VALUE / 2, "{}", 0);
        assertMessage(huge, "header length");
        Path notJson = write(tmp.resolve("nj.safetensors"), -1, "{\"a\": [", 0);
        assertMessage(notJson, "not valid JSON");
        Path badSize = write(tmp.resolve("bs.safetensors"), -1,
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
        assertMessage(badSize, "'w'", "needs 12 bytes", "give 8");
        Path badType = write(tmp.resolve("bt.safetensors"), -1,
                "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
        assertMessage(badType, "'F64'", "supported");
        Path overlap = write(tmp.resolve("ov.safetensors"), -1,
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertMessage(overlap, "overlap");
        Path tiny = tmp.resolve("tiny.safetensors");
        Files.write(tiny, new byte[3]);
        assertMessage(tiny, "not a safetensors file");
    }

    @Test
    void failedWriteLeavesPreviousFileIntact(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("model.safetensors");
        new SafeTensorsWriter().putF32("old", new long[]{2}, new float[]{1, 2}).write(file);
        byte[] before = Files.readAllBytes(file);
        Arena arena = Arena.ofConfined();
        MemorySegment seg = arena.allocate(4096);
        SafeTensorsWriter w = new SafeTensorsWriter()
                .putF32("first", new long[]{1 << 16}, new float[1 << 16]) // some data is written before the failure
                .putRaw("gone", DType.U8, new long[]{4096}, seg);
        arena.close(); // the raw segment dies: the write fails half way
        assertThrows(IllegalStateException.class, () -> w.write(file));
        assertArrayEquals(before, Files.readAllBytes(file));
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(file), s.toList(), "no temp file left behind");
        }
    }

    @Test
    void writerRejectsBadInput() {
        SafeTensorsWriter w = new SafeTensorsWriter().putF32("a", new long[]{2}, new float[2]);
        CheckpointException dup = assertThrows(CheckpointException.class, () -> w.putF32("a", new long[]{2}, new float[2]));
        assertTrue(dup.getMessage().contains("'a'"));
        CheckpointException count = assertThrows(CheckpointException.class,
                () -> w.putF32("b", new long[]{2, 3}, new float[5]));
        assertTrue(count.getMessage().contains("[2, 3]") && count.getMessage().contains("5"), count.getMessage());
    }

    @Test
    void dtypeParseNamesUnknownType() {
        assertEquals(DType.BF16, DType.parse("BF16"));
        assertEquals(8, DType.I64.bytes());
        // kernels.DType cannot know CheckpointException: it throws IllegalArgumentException, which the reader wraps
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DType.parse("F8_E4M3"));
        assertTrue(e.getMessage().contains("'F8_E4M3'"), e.getMessage());
    }

    private static long readHeaderLength(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file)) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, 0);
            return b.flip().getLong();
        }
    }

    /** A hand-made file: length prefix (the real one if -1), header text, then dataBytes zero bytes. */
    private static Path write(Path file, long declaredLen, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declaredLen < 0 ? h.length : declaredLen).put(h);
        Files.write(file, b.array());
        return file;
    }

    private static void assertMessage(Path file, String... parts) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(file).close());
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
        }
    }
}
