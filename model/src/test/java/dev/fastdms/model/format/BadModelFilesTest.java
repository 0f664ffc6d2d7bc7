package dev.fastdms.model.format;

import dev.fastdms.model.TestAssets;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/** Broken model files fail with one clear ModelFormatException line, never another exception, an OOM or a hang. */
class BadModelFilesTest {
    @TempDir Path tmp;

    String fails(Path p) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.open(p).close());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e.getMessage();
    }

    Path write(String name, byte[] b) throws Exception {
        Path p = tmp.resolve(name);
        Files.write(p, b);
        return p;
    }

    @Test
    void missingAndEmptyAndGarbage() throws Exception {
        assertTrue(fails(tmp.resolve("nope.gguf")).contains("no such file"));
        assertTrue(fails(write("empty.bin", new byte[0])).contains("too short"));
        byte[] junk = new byte[4096];
        new java.util.Random(1).nextBytes(junk);
        assertTrue(fails(write("junk.bin", junk)).contains("not a model file"));
    }

    @Test
    void truncatedGgufAtEveryStage() throws Exception {
        byte[] full = Files.readAllBytes(TestAssets.asset("models/stories260K/stories260K-f32.gguf"));
        for (int len : new int[]{4, 10, 23, 100, 5000, 40_000, full.length / 2, full.length - 1}) {
            String m = fails(write("t" + len + ".gguf", Arrays.copyOf(full, len)));
            assertTrue(m.contains("truncated") || m.contains("too short") || m.contains("outside the file"), len + ": " + m);
        }
    }

    @Test
    void wrongMagicVersionAndAbsurdCounts() throws Exception {
        byte[] full = Files.readAllBytes(TestAssets.asset("models/stories260K/stories260K-f32.gguf"));
        byte[] v = full.clone();
        ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 99);
        assertTrue(fails(write("v99.gguf", v)).contains("unsupported GGUF version 99"));
        byte[] c = full.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(8, Long.MAX_VALUE / 2);
        assertTrue(fails(write("count.gguf", c)).contains("absurd tensor count"));
        byte[] k = full.clone();
        ByteBuffer.wrap(k).order(ByteOrder.LITTLE_ENDIAN).putLong(24, 1L << 40); // first key's length
        assertTrue(fails(write("keylen.gguf", k)).contains("absurd string length"));
    }

    @Test
    void unknownTensorTypeAndArchitectureAndAbsurdDims() throws Exception {
        Path unsupported = tmp.resolve("q5.gguf");
        new GGUFWriter().put("general.architecture", "llama").put("llama.embedding_length", 32).put("llama.block_count", 1)
                .put("llama.attention.head_count", 4).put("llama.feed_forward_length", 64)
                .tensor("token_embd.weight", GgmlType.Q5_0, new long[]{8, 32}, o -> o.write(new byte[8 * 22]))
                .write(unsupported);
        String m = fails(unsupported);
        assertTrue(m.contains("token_embd.weight") && m.contains("Q5_0"), m);

        Path gemma = tmp.resolve("gemma.gguf");
        new GGUFWriter().put("general.architecture", "gemma").write(gemma);
        assertTrue(fails(gemma).contains("unsupported architecture 'gemma'"));

        Path absurd = tmp.resolve("absurd.gguf");
        new GGUFWriter().put("general.architecture", "llama").put("llama.embedding_length", 1 << 30).put("llama.block_count", 1)
                .put("llama.attention.head_count", 4).put("llama.feed_forward_length", 64)
                .tensor("token_embd.weight", GgmlType.F32, new long[]{2, 2}, o -> o.write(new byte[16])).write(absurd);
        assertTrue(fails(absurd).contains("absurd dimensions"));

        // a GGUF tensor type id nothing knows
        byte[] b = Files.readAllBytes(unsupported);
        int at = indexOf(b, "token_embd.weight".getBytes()) + "token_embd.weight".length() + 4 + 16;
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at, 77);
        assertTrue(fails(write("type77.gguf", b)).contains("unknown type id 77"));
    }

    @Test
    void brokenHuggingFaceDirectories() throws Exception {
        Path d = Files.createDirectory(tmp.resolve("hf"));
        assertTrue(fails(d).contains("needs config.json"));
        Files.writeString(d.resolve("config.json"), "{not json");
        assertTrue(fails(d).contains("not valid JSON"));
        Files.writeString(d.resolve("config.json"), "{\"model_type\": \"mistral\"}");
        assertTrue(fails(d).contains("unsupported model_type 'mistral'"));
        Files.copy(TestAssets.asset("models/tiny-llama-hf/config.json"), d.resolve("config.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertTrue(fails(d).contains("no model.safetensors"));
        byte[] st = Files.readAllBytes(TestAssets.asset("models/tiny-llama-hf/model.safetensors"));
        Files.write(d.resolve("model.safetensors"), Arrays.copyOf(st, st.length - 100));
        assertTrue(fails(d).contains("bad data offsets"));
        byte[] hdr = st.clone();
        ByteBuffer.wrap(hdr).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 50);
        Files.write(d.resolve("model.safetensors"), hdr);
        assertTrue(fails(d).contains("corrupt safetensors header"));
        byte[] i8 = st.clone();
        int p = indexOf(i8, "\"BF16\"".getBytes());
        System.arraycopy("\"I8\"  ".getBytes(), 0, i8, p, 6);
        Files.write(d.resolve("model.safetensors"), i8);
        assertTrue(fails(d).contains("dtype I8"));
    }

    @Test
    void truncatedLlama2c() throws Exception {
        byte[] full = Files.readAllBytes(TestAssets.asset("models/stories260K/stories260K.bin"));
        String m = fails(write("cut.bin", Arrays.copyOf(full, full.length / 3)));
        assertTrue(m.contains("truncated llama2.c checkpoint"), m);
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found");
    }
}
