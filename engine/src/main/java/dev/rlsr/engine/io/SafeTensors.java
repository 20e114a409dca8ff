package dev.rlsr.engine.io;

import dev.rlsr.kernels.DType;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reader of a Hugging Face safetensors checkpoint: one {@code .safetensors} file, or a directory holding
 * {@code model.safetensors} or a sharded {@code model.safetensors.index.json}. The files are memory-mapped
 * read-only into one shared {@link Arena} (so segments may be read from any thread) that {@link #close()} frees;
 * segments handed out are invalid after close.
 *
 * <p>Everything the header claims is validated on open (header length, JSON, dtype, every data range inside the
 * file, dtype x numel == byte length, no overlapping ranges), so a later read cannot fault on a bad file.
 */
public final class SafeTensors implements AutoCloseable {

    /** The safetensors format caps the header at 100 MB; anything larger is a corrupt length prefix. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;
    /** File name of an unsharded checkpoint. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** File name of the index of a sharded checkpoint. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final Map<Path, MemorySegment> mapped;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    private volatile boolean closed;

    private SafeTensors(Path path, Arena arena, Map<Path, MemorySegment> mapped, Map<String, TensorInfo> tensors,
                        Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.mapped = mapped;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Opens a {@code .safetensors} file, or a directory with {@code model.safetensors} or
     * {@code model.safetensors.index.json} (the index wins when both are present, as in transformers).
     *
     * @param path a file or a model directory
     * @return the opened checkpoint (memory-mapped); close it to unmap
     * @throws CheckpointException naming the file when it is missing or malformed
     */
    public static SafeTensors open(Path path) {
        if (Files.isDirectory(path)) {
            Path index = path.resolve(INDEX_FILE);
            if (Files.isRegularFile(index)) {
                return openIndex(path, index);
            }
            Path single = path.resolve(SINGLE_FILE);
            if (Files.isRegularFile(single)) {
                ModelPaths.requireRealPathInside(path, single, null);
                return openFiles(path, List.of(single), null, Map.of());
            }
            throw new CheckpointException("no checkpoint in directory " + path + ": expected " + SINGLE_FILE
                    + " or " + INDEX_FILE);
        }
        if (!Files.exists(path)) {
            throw new CheckpointException("checkpoint not found: " + path);
        }
        if (path.getFileName().toString().endsWith(".json")) {
            return openIndex(path, path);
        }
        return openFiles(path, List.of(path), null, Map.of());
    }

    private static SafeTensors openIndex(Path checkpoint, Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(index, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new CheckpointException("cannot read shard index " + index + ": " + IoMessages.describe(e), e);
        }
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new CheckpointException(index + ": shard index has no \"weight_map\" object");
        }
        Path dir = index.toAbsolutePath().getParent();
        Map<String, Path> expected = new LinkedHashMap<>();
        LinkedHashSet<Path> shards = new LinkedHashSet<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(index + ": weight_map entry '" + e.getKey() + "' is not a file name");
            }
            Path shard = ModelPaths.resolveInside(dir, e.getValue().asText(), index);
            if (!Files.isRegularFile(shard)) {
                throw new CheckpointException(index + ": shard " + e.getValue().asText() + " (holding '" + e.getKey()
                        + "') is missing from " + dir);
            }
            expected.put(e.getKey(), shard);
            shards.add(shard);
        }
        Map<String, String> meta = new LinkedHashMap<>();
        JsonNode m = root.get("metadata");
        if (m != null && m.isObject()) {
            m.properties().forEach(e -> meta.put(e.getKey(), e.getValue().isTextual() ? e.getValue().asText()
                    : e.getValue().toString()));
        }
        return openFiles(checkpoint, new ArrayList<>(shards), expected, meta);
    }

    private static SafeTensors openFiles(Path checkpoint, List<Path> files, Map<String, Path> expected,
                                         Map<String, String> extraMeta) {
        Arena arena = Arena.ofShared();
        try {
            Map<Path, MemorySegment> mapped = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = new LinkedHashMap<>();
            Map<String, String> meta = new LinkedHashMap<>();
            boolean first = true;
            for (Path f : files) {
                MemorySegment seg;
                try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                    seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
                } catch (IOException e) {
                    throw new CheckpointException("cannot read " + f + ": " + IoMessages.describe(e), e);
                }
                mapped.put(f, seg);
                Map<String, String> fileMeta = parseHeader(f, seg, tensors);
                if (first) {
                    meta.putAll(fileMeta);
                    first = false;
                }
            }
            if (expected != null) {
                for (Map.Entry<String, Path> e : expected.entrySet()) {
                    TensorInfo t = tensors.get(e.getKey());
                    if (t == null || !t.file().equals(e.getValue())) {
                        throw new CheckpointException(checkpoint + ": index says tensor '" + e.getKey() + "' is in "
                                + e.getValue().getFileName() + ", but that shard does not contain it");
                    }
                }
            }
            meta.putAll(extraMeta);
            return new SafeTensors(checkpoint, arena, mapped, Collections.unmodifiableMap(tensors),
                    Collections.unmodifiableMap(meta));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Parses and validates one file's header, adding its tensors; returns its __metadata__. */
    private static Map<String, String> parseHeader(Path file, MemorySegment seg, Map<String, TensorInfo> out) {
        long size = seg.byteSize();
        if (size < 8) {
            throw new CheckpointException(file + " is not a safetensors file: " + size
                    + " bytes, shorter than the 8-byte header length");
        }
        long headerLen = seg.get(I64_LE, 0);
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
            throw new CheckpointException(file + " is not a safetensors file (or is corrupt): header length "
                    + headerLen + " is outside [2, " + MAX_HEADER_BYTES + "]");
        }
        if (8 + headerLen > size) {
            throw new CheckpointException(file + " is truncated: header says its JSON header has " + headerLen
                    + " bytes, file has " + (size - 8) + " after the length prefix");
        }
        byte[] headerBytes = seg.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        JsonNode header;
        try {
            header = JSON.readTree(headerBytes);
        } catch (JsonProcessingException e) {
            throw new CheckpointException(file + ": safetensors header is not valid JSON: "
                    + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new CheckpointException(file + ": cannot parse safetensors header: " + e.getMessage(), e);
        }
        if (header == null || !header.isObject()) {
            throw new CheckpointException(file + ": safetensors header is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long available = size - dataStart;
        Map<String, String> meta = new LinkedHashMap<>();
        List<TensorInfo> mine = new ArrayList<>();
        long maxEnd = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = header.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (v.isObject()) {
                    v.properties().forEach(m -> meta.put(m.getKey(), m.getValue().isTextual()
                            ? m.getValue().asText() : m.getValue().toString()));
                }
                continue;
            }
            String where = "tensor '" + name + "' in " + file;
            JsonNode dt = v.get("dtype");
            JsonNode sh = v.get("shape");
            JsonNode off = v.get("data_offsets");
            if (dt == null || sh == null || off == null || !sh.isArray() || !off.isArray() || off.size() != 2) {
                throw new CheckpointException(where + ": header entry needs dtype, shape and data_offsets [begin, end]");
            }
            DType dtype;
            try {
                dtype = DType.parse(dt.asText());
            } catch (IllegalArgumentException ex) {
                throw new CheckpointException(where + ": " + ex.getMessage());
            }
            long[] shape = new long[sh.size()];
            for (int i = 0; i < shape.length; i++) {
                if (!sh.get(i).canConvertToLong() || sh.get(i).asLong() < 0) {
                    throw new CheckpointException(where + ": bad shape " + sh);
                }
                shape[i] = sh.get(i).asLong();
            }
            long begin = off.get(0).asLong(-1);
            long end = off.get(1).asLong(-1);
            if (begin < 0 || end < begin) {
                throw new CheckpointException(where + ": bad data_offsets " + off);
            }
            long numel;
            try {
                numel = TensorInfo.numel(shape);
                if (Math.multiplyExact(numel, dtype.bytes()) != end - begin) {
                    throw new CheckpointException(where + ": " + dtype + " x shape " + Arrays.toString(shape)
                            + " needs " + numel * dtype.bytes() + " bytes, but data_offsets " + off
                            + " give " + (end - begin));
                }
            } catch (ArithmeticException ex) {
                throw new CheckpointException(where + ": shape " + Arrays.toString(shape) + " overflows");
            }
            maxEnd = Math.max(maxEnd, end);
            if (out.containsKey(name)) {
                throw new CheckpointException(where + ": tensor also defined in " + out.get(name).file());
            }
            mine.add(new TensorInfo(name, dtype, shape, file, dataStart + begin, end - begin));
        }
        if (maxEnd > available) {
            throw new CheckpointException(file + " is truncated: header says " + maxEnd
                    + " bytes of tensor data, file has " + available
                    + " (re-download or re-save the checkpoint)");
        }
        // Overlapping ranges mean a corrupt (or hostile) header; safetensors' own loader rejects them too.
        List<TensorInfo> byOffset = new ArrayList<>(mine);
        byOffset.removeIf(t -> t.byteLength() == 0); // an empty tensor may share its offset with a neighbour
        byOffset.sort((a, b) -> Long.compare(a.dataOffset(), b.dataOffset()));
        for (int i = 1; i < byOffset.size(); i++) {
            TensorInfo p = byOffset.get(i - 1);
            TensorInfo q = byOffset.get(i);
            if (q.dataOffset() < p.dataOffset() + p.byteLength()) {
                throw new CheckpointException(file + ": data of tensors '" + p.name() + "' and '" + q.name()
                        + "' overlap");
            }
        }
        for (TensorInfo t : mine) {
            out.put(t.name(), t);
        }
        return meta;
    }

    /** {@return the path this checkpoint was opened from (file, directory, or index file)} */
    public Path path() {
        return path;
    }

    /** {@return the files mapped (one, or every shard in index order)} */
    public List<Path> files() {
        return List.copyOf(mapped.keySet());
    }

    /** {@return the tensor names in file order} (for shards: shard by shard, in the order the index first names them). */
    public Set<String> names() {
        return tensors.keySet();
    }

    /**
     * Whether the checkpoint has a tensor of this name.
     *
     * @param name the tensor's name
     * @return true if present
     */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** {@return the number of tensors} */
    public int size() {
        return tensors.size();
    }

    /**
     * The header entry of a tensor.
     *
     * @param name the tensor's name
     * @return its dtype, shape, file and byte range
     * @throws CheckpointException naming the tensor and the checkpoint when it is absent
     */
    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new CheckpointException("tensor '" + name + "' not found in " + path + " (" + tensors.size()
                    + " tensors" + suggestion(name) + ")");
        }
        return t;
    }

    private String suggestion(String name) {
        String best = null;
        int bestScore = 0;
        for (String n : tensors.keySet()) {
            int p = 0;
            while (p < n.length() && p < name.length() && n.charAt(p) == name.charAt(p)) {
                p++;
            }
            int s = 0;
            while (s < n.length() - p && s < name.length() - p
                    && n.charAt(n.length() - 1 - s) == name.charAt(name.length() - 1 - s)) {
                s++;
            }
            if (p + s > bestScore) {
                bestScore = p + s;
                best = n;
            }
        }
        return best != null && bestScore >= name.length() / 2 ? "; did you mean '" + best + "'?" : "";
    }

    /** {@return the {@code __metadata__} of the (first) file, plus the shard index's "metadata" values as text} */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * The raw little-endian bytes of a tensor, valid until {@link #close()}.
     *
     * @param name the tensor's name
     * @return a read-only view of the mapped bytes
     */
    public MemorySegment segment(String name) {
        TensorInfo t = info(name);
        return mapping(t).asSlice(t.dataOffset(), t.byteLength());
    }

    private MemorySegment mapping(TensorInfo t) {
        if (closed) {
            throw new IllegalStateException("checkpoint " + path + " is closed");
        }
        return mapped.get(t.file());
    }

    /**
     * A tensor of dtype F32, F16 or BF16 as floats (row-major, as stored).
     *
     * @param name the tensor's name
     * @return its values
     * @throws CheckpointException for another dtype or an absent tensor
     */
    public float[] floats(String name) {
        TensorInfo t = info(name);
        int n = elementCount(t);
        MemorySegment s = segment(name);
        float[] out = new float[n];
        switch (t.dtype()) {
            case F32 -> MemorySegment.copy(s, F32_LE, 0, out, 0, n);
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Float.float16ToFloat(s.getAtIndex(I16_LE, i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Float.intBitsToFloat((s.getAtIndex(I16_LE, i) & 0xFFFF) << 16);
                }
            }
            default -> throw new CheckpointException("tensor '" + name + "' in " + t.file() + " has dtype "
                    + t.dtype() + "; expected a floating type (F32, F16, BF16)");
        }
        return out;
    }

    /**
     * Like {@link #floats(String)}, after checking the shape:
     * {@code tensor 'x' in <file>: expected shape [176, 64], found [64, 176]}.
     *
     * @param name          the tensor's name
     * @param expectedShape the shape it must have
     * @return its values
     * @throws CheckpointException for another shape or dtype, or an absent tensor
     */
    public float[] floats(String name, long... expectedShape) {
        checkShape(name, expectedShape);
        return floats(name);
    }

    /**
     * Throws unless the tensor has exactly this shape.
     *
     * @param name          the tensor's name
     * @param expectedShape the shape it must have
     * @return its header entry
     * @throws CheckpointException naming the tensor, the expected and the found shape
     */
    public TensorInfo checkShape(String name, long... expectedShape) {
        TensorInfo t = info(name);
        if (!t.hasShape(expectedShape)) {
            throw new CheckpointException("tensor '" + name + "' in " + t.file() + ": expected shape "
                    + Arrays.toString(expectedShape) + ", found " + Arrays.toString(t.shape()));
        }
        return t;
    }

    /**
     * A tensor of dtype I64, I32, U8 or BOOL as longs.
     *
     * @param name the tensor's name
     * @return its values
     */
    public long[] longs(String name) {
        TensorInfo t = info(name);
        int n = elementCount(t);
        MemorySegment s = segment(name);
        long[] out = new long[n];
        switch (t.dtype()) {
            case I64 -> MemorySegment.copy(s, I64_LE, 0, out, 0, n);
            case I32 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = s.getAtIndex(I32_LE, i);
                }
            }
            case U8, BOOL -> {
                for (int i = 0; i < n; i++) {
                    out[i] = s.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
                }
            }
            default -> throw new CheckpointException("tensor '" + name + "' in " + t.file() + " has dtype "
                    + t.dtype() + "; expected an integer type (I64, I32, U8, BOOL)");
        }
        return out;
    }

    /**
     * A tensor of dtype I32, I64 (each value must fit an int), U8 or BOOL (0/1) as ints.
     *
     * @param name the tensor's name
     * @return its values
     */
    public int[] ints(String name) {
        TensorInfo t = info(name);
        int n = elementCount(t);
        MemorySegment s = segment(name);
        int[] out = new int[n];
        switch (t.dtype()) {
            case I32 -> MemorySegment.copy(s, I32_LE, 0, out, 0, n);
            case I64 -> {
                for (int i = 0; i < n; i++) {
                    long v = s.getAtIndex(I64_LE, i);
                    if (v != (int) v) {
                        throw new CheckpointException("tensor '" + name + "' in " + t.file() + ": element " + i
                                + " = " + v + " does not fit an int");
                    }
                    out[i] = (int) v;
                }
            }
            case U8, BOOL -> {
                for (int i = 0; i < n; i++) {
                    out[i] = s.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
                }
            }
            default -> throw new CheckpointException("tensor '" + name + "' in " + t.file() + " has dtype "
                    + t.dtype() + "; expected an integer type (I64, I32, U8, BOOL)");
        }
        return out;
    }

    private static int elementCount(TensorInfo t) {
        long n = t.numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new CheckpointException("tensor '" + t.name() + "' in " + t.file() + " has " + n
                    + " elements, too many for a Java array; read it through segment()");
        }
        return (int) n;
    }

    /** Unmaps every file; segments handed out become invalid. Idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafeTensors[" + path + ", " + tensors.size() + " tensors in " + mapped.size() + " file(s)]";
    }
}
