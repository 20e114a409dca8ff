package dev.rlsr.engine.onnx;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of an ONNX {@code ModelProto} needed to take the weights out of an exported model: the graph's
 * initializers (name, dims, data type, {@code raw_data} or {@code float_data}) and its nodes (op type, name,
 * inputs, outputs), read by a minimal protobuf decoder (wire format only; no ONNX or protobuf library). Tensors
 * stored outside the file ({@code data_location = EXTERNAL}) are not supported.
 *
 * <p>Field numbers (onnx.proto3): ModelProto.graph = 7; GraphProto.node = 1, initializer = 5; NodeProto.input = 1,
 * output = 2, name = 3, op_type = 4; TensorProto.dims = 1, data_type = 2, float_data = 4, name = 8,
 * raw_data = 9, data_location = 14.
 */
public final class OnnxGraph {

    /** TensorProto.DataType.FLOAT. */
    public static final int FLOAT = 1;

    /**
     * One initializer; {@code floats} holds the values (row-major) when the data type is FLOAT and is null
     * otherwise (integer initializers such as position ids are kept by name and shape only).
     *
     * @param name     the initializer's name
     * @param dims     its shape
     * @param dataType ONNX {@code TensorProto.DataType} (1 = FLOAT)
     * @param floats   the values, or null when not FLOAT
     */
    public record Initializer(String name, long[] dims, int dataType, float[] floats) {
        /** {@return the number of elements} */
        public long numel() {
            long n = 1;
            for (long d : dims) {
                n *= d;
            }
            return n;
        }
    }

    /**
     * One graph node.
     *
     * @param name    the node's name
     * @param opType  the operator, e.g. {@code MatMul}
     * @param inputs  names of its inputs
     * @param outputs names of its outputs
     */
    public record Node(String name, String opType, List<String> inputs, List<String> outputs) {}

    private final Map<String, Initializer> initializers;
    private final List<Node> nodes;

    private OnnxGraph(Map<String, Initializer> initializers, List<Node> nodes) {
        this.initializers = Collections.unmodifiableMap(initializers);
        this.nodes = List.copyOf(nodes);
    }

    /** {@return the initializers by name, in file order} */
    public Map<String, Initializer> initializers() {
        return initializers;
    }

    /** {@return the nodes in graph (topological) order} */
    public List<Node> nodes() {
        return nodes;
    }

    /**
     * Reads and decodes a serialized ModelProto.
     *
     * @param in the model bytes (read to the end, not closed)
     * @return the graph
     * @throws IOException when reading fails
     * @throws IllegalArgumentException if the bytes are not a well-formed protobuf ModelProto with a graph
     */
    public static OnnxGraph read(InputStream in) throws IOException {
        return read(in.readAllBytes());
    }

    /**
     * Decodes a serialized ModelProto.
     *
     * @param model the model bytes
     * @return the graph
     * @throws IllegalArgumentException if the bytes are not a well-formed protobuf ModelProto with a graph
     */
    public static OnnxGraph read(byte[] model) {
        ByteBuffer buf = ByteBuffer.wrap(model).order(ByteOrder.LITTLE_ENDIAN);
        Reader r = new Reader(buf, 0, model.length);
        int[] graph = null;
        while (r.more()) {
            int key = r.tag();
            if (key >>> 3 == 7 && (key & 7) == 2) {
                graph = r.span();
            } else {
                r.skip(key);
            }
        }
        if (graph == null) {
            throw new IllegalArgumentException("not an ONNX model: no graph (ModelProto field 7)");
        }
        Map<String, Initializer> inits = new LinkedHashMap<>();
        List<Node> nodes = new ArrayList<>();
        Reader g = new Reader(buf, graph[0], graph[1]);
        while (g.more()) {
            int key = g.tag();
            int field = key >>> 3;
            if (field == 1 && (key & 7) == 2) {
                int[] s = g.span();
                nodes.add(node(new Reader(buf, s[0], s[1])));
            } else if (field == 5 && (key & 7) == 2) {
                int[] s = g.span();
                Initializer t = tensor(buf, new Reader(buf, s[0], s[1]));
                inits.put(t.name(), t);
            } else {
                g.skip(key);
            }
        }
        return new OnnxGraph(inits, nodes);
    }

    private static Node node(Reader r) {
        List<String> in = new ArrayList<>(), out = new ArrayList<>();
        String name = "", op = "";
        while (r.more()) {
            int key = r.tag();
            switch (key >>> 3) {
                case 1 -> in.add(r.string());
                case 2 -> out.add(r.string());
                case 3 -> name = r.string();
                case 4 -> op = r.string();
                default -> r.skip(key);
            }
        }
        return new Node(name, op, in, out);
    }

    private static Initializer tensor(ByteBuffer buf, Reader r) {
        List<Long> dims = new ArrayList<>();
        int dataType = 0;
        String name = "";
        int[] raw = null;
        List<int[]> floatData = new ArrayList<>();
        List<Float> looseFloats = new ArrayList<>();
        boolean external = false;
        while (r.more()) {
            int key = r.tag();
            int field = key >>> 3, wire = key & 7;
            switch (field) {
                case 1 -> {
                    if (wire == 2) {
                        int[] s = r.span();
                        Reader p = new Reader(buf, s[0], s[1]);
                        while (p.more()) {
                            dims.add(p.varint());
                        }
                    } else {
                        dims.add(r.varint());
                    }
                }
                case 2 -> dataType = (int) r.varint();
                case 4 -> {
                    if (wire == 2) {
                        floatData.add(r.span());
                    } else {
                        looseFloats.add(Float.intBitsToFloat(r.fixed32()));
                    }
                }
                case 8 -> name = r.string();
                case 9 -> raw = r.span();
                case 14 -> external = r.varint() == 1;
                default -> r.skip(key);
            }
        }
        if (external) {
            throw new IllegalArgumentException("initializer '" + name + "' is stored in an external file; only "
                    + "self-contained ONNX models are supported");
        }
        long[] d = new long[dims.size()];
        for (int i = 0; i < d.length; i++) {
            d[i] = dims.get(i);
        }
        float[] values = null;
        if (dataType == FLOAT) {
            long n = 1;
            for (long x : d) {
                n *= x;
            }
            values = new float[Math.toIntExact(n)];
            if (raw != null) {
                check(raw[1] - raw[0] == 4L * n, name, "raw_data of " + (raw[1] - raw[0]) + " bytes for " + n + " floats");
                buf.slice(raw[0], raw[1] - raw[0]).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
            } else {
                int k = 0;
                for (int[] s : floatData) {
                    check((s[1] - s[0]) % 4 == 0 && k + (s[1] - s[0]) / 4 <= n, name, "float_data does not match dims");
                    buf.slice(s[0], s[1] - s[0]).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values, k,
                            (s[1] - s[0]) / 4);
                    k += (s[1] - s[0]) / 4;
                }
                for (float f : looseFloats) {
                    check(k < n, name, "float_data does not match dims");
                    values[k++] = f;
                }
                check(k == n, name, k + " float_data values for " + n + " elements");
            }
        }
        return new Initializer(name, d, dataType, values);
    }

    private static void check(boolean ok, String name, String what) {
        if (!ok) {
            throw new IllegalArgumentException("malformed ONNX initializer '" + name + "': " + what);
        }
    }

    /** Protobuf wire-format cursor over [pos, end) of a buffer. */
    private static final class Reader {
        private final ByteBuffer buf;
        private int pos;
        private final int end;

        Reader(ByteBuffer buf, int pos, int end) {
            this.buf = buf;
            this.pos = pos;
            this.end = end;
        }

        boolean more() {
            return pos < end;
        }

        long varint() {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) {
                    throw new IllegalArgumentException("truncated protobuf varint at byte " + pos);
                }
                byte b = buf.get(pos++);
                v |= (long) (b & 0x7F) << shift;
                if (b >= 0) {
                    return v;
                }
            }
            throw new IllegalArgumentException("malformed protobuf varint at byte " + pos);
        }

        int tag() {
            return (int) varint();
        }

        int fixed32() {
            int v = buf.getInt(pos);
            pos += 4;
            return v;
        }

        /** A length-delimited field's [start, end). */
        int[] span() {
            long len = varint();
            if (len < 0 || pos + len > end) {
                throw new IllegalArgumentException("protobuf field of " + len + " bytes overruns its message at byte "
                        + pos);
            }
            int[] s = {pos, (int) (pos + len)};
            pos += (int) len;
            return s;
        }

        String string() {
            int[] s = span();
            byte[] b = new byte[s[1] - s[0]];
            buf.get(s[0], b);
            return new String(b, StandardCharsets.UTF_8);
        }

        void skip(int key) {
            switch (key & 7) {
                case 0 -> varint();
                case 1 -> pos += 8;
                case 2 -> span();
                case 5 -> pos += 4;
                default -> throw new IllegalArgumentException("unsupported protobuf wire type " + (key & 7)
                        + " at byte " + pos);
            }
            if (pos > end) {
                throw new IllegalArgumentException("protobuf field overruns its message at byte " + pos);
            }
        }
    }
}
