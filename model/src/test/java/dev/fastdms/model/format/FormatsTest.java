package dev.fastdms.model.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.TestAssets;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Every supported format loads the test assets with the right config and canonical, memory-mapped tensors. */
class FormatsTest {
    @TempDir Path tmp;

    static final Path BIN = TestAssets.asset("models/stories260K/stories260K.bin");
    static final Path GGUF_F32 = TestAssets.asset("models/stories260K/stories260K-f32.gguf");

    @Test
    void stories260KGguf() {
        try (ModelFile mf = ModelLoader.open(GGUF_F32)) {
            assertEquals("gguf", mf.format());
            ModelConfig c = mf.config();
            assertEquals(new ModelConfig("llama", 64, 5, 8, 4, 8, 172, 512, c.contextLength(), 1e-5f, 10000f, null, false, true, false, null), c);
            assertNull(mf.optionalTensor("output.weight"));
            assertTrue(mf.tensor("blk.4.ffn_down.weight").data().isMapped(), "weights stay in the memory map");
            assertEquals("llama", mf.metadata().get("general.architecture"));
        }
    }

    @Test
    void llama2cTensorsEqualGgufByteForByteAndTokenizerIsFound() {
        try (ModelFile bin = ModelLoader.open(BIN); ModelFile gguf = ModelLoader.open(GGUF_F32)) {
            assertEquals("llama2c", bin.format());
            assertEquals(BIN.resolveSibling("tok512.bin"), bin.tokenizerFile());
            assertEquals(512, bin.config().contextLength());
            assertEquals(gguf.config(), bin.config().withContextLength(gguf.config().contextLength()));
            assertEquals(gguf.tensors().keySet(), bin.tensors().keySet());
            for (RawTensor g : gguf.tensors().values()) {
                RawTensor b = bin.tensor(g.name());
                assertEquals(GgmlType.F32, b.type());
                assertArrayEquals(g.shape(), b.shape(), g.name());
                assertEquals(-1L, g.data().mismatch(b.data()), g.name() + " bytes differ");
            }
        }
    }

    /** The same weights in llama2.c export version 1 (header "ak42", norms first, no RoPE tables). */
    @Test
    void llama2cVersion1() throws Exception {
        Path v1 = tmp.resolve("model.bin");
        try (ModelFile legacy = ModelLoader.open(BIN)) {
            ModelConfig c = legacy.config();
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            ByteBuffer h = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
            h.putInt(Llama2c.MAGIC_V1).putInt(1).putInt(c.dim()).putInt(c.ffnDim()).putInt(c.layers()).putInt(c.heads())
                    .putInt(c.kvHeads()).putInt(c.vocabSize()).putInt(c.contextLength()).put((byte) 1);
            o.write(h.array());
            for (String s : new String[]{"attn_norm", "ffn_norm"}) for (int l = 0; l < c.layers(); l++) put(o, legacy, "blk." + l + "." + s + ".weight");
            put(o, legacy, "output_norm.weight");
            put(o, legacy, "token_embd.weight");
            for (String s : new String[]{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"}) {
                for (int l = 0; l < c.layers(); l++) put(o, legacy, "blk." + l + "." + s + ".weight");
            }
            Files.write(v1, o.toByteArray());
            try (ModelFile mf = ModelLoader.open(v1)) {
                assertEquals(c, mf.config());
                assertNull(mf.tokenizerFile(), "no tok*.bin beside it");
                for (RawTensor t : legacy.tensors().values()) assertEquals(-1L, t.data().mismatch(mf.tensor(t.name()).data()), t.name());
            }
        }
    }

    /** A negative vocab size in the legacy header means an unshared classifier after the RoPE tables. */
    @Test
    void llama2cUnsharedClassifierAndTokenizerNamedTok() throws Exception {
        byte[] b = Files.readAllBytes(BIN);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(20, -512);
        byte[] head = new byte[512 * 64 * 4];
        for (int i = 0; i < head.length; i += 4) ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).putFloat(i, i / 4 * 1e-4f);
        Path dir = Files.createDirectory(tmp.resolve("m"));
        Path p = dir.resolve("untied.bin");
        Files.write(p, concat(b, head));
        Files.copy(BIN.resolveSibling("tok512.bin"), dir.resolve("tok512.bin"));
        try (ModelFile mf = ModelLoader.open(p)) {
            assertFalse(mf.config().tiedEmbeddings());
            assertArrayEquals(head, mf.tensor("output.weight").data().toArray(ValueLayout.JAVA_BYTE));
            assertEquals(dir.resolve("tok512.bin"), mf.tokenizerFile());
        }
        Files.copy(BIN.resolveSibling("tok512.bin"), dir.resolve("tokenizer.bin"));
        try (ModelFile mf = ModelLoader.open(p)) {
            assertEquals(dir.resolve("tokenizer.bin"), mf.tokenizerFile(), "tokenizer.bin is preferred");
        }
    }

    @Test
    void tinyLlamaHf() {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/tiny-llama-hf"))) {
            assertEquals("hf", mf.format());
            assertEquals(new ModelConfig("llama", 64, 3, 4, 2, 16, 172, 512, 131072, 1e-5f, 500000f,
                    new ModelConfig.RopeScaling(32f, 1f, 4f, 8192), true, true, false, null), mf.config());
            assertNull(mf.tokenizerFile());
            assertNull(mf.optionalTensor("output.weight"), "tied");
            assertEquals(1 + 3 * 9 + 1, mf.tensors().size());
            RawTensor q = mf.tensor("blk.2.attn_q.weight");
            assertEquals(GgmlType.BF16, q.type());
            assertArrayEquals(new long[]{64, 64}, q.shape());
            assertArrayEquals(new long[]{32, 64}, mf.tensor("blk.0.attn_k.weight").shape());
            assertArrayEquals(new long[]{64, 172}, mf.tensor("blk.1.ffn_down.weight").shape());
            assertTrue(q.data().isMapped());
        }
    }

    @Test
    void tinyQwen3Hf() {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/tiny-qwen3-hf"))) {
            ModelConfig c = mf.config();
            assertEquals(new ModelConfig("qwen3", 64, 3, 4, 2, 32, 128, 512, 40960, 1e-6f, 1000000f, null, true, false, true,
                    new DmsConfig(16, 100f, 5f, DmsConfig.Convention.NVIDIA)), c);
            assertNotEquals(c.dim() / c.heads(), c.headDim());
            assertArrayEquals(new long[]{128, 64}, mf.tensor("blk.0.attn_q.weight").shape());
            assertArrayEquals(new long[]{64, 128}, mf.tensor("blk.0.attn_output.weight").shape());
            assertArrayEquals(new long[]{32}, mf.tensor("blk.2.attn_k_norm.weight").shape());
            assertArrayEquals(new long[]{512, 64}, mf.tensor("output.weight").shape());
        }
    }

    /** The same checkpoint split over two shards with an index loads the same tensors; tokenizer.json is reported. */
    @Test
    void shardedHfWithIndexAndTokenizer() throws Exception {
        Path src = TestAssets.asset("models/tiny-qwen3-hf");
        Path dir = Files.createDirectory(tmp.resolve("sharded"));
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        Files.writeString(dir.resolve("tokenizer.json"), "{}");
        ObjectMapper om = new ObjectMapper();
        ObjectNode index = om.createObjectNode();
        ObjectNode map = index.putObject("weight_map");
        try (Arena arena = Arena.ofConfined()) {
            Map<String, RawTensor> all = Safetensors.read(src.resolve("model.safetensors"), arena);
            SafetensorsWriter a = new SafetensorsWriter().metadata("format", "pt"), b = new SafetensorsWriter();
            int i = 0;
            for (RawTensor t : all.values()) {
                String shard = i++ % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
                (i % 2 == 1 ? a : b).tensor(t.name(), t.type(), t.shape(), t.data());
                map.put(t.name(), shard);
            }
            a.write(dir.resolve("model-00001-of-00002.safetensors"));
            b.write(dir.resolve("model-00002-of-00002.safetensors"));
        }
        Files.writeString(dir.resolve("model.safetensors.index.json"), om.writeValueAsString(index));
        try (ModelFile whole = ModelLoader.open(src); ModelFile split = ModelLoader.open(dir)) {
            assertEquals(whole.config(), split.config());
            assertEquals(dir.resolve("tokenizer.json"), split.tokenizerFile());
            assertEquals(whole.tensors().keySet(), split.tensors().keySet());
            for (RawTensor t : whole.tensors().values()) {
                RawTensor s = split.tensor(t.name());
                assertArrayEquals(t.shape(), s.shape());
                assertEquals(-1L, t.data().mismatch(s.data()), t.name());
            }
        }
    }

    @Test
    void safetensorsRoundTrip() throws Exception {
        Path p = tmp.resolve("x.safetensors");
        byte[] f32 = TinyGguf.f32(new long[]{3, 5}, 1), f16 = new byte[2 * 7], bf16 = new byte[2 * 4];
        new java.util.Random(2).nextBytes(f16);
        new java.util.Random(3).nextBytes(bf16);
        new SafetensorsWriter().metadata("format", "pt")
                .tensor("a", GgmlType.F32, new long[]{3, 5}, f32)
                .tensor("b", GgmlType.F16, new long[]{7}, f16)
                .tensor("c.d", GgmlType.BF16, new long[]{2, 1, 2}, o -> o.write(bf16))
                .write(p);
        assertEquals(0, ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN).getLong(0) % 8, "data is 8-byte aligned");
        try (Arena arena = Arena.ofConfined()) {
            Map<String, RawTensor> t = Safetensors.read(p, arena);
            assertEquals(java.util.List.of("a", "b", "c.d"), java.util.List.copyOf(t.keySet()));
            assertArrayEquals(f32, t.get("a").data().toArray(ValueLayout.JAVA_BYTE));
            assertEquals(GgmlType.F16, t.get("b").type());
            assertArrayEquals(f16, t.get("b").data().toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(new long[]{2, 1, 2}, t.get("c.d").shape());
            assertArrayEquals(bf16, t.get("c.d").data().toArray(ValueLayout.JAVA_BYTE));
        }
        assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter().tensor("q", GgmlType.Q8_0, new long[]{32}, new byte[34]));
        assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter().tensor("a", GgmlType.F32, new long[]{2}, new byte[4]));
    }

    /** GGUF rope.scaling keys: llama3 is read (beside a rope_freqs tensor too), linear scaling is refused. */
    @Test
    void ggufRopeScalingKeys() throws Exception {
        Path p = tmp.resolve("l3.gguf");
        TinyGguf.writer(TinyGguf.llama()).put("llama.rope.scaling.type", "llama3").put("llama.rope.scaling.factor", 8f)
                .put("llama.rope.scaling.original_context_length", 4096)
                .tensor("rope_freqs.weight", GgmlType.F32, new long[]{4}, TinyGguf.f32(new long[]{4}, 9)).write(p);
        try (ModelFile mf = ModelLoader.open(p)) {
            assertEquals(new ModelConfig.RopeScaling(8f, 1f, 4f, 4096), mf.config().ropeScaling());
            assertNotNull(mf.optionalTensor("rope_freqs.weight"));
        }
        Path lin = tmp.resolve("linear.gguf");
        TinyGguf.writer(TinyGguf.llama()).put("llama.rope.scaling.type", "linear").put("llama.rope.scaling.factor", 4f).write(lin);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.open(lin));
        assertTrue(e.getMessage().contains("unsupported RoPE scaling 'linear'"), e.getMessage());
    }

    @Test
    void qwen3GgufRotatesHalvesAndHasQkNorm() throws Exception {
        Path p = tmp.resolve("q.gguf");
        TinyGguf.writer(TinyGguf.qwen3()).write(p);
        try (ModelFile mf = ModelLoader.open(p)) {
            assertEquals(TinyGguf.qwen3(), mf.config());
        }
    }

    private static void put(ByteArrayOutputStream o, ModelFile mf, String name) {
        o.writeBytes(mf.tensor(name).data().toArray(ValueLayout.JAVA_BYTE));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
