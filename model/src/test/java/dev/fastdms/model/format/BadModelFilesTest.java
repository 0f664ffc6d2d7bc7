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

    @Test
    void missingTensorsAndShapesThatDisagreeWithTheConfig() throws Exception {
        Path noV = tmp.resolve("nov.gguf");
        TinyGguf.writer(TinyGguf.llama(), (n, s) -> n.equals("blk.1.attn_v.weight") ? null : s).write(noV);
        assertTrue(fails(noV).contains("missing tensor blk.1.attn_v.weight"));

        Path noNorm = tmp.resolve("nonorm.gguf");
        TinyGguf.writer(TinyGguf.qwen3(), (n, s) -> n.endsWith("attn_q_norm.weight") ? null : s).write(noNorm);
        assertTrue(fails(noNorm).contains("missing tensor blk.0.attn_q_norm.weight"));

        Path wrongK = tmp.resolve("k.gguf");
        TinyGguf.writer(TinyGguf.llama(), (n, s) -> n.equals("blk.0.attn_k.weight") ? new long[]{32, 32} : s).write(wrongK);
        String m = fails(wrongK);
        assertTrue(m.contains("blk.0.attn_k.weight") && m.contains("[32, 32]") && m.contains("[16, 32]"), m);

        Path badRope = tmp.resolve("rope.gguf");
        TinyGguf.writer(TinyGguf.llama()).tensor("rope_freqs.weight", GgmlType.F32, new long[]{3}, new byte[12]).write(badRope);
        assertTrue(fails(badRope).contains("rope_freqs.weight"));

        Path noEmb = tmp.resolve("noemb.gguf");
        TinyGguf.writer(TinyGguf.llama(), (n, s) -> n.equals("token_embd.weight") ? null : s).write(noEmb);
        assertTrue(fails(noEmb).contains("missing tensor token_embd.weight"));

        Path missingKey = tmp.resolve("nokey.gguf");
        byte[] b = Files.readAllBytes(tmp.resolve("k.gguf"));
        int at = indexOf(b, "llama.block_count".getBytes());
        b[at + 6] = 'X'; // the key becomes llama.Xlock_count
        Files.write(missingKey, b);
        assertTrue(fails(missingKey).contains("missing metadata llama.block_count"));
    }

    @Test
    void corruptGgufStructure() throws Exception {
        byte[] good = ggufBytes(TinyGguf.writer(TinyGguf.llama()));
        // tensor offset that is not a multiple of the alignment
        byte[] b = good.clone();
        int at = indexOf(b, "blk.0.attn_norm.weight".getBytes()) + "blk.0.attn_norm.weight".length() + 4 + 8 + 4;
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, 3);
        assertTrue(fails(write("misaligned.gguf", b)).contains("not a multiple of the alignment"));
        // offset far beyond the file (overflow-prone)
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, Long.MAX_VALUE - 31);
        assertTrue(fails(write("far.gguf", b)).contains("outside the file"));
        // a dimension that would overflow the element count
        b = good.clone();
        at = indexOf(b, "token_embd.weight".getBytes()) + "token_embd.weight".length() + 4;
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, 1L << 39).putLong(at + 8, 1L << 39);
        assertTrue(fails(write("huge.gguf", b)).contains("absurd shape"));
        // dimension count out of range
        b = good.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at - 4, 9);
        assertTrue(fails(write("dims.gguf", b)).contains("9 dimensions"));
        // two tensors with one name
        Path dup = tmp.resolve("dup.gguf");
        b = good.clone();
        byte[] n0 = "blk.0.ffn_up.weight".getBytes(), n1 = "blk.1.ffn_up.weight".getBytes();
        System.arraycopy(n0, 0, b, indexOf(b, n1), n1.length);
        Files.write(dup, b);
        assertTrue(fails(dup).contains("appears twice"));
        // an unknown metadata value type
        b = good.clone();
        at = indexOf(b, "general.architecture".getBytes()) + "general.architecture".length();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at, 99);
        assertTrue(fails(write("vt.gguf", b)).contains("unknown value type 99"));
        // an array claiming more elements than the file holds, and one claiming billions (no allocation happens)
        for (long n : new long[]{100_000, 3_000_000_000L, -1}) {
            byte[] a = ggufBytes(new GGUFWriter().put("general.architecture", "llama").put("tokens", new String[]{"a", "b"}));
            int p = indexOf(a, "tokens".getBytes()) + 6 + 4 + 4;
            ByteBuffer.wrap(a).order(ByteOrder.LITTLE_ENDIAN).putLong(p, n);
            assertTrue(fails(write("arr" + n + ".gguf", a)).contains("absurd array length"), "length " + n);
        }
    }

    /** Arrays nested thousands deep would overflow the stack of a naive reader. */
    @Test
    void deeplyNestedArrays() throws Exception {
        ByteBuffer b = ByteBuffer.allocate(64 + 12 * 5000).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(GGUF.MAGIC).putInt(3).putLong(0).putLong(1).putLong(1).put((byte) 'k').putInt(9);
        for (int i = 0; i < 4999; i++) b.putInt(9).putLong(1);
        assertTrue(fails(write("deep.gguf", b.array())).contains("nests arrays"));
    }

    /** Random corruption of a small valid model: ModelFormatException or a successful load, nothing else, no hang. */
    @Test
    void randomCorruptionNeverEscapesAsAnotherException() throws Exception {
        byte[] good = ggufBytes(TinyGguf.writer(TinyGguf.qwen3()).put("tokenizer.ggml.tokens", new String[]{"a", "bb", "ccc"}));
        java.util.SplittableRandom r = new java.util.SplittableRandom(11);
        int headerEnd = indexOf(good, "output.weight".getBytes()) + 64; // corrupt the header region, where parsing happens
        Path p = tmp.resolve("fuzz.gguf");
        for (int i = 0; i < 400; i++) {
            byte[] b = good.clone();
            int flips = 1 + r.nextInt(4);
            for (int f = 0; f < flips; f++) b[r.nextInt(headerEnd)] = (byte) r.nextInt(256);
            if (r.nextInt(4) == 0) b = Arrays.copyOf(b, r.nextInt(b.length));
            Files.write(p, b);
            try {
                ModelLoader.open(p).close();
            } catch (ModelFormatException e) {
                assertFalse(e.getMessage().contains("\n"));
            }
        }
    }

    @Test
    void moreBrokenHuggingFaceDirectories() throws Exception {
        Path src = TestAssets.asset("models/tiny-llama-hf");
        Path d = Files.createDirectory(tmp.resolve("hf2"));
        Files.copy(src.resolve("model.safetensors"), d.resolve("model.safetensors"));
        String cfg = Files.readString(src.resolve("config.json"));
        Files.writeString(d.resolve("config.json"), cfg.replace("\"hidden_size\": 64", "\"hidden_size\": \"wide\""));
        assertTrue(fails(d).contains("missing or bad hidden_size"));
        Files.writeString(d.resolve("config.json"), cfg.replace("\"vocab_size\": 512", "\"vocab_size\": 1000"));
        assertTrue(fails(d).contains("token_embd.weight has shape [512, 64] but the config implies [1000, 64]"));
        Files.writeString(d.resolve("config.json"), cfg.replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"));
        assertTrue(fails(d).contains("lm_head.weight is missing"));
        Files.writeString(d.resolve("config.json"), cfg.replace("\"llama3\"", "\"yarn\""));
        assertTrue(fails(d).contains("unsupported rope_scaling type 'yarn'"));
        Files.writeString(d.resolve("config.json"), "{\"architectures\": [\"MistralForCausalLM\"]}");
        assertTrue(fails(d).contains("unsupported model_type 'MistralForCausalLM'"));
        Files.writeString(d.resolve("config.json"), "[1, 2]");
        assertTrue(fails(d).contains("not a JSON object"));
        Files.writeString(d.resolve("config.json"), cfg.replace("\"model_type\": \"llama\",", ""));
        try (ModelFile mf = ModelLoader.open(d)) {
            assertEquals("llama", mf.config().architecture(), "architectures names the model when model_type is absent");
        }

        Files.writeString(d.resolve("config.json"), cfg);
        byte[] st = Files.readAllBytes(src.resolve("model.safetensors"));
        byte[] junk = st.clone();
        junk[8] = '['; // header no longer a JSON object
        Files.write(d.resolve("model.safetensors"), junk);
        assertTrue(fails(d).contains("corrupt safetensors header"));
        byte[] f8 = st.clone();
        System.arraycopy("\"F8_E4M3\"".getBytes(), 0, f8, indexOf(f8, "\"BF16\", \"shape\"".getBytes()) , 9);
        Files.write(d.resolve("model.safetensors"), f8);
        String m = fails(d);
        assertTrue(m.contains("dtype F8_E4M3") || m.contains("corrupt safetensors header"), m);
        Files.write(d.resolve("model.safetensors"), Arrays.copyOf(st, 5));
        assertTrue(fails(d).contains("too short for safetensors"));

        Files.write(d.resolve("model.safetensors"), st);
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"model.norm.weight\": \"model-2.safetensors\"}}");
        assertTrue(fails(d).contains("shard model-2.safetensors is missing"));
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"model.norm.weight\": \"../model.safetensors\"}}");
        assertTrue(fails(d).contains("bad shard name"));
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"model.extra.weight\": \"model.safetensors\"}}");
        assertTrue(fails(d).contains("model.extra.weight is listed in model.safetensors.index.json but not in model.safetensors"));
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": {}}");
        assertTrue(fails(d).contains("empty weight_map"));
    }

    @Test
    void brokenLlama2cHeadersAndOtherFiles() throws Exception {
        ByteBuffer h = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(0x616b3432).putInt(2);
        assertTrue(fails(write("v2.bin", h.array())).contains("llama2.c export version 2 is not supported"));
        ByteBuffer absurd = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        absurd.putInt(1 << 30).putInt(64).putInt(2).putInt(4).putInt(4).putInt(32).putInt(16);
        assertTrue(fails(write("absurd.bin", absurd.array())).contains("is not plausible"));
        assertTrue(fails(write("config.json", "{}".getBytes())).contains("pass the model directory"));
        assertTrue(fails(write("model.safetensors", new byte[64])).contains("pass the model directory"));
    }

    /** Values that used to load without a word and then misbehave: each is refused by name. */
    @Test
    void implausibleMetadataValues() throws Exception {
        Path rope = tmp.resolve("rope0.gguf");
        TinyGguf.writer(TinyGguf.llama()).put("llama.rope.scaling.type", "llama3").put("llama.rope.scaling.factor", 0f).write(rope);
        assertTrue(fails(rope).contains("RoPE scaling"), fails(rope));

        byte[] two = ggufBytes(TinyGguf.writer(TinyGguf.llama()).put("general.name1", "a").put("general.name2", "b"));
        two[indexOf(two, "general.name2".getBytes()) + 12] = '1';
        assertTrue(fails(write("dupkey.gguf", two)).contains("metadata key general.name1 appears twice"));

        byte[] full = Files.readAllBytes(TestAssets.asset("models/stories260K/stories260K-f32.gguf"));
        for (String key : new String[]{"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
            byte[] b = full.clone();
            int at = indexOf(b, key.getBytes()) + key.length();
            assertEquals(4, ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt(at), key + " is a u32");
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at + 4, 512); // the vocabulary is 0..511
            Path p = write("tok.gguf", b);
            try (ModelFile mf = ModelLoader.open(p)) {
                ModelFormatException e = assertThrows(ModelFormatException.class, () -> dev.fastdms.model.tokenizer.Tokenizers.forModel(mf));
                assertTrue(e.getMessage().contains(key + " 512 is outside the vocabulary of 512 tokens"), e.getMessage());
            }
        }
    }

    static byte[] ggufBytes(GGUFWriter w) throws Exception {
        Path p = Files.createTempFile("w", ".gguf");
        try {
            w.write(p);
            return Files.readAllBytes(p);
        } finally {
            Files.delete(p);
        }
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
