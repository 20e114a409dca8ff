package dev.rlsr.engine.io;

import dev.rlsr.kernels.DType;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Builds a safetensors checkpoint the way Hugging Face's writer does: JSON header padded with spaces to a multiple
 * of 8 bytes, data little-endian and packed without holes, {@code __metadata__ {"format": "pt"}} (transformers
 * refuses archives without a known format). The header lists tensors in insertion order; the data is laid out
 * by descending element size, so every tensor's data is aligned to its element size.
 *
 * <p>The arrays passed to {@code put*} are not copied (a checkpoint can be most of the heap): they are read when
 * {@link #write} runs, so do not modify them before that.
 *
 * <p>Files are written to a temporary file in the target directory, forced to disk, then atomically renamed, so
 * a crash never leaves a partial file under the final name.
 */
public final class SafeTensorsWriter {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int BUFFER_BYTES = 1 << 20;

    private record Entry(String name, DType dtype, long[] shape, Object data) {
        long byteLength() {
            return TensorInfo.numel(shape) * dtype.bytes();
        }
    }

    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** An empty writer: add tensors and metadata, then {@link #write} or {@link #writeSharded}. */
    public SafeTensorsWriter() {
        metadata.put("format", "pt");
    }

    /**
     * Adds an F32 tensor.
     *
     * @param name  the tensor's name (unique)
     * @param shape its dimensions
     * @param data  row-major values, {@code numel(shape)} of them
     * @return this, for chaining
     */
    public SafeTensorsWriter putF32(String name, long[] shape, float[] data) {
        return add(name, DType.F32, shape, data, data.length);
    }

    /**
     * Adds a BF16 tensor, rounding each float to nearest-even (NaN stays NaN) like {@code torch.to(bfloat16)}.
     *
     * @param name  the tensor's name (unique)
     * @param shape its dimensions
     * @param data  row-major values, {@code numel(shape)} of them
     * @return this, for chaining
     */
    public SafeTensorsWriter putBF16(String name, long[] shape, float[] data) {
        return add(name, DType.BF16, shape, data, data.length);
    }

    /**
     * Adds an F16 tensor (IEEE binary16, round to nearest-even, overflow to infinity).
     *
     * @param name  the tensor's name (unique)
     * @param shape its dimensions
     * @param data  row-major values, {@code numel(shape)} of them
     * @return this, for chaining
     */
    public SafeTensorsWriter putF16(String name, long[] shape, float[] data) {
        return add(name, DType.F16, shape, data, data.length);
    }

    /**
     * Adds an I64 tensor.
     *
     * @param name  the tensor's name (unique)
     * @param shape its dimensions
     * @param data  row-major values, {@code numel(shape)} of them
     * @return this, for chaining
     */
    public SafeTensorsWriter putI64(String name, long[] shape, long[] data) {
        return add(name, DType.I64, shape, data, data.length);
    }

    /**
     * Adds an I32 tensor.
     *
     * @param name  the tensor's name (unique)
     * @param shape its dimensions
     * @param data  row-major values, {@code numel(shape)} of them
     * @return this, for chaining
     */
    public SafeTensorsWriter putI32(String name, long[] shape, int[] data) {
        return add(name, DType.I32, shape, data, data.length);
    }

    /**
     * Adds a tensor from raw little-endian bytes (for example a segment of another checkpoint, or host memory
     * copied from a device). The segment must stay valid until {@link #write} returns.
     *
     * @param name  the tensor's name (unique)
     * @param dtype its element type
     * @param shape its dimensions
     * @param bytes exactly {@code numel(shape) * dtype.bytes()} bytes
     * @return this, for chaining
     */
    public SafeTensorsWriter putRaw(String name, DType dtype, long[] shape, MemorySegment bytes) {
        long numel = TensorInfo.numel(shape);
        if (bytes.byteSize() != numel * dtype.bytes()) {
            throw new CheckpointException("tensor '" + name + "': " + dtype + " x shape " + Arrays.toString(shape)
                    + " needs " + numel * dtype.bytes() + " bytes, got " + bytes.byteSize());
        }
        return put(new Entry(name, dtype, shape.clone(), bytes));
    }

    /**
     * Adds an entry to {@code __metadata__} (string to string, as the format requires).
     *
     * @param key   the key
     * @param value the value
     * @return this, for chaining
     */
    public SafeTensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** {@return the names added so far, in insertion order} */
    public List<String> names() {
        return List.copyOf(entries.keySet());
    }

    private SafeTensorsWriter add(String name, DType dtype, long[] shape, Object data, long length) {
        long numel;
        try {
            numel = TensorInfo.numel(shape);
        } catch (ArithmeticException e) {
            throw new CheckpointException("tensor '" + name + "': shape " + Arrays.toString(shape) + " overflows");
        }
        for (long d : shape) {
            if (d < 0) {
                throw new CheckpointException("tensor '" + name + "': negative dimension in shape "
                        + Arrays.toString(shape));
            }
        }
        if (numel != length) {
            throw new CheckpointException("tensor '" + name + "': shape " + Arrays.toString(shape) + " has " + numel
                    + " elements, but " + length + " values were given");
        }
        return put(new Entry(name, dtype, shape.clone(), data));
    }

    private SafeTensorsWriter put(Entry e) {
        if (e.name().equals("__metadata__") || e.name().isEmpty()) {
            throw new CheckpointException("'" + e.name() + "' is not a valid tensor name");
        }
        if (entries.putIfAbsent(e.name(), e) != null) {
            throw new CheckpointException("tensor '" + e.name() + "' was added twice");
        }
        return this;
    }

    /**
     * Writes every tensor into one file (atomically: temp file, fsync, rename).
     *
     * @param file the {@code .safetensors} file
     * @throws CheckpointException when the file cannot be written
     */
    public void write(Path file) {
        writeFile(file, new ArrayList<>(entries.values()));
    }

    /**
     * Writes HF-style shards of at most {@code maxShardBytes} of tensor data each (a larger tensor gets a shard of
     * its own): {@code model-00001-of-00003.safetensors ...} plus {@code model.safetensors.index.json}; a single
     * shard is written as {@code model.safetensors} without an index. Shards are written before the index, so an
     * interrupted save leaves no index that points at missing shards.
     *
     * @param dir           the model directory
     * @param maxShardBytes tensor bytes per shard
     * @throws CheckpointException when a file cannot be written
     */
    public void writeSharded(Path dir, long maxShardBytes) {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
        }
        List<List<Entry>> shards = new ArrayList<>();
        List<Entry> current = new ArrayList<>();
        long currentBytes = 0;
        for (Entry e : entries.values()) {
            long b = e.byteLength();
            if (!current.isEmpty() && currentBytes + b > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(e);
            currentBytes += b;
        }
        if (!current.isEmpty() || shards.isEmpty()) {
            shards.add(current);
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new CheckpointException("cannot create directory " + dir + ": " + IoMessages.describe(e), e);
        }
        if (shards.size() == 1) {
            writeFile(dir.resolve(SafeTensors.SINGLE_FILE), shards.getFirst());
            // A stale index would win over the new file when the directory is opened (as in transformers).
            removeStale(dir, Set.of(SafeTensors.SINGLE_FILE));
            return;
        }
        int n = shards.size();
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        for (int i = 0; i < n; i++) {
            String fileName = String.format("model-%05d-of-%05d.safetensors", i + 1, n);
            writeFile(dir.resolve(fileName), shards.get(i));
            for (Entry e : shards.get(i)) {
                weightMap.put(e.name(), fileName);
                total += e.byteLength();
            }
        }
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode wm = index.putObject("weight_map");
        weightMap.forEach(wm::put);
        try {
            byte[] bytes = (JSON.writer(SerializationFeature.INDENT_OUTPUT).writeValueAsString(index) + "\n")
                    .getBytes(StandardCharsets.UTF_8);
            atomicWrite(dir.resolve(SafeTensors.INDEX_FILE), ch -> writeFully(ch, ByteBuffer.wrap(bytes)));
        } catch (IOException e) {
            throw new CheckpointException("cannot write " + dir.resolve(SafeTensors.INDEX_FILE) + ": "
                    + IoMessages.describe(e), e);
        }
        Set<String> keep = new HashSet<>(weightMap.values());
        keep.add(SafeTensors.INDEX_FILE);
        removeStale(dir, keep);
    }

    private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");

    /**
     * Deletes what an earlier save into the same directory left and this save does not replace: an index, a
     * single model.safetensors, shards of another count (save_pretrained cleans up the same way). Runs after the
     * new files are complete, so an interrupted save still leaves one readable checkpoint.
     */
    private static void removeStale(Path dir, Set<String> keep) {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                boolean ours = n.equals(SafeTensors.INDEX_FILE) || n.equals(SafeTensors.SINGLE_FILE)
                        || SHARD_NAME.matcher(n).matches();
                if (ours && !keep.contains(n)) {
                    Files.deleteIfExists(p);
                }
            }
        } catch (IOException e) {
            throw new CheckpointException("wrote the checkpoint in " + dir + " but could not remove stale files: "
                    + IoMessages.describe(e), e);
        }
    }

    private void writeFile(Path file, List<Entry> list) {
        // Data order: widest elements first (stable), so every tensor starts at a multiple of its element size.
        List<Entry> dataOrder = new ArrayList<>(list);
        dataOrder.sort(Comparator.comparingInt((Entry e) -> -e.dtype().bytes()));
        Map<String, long[]> offsets = new LinkedHashMap<>();
        long pos = 0;
        for (Entry e : dataOrder) {
            long len = e.byteLength();
            offsets.put(e.name(), new long[]{pos, pos + len});
            pos += len;
        }
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        for (Entry e : list) {
            ObjectNode t = header.putObject(e.name());
            t.put("dtype", e.dtype().safetensorsName());
            ArrayNode s = t.putArray("shape");
            for (long d : e.shape()) {
                s.add(d);
            }
            long[] o = offsets.get(e.name());
            t.putArray("data_offsets").add(o[0]).add(o[1]);
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (IOException e) {
            throw new CheckpointException("cannot encode safetensors header for " + file + ": " + e.getMessage(), e);
        }
        int padded = (json.length + 7) & ~7;
        try {
            atomicWrite(file, ch -> {
                ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                buf.putLong(padded);
                writeFully(ch, buf.flip());
                ByteBuffer h = ByteBuffer.allocate(padded);
                h.put(json);
                while (h.hasRemaining()) {
                    h.put((byte) ' ');
                }
                writeFully(ch, h.flip());
                buf.clear();
                for (Entry e : dataOrder) {
                    encode(e, ch, buf);
                }
                writeFully(ch, buf.flip());
            });
        } catch (IOException e) {
            throw new CheckpointException("cannot write " + file + ": " + IoMessages.describe(e), e);
        }
    }

    private static void encode(Entry e, FileChannel ch, ByteBuffer buf) throws IOException {
        switch (e.data()) {
            case MemorySegment seg -> {
                for (long off = 0; off < seg.byteSize(); ) {
                    if (!buf.hasRemaining()) {
                        writeFully(ch, buf.flip());
                        buf.clear();
                    }
                    int n = (int) Math.min(buf.remaining(), seg.byteSize() - off);
                    MemorySegment.ofBuffer(buf).asSlice(0, n).copyFrom(seg.asSlice(off, n));
                    buf.position(buf.position() + n);
                    off += n;
                }
            }
            case float[] f -> {
                for (float v : f) {
                    if (buf.remaining() < 8) {
                        writeFully(ch, buf.flip());
                        buf.clear();
                    }
                    switch (e.dtype()) {
                        case F32 -> buf.putFloat(v);
                        case BF16 -> buf.putShort(toBF16(v));
                        case F16 -> buf.putShort(Float.floatToFloat16(v));
                        default -> throw new IllegalStateException(e.dtype().toString());
                    }
                }
            }
            case long[] l -> {
                for (long v : l) {
                    if (buf.remaining() < 8) {
                        writeFully(ch, buf.flip());
                        buf.clear();
                    }
                    buf.putLong(v);
                }
            }
            case int[] a -> {
                for (int v : a) {
                    if (buf.remaining() < 8) {
                        writeFully(ch, buf.flip());
                        buf.clear();
                    }
                    buf.putInt(v);
                }
            }
            default -> throw new IllegalStateException(e.data().getClass().toString());
        }
    }

    /**
     * float -&gt; bfloat16 bits, round to nearest, ties to even (what PyTorch does); NaN maps to a quiet NaN so that
     * rounding can never turn it into infinity.
     *
     * @param v the value
     * @return its bf16 bits
     */
    public static short toBF16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);
    }

    /**
     * bfloat16 bits -&gt; float (exact).
     *
     * @param bits bf16 bits
     * @return the value
     */
    public static float fromBF16(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    @FunctionalInterface
    private interface Body {
        void write(FileChannel ch) throws IOException;
    }

    /** temp file in the same directory -> fsync -> atomic rename -> fsync directory (best effort). */
    private static void atomicWrite(Path file, Body body) throws IOException {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        Files.createDirectories(dir);
        Path tmp = TempFiles.newFile(dir, abs.getFileName().toString());
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                body.write(ch);
                ch.force(true);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
            try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
                d.force(true);
            } catch (IOException | UnsupportedOperationException ignored) {
                // Not every OS can fsync a directory; the rename itself is still atomic.
            }
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }
}
