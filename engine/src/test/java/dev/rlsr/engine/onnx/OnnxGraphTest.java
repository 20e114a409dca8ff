package dev.rlsr.engine.onnx;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The protobuf reader on a ModelProto encoded by hand from the onnx.proto field numbers (raw_data, packed and
 * unpacked float_data, packed and unpacked dims, unknown fields to skip), and the MatMul weight naming/transpose.
 * The real all-MiniLM-L6-v2 graph is checked end to end in the trainer (against ONNX Runtime).
 */
class OnnxGraphTest {

    /** Minimal protobuf writer. */
    static final class Pb {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Pb varint(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Pb tag(int field, int wire) {
            return varint((long) field << 3 | wire);
        }

        Pb bytes(int field, byte[] b) {
            tag(field, 2).varint(b.length);
            out.writeBytes(b);
            return this;
        }

        Pb str(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Pb msg(int field, Pb m) {
            return bytes(field, m.out.toByteArray());
        }

        Pb int64(int field, long v) {
            return tag(field, 0).varint(v);
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }

    static byte[] floatsLe(float... f) {
        ByteBuffer b = ByteBuffer.allocate(4 * f.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : f) {
            b.putFloat(x);
        }
        return b.array();
    }

    static byte[] model() {
        // W' (in=3, out=2) as the exporter stores it for nn.Linear(3, 2): raw_data, packed dims
        Pb packedDims = new Pb().varint(3).varint(2);
        Pb w = new Pb().bytes(1, packedDims.toBytes()).int64(2, 1).str(8, "onnx::MatMul_7")
                .bytes(9, floatsLe(1, 2, 3, 4, 5, 6));
        // bias: unpacked dims, packed float_data, and an unknown field (doc_string, 12) to skip
        Pb bias = new Pb().int64(1, 2).int64(2, 1).str(8, "encoder.layer.0.attention.self.query.bias")
                .bytes(4, floatsLe(0.5f, -0.5f)).str(12, "doc");
        // a second weight with unpacked float_data (fixed32 each), named only by its MatMul node
        Pb w2 = new Pb().int64(1, 1).int64(1, 2).int64(2, 1).str(8, "onnx::MatMul_9");
        w2.tag(4, 5).out.writeBytes(floatsLe(7));
        w2.tag(4, 5).out.writeBytes(floatsLe(8));
        Pb ids = new Pb().int64(1, 2).int64(2, 7).str(8, "embeddings.position_ids").bytes(9, new byte[16]);
        Pb mm = new Pb().str(1, "x").str(1, "onnx::MatMul_7").str(2, "mm_out")
                .str(3, "/encoder/layer.0/attention/self/query/MatMul").str(4, "MatMul");
        Pb add = new Pb().str(1, "encoder.layer.0.attention.self.query.bias").str(1, "mm_out").str(2, "q")
                .str(3, "/encoder/layer.0/attention/self/query/Add").str(4, "Add");
        Pb mm2 = new Pb().str(1, "y").str(1, "onnx::MatMul_9").str(2, "z")
                .str(3, "/encoder/layer.0/output/dense/MatMul").str(4, "MatMul");
        Pb graph = new Pb().msg(1, mm).msg(1, add).msg(1, mm2).str(2, "g").msg(5, w).msg(5, bias).msg(5, w2)
                .msg(5, ids);
        return new Pb().int64(1, 8).str(2, "pytorch").msg(7, graph).toBytes();
    }

    @Test
    void readsInitializersAndNodes() {
        OnnxGraph g = OnnxGraph.read(model());
        assertEquals(4, g.initializers().size());
        OnnxGraph.Initializer w = g.initializers().get("onnx::MatMul_7");
        assertArrayEquals(new long[]{3, 2}, w.dims());
        assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, w.floats());
        assertArrayEquals(new float[]{0.5f, -0.5f},
                g.initializers().get("encoder.layer.0.attention.self.query.bias").floats());
        assertArrayEquals(new float[]{7, 8}, g.initializers().get("onnx::MatMul_9").floats());
        assertNull(g.initializers().get("embeddings.position_ids").floats(), "int64 initializers carry no floats");
        assertEquals(List.of("MatMul", "Add", "MatMul"), g.nodes().stream().map(OnnxGraph.Node::opType).toList());
        assertEquals(List.of("x", "onnx::MatMul_7"), g.nodes().getFirst().inputs());
    }

    @Test
    void namesAndTransposesMatMulWeights() {
        Map<String, float[]> hf = OnnxBertWeights.hfWeights(OnnxGraph.read(model()));
        // named through the bias its Add consumes; (in,out) = [[1,2],[3,4],[5,6]] becomes (out,in)
        assertArrayEquals(new float[]{1, 3, 5, 2, 4, 6}, hf.get("encoder.layer.0.attention.self.query.weight"));
        // named from the MatMul node path (no bias Add follows)
        assertArrayEquals(new float[]{7, 8}, hf.get("encoder.layer.0.output.dense.weight"));
        assertArrayEquals(new float[]{0.5f, -0.5f}, hf.get("encoder.layer.0.attention.self.query.bias"));
    }

    @Test
    void rejectsGarbage() {
        assertThrows(IllegalArgumentException.class, () -> OnnxGraph.read(new byte[]{0x0A, 0x7F, 1}));
        assertThrows(IllegalArgumentException.class, () -> OnnxGraph.read(new Pb().int64(1, 8).toBytes()));
    }
}
