package dev.rlsr.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rlsr.engine.cpu.CpuBackend;
import dev.rlsr.engine.io.CheckpointFixtures;
import dev.rlsr.engine.io.CheckpointFixtures.Naive;

import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A checkpoint whose config.json says bfloat16 or float16 is saved in that dtype, and its config.json keeps saying
 * so (issue [H], defect 12: such models were written as F32 under a bf16 config). The values must be the loaded
 * fp32 weights rounded to nearest even in the target format, decoded here by the naive safetensors reader and the
 * JDK's own float16 conversion, not by the engine's writer.
 */
class SaveDtypeTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"bfloat16", "float16"})
    void aModelIsSavedInItsCheckpointsDtype(String dtype) throws Exception {
        // the bundled qwen2 case (fp32 weights), its config saying the checkpoint's dtype is another
        Path fixture = CheckpointFixtures.bundled("qwen2_tiny"), src = tmp.resolve("src"), out = tmp.resolve("out");
        Files.createDirectories(src);
        Files.copy(fixture.resolve("model.safetensors"), src.resolve("model.safetensors"));
        String config = Files.readString(fixture.resolve("config.json"));
        String changed = config.replaceFirst("\"dtype\"\\s*:\\s*\"float32\"", "\"dtype\": \"" + dtype + "\"");
        assertEquals(false, changed.equals(config), "the fixture's config.json names its dtype");
        Files.writeString(src.resolve("config.json"), changed);

        try (DecoderModel m = DecoderModel.load(src, new CpuBackend())) {
            m.save(out);
        }

        JsonNode saved = CheckpointFixtures.json(out.resolve("config.json"));
        assertEquals(dtype, saved.path("dtype").asText(saved.path("torch_dtype").asText()),
                "config.json of the saved model");
        Map<String, Naive> in = CheckpointFixtures.naiveRead(src.resolve("model.safetensors"));
        Map<String, Naive> got = CheckpointFixtures.naiveRead(out.resolve("model.safetensors"));
        assertEquals(in.keySet(), got.keySet(), "tensor names");
        String want = dtype.equals("bfloat16") ? "BF16" : "F16";
        for (Map.Entry<String, Naive> e : in.entrySet()) {
            Naive g = got.get(e.getKey());
            assertEquals(want, g.dtype(), e.getKey());
            float[] x = e.getValue().f32();
            short[] bits = new short[x.length];
            ShortBuffer sb = g.data().duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
            assertEquals(x.length, sb.remaining(), e.getKey() + ": element count");
            sb.get(bits);
            for (int i = 0; i < x.length; i++) {
                short expected = want.equals("BF16") ? bf16NearestEven(x[i]) : Float.floatToFloat16(x[i]);
                if (bits[i] != expected) {
                    throw new AssertionError(e.getKey() + "[" + i + "]: " + x[i] + " saved as 0x"
                            + Integer.toHexString(bits[i] & 0xffff) + ", expected 0x"
                            + Integer.toHexString(expected & 0xffff));
                }
            }
        }
    }

    /** Round to nearest even from the fp32 bits (finite inputs: the fixture's weights). */
    private static short bf16NearestEven(float v) {
        int b = Float.floatToRawIntBits(v);
        int lsb = (b >>> 16) & 1;
        return (short) ((b + 0x7fff + lsb) >>> 16);
    }
}
