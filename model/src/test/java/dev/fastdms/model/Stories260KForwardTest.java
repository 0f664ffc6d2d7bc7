package dev.fastdms.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.format.GGUF;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import dev.fastdms.model.format.RawTensor;
import dev.fastdms.model.format.SafetensorsWriter;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** stories260K (real pretrained weights) against the float64 golden, in all three file formats. */
class Stories260KForwardTest {
    static JsonNode ref;

    @BeforeAll
    static void load() throws Exception {
        ref = new ObjectMapper().readTree(TestAssets.asset("reference/stories260K_greedy_reference.json").toFile());
    }

    static float[] logits(ModelFile mf, int[] ids) {
        Transformer t = new Transformer(mf.config(), new Weights(mf), 4);
        float[] out = new float[ids.length * mf.config().vocabSize()];
        t.forward(t.newSequence(KvDtype.F32, null), ids, 0, ids.length, out, true);
        return out;
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }

    @Test
    void greedyTokensMatchGolden() {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"))) {
            Transformer t = new Transformer(mf.config(), new Weights(mf), 16);
            Sequence s = t.newSequence(KvDtype.F32, null);
            var r = new Generator(t).generate(s, new int[]{1}, 200, new Sampler(Sampler.Settings.greedy()), null, null);
            assertArrayEquals(ints(ref.get("greedy_token_ids")), r.ids());
        }
    }

    @Test
    void firstEightLogitsMatchGoldenInEveryFormat(@TempDir Path tmp) throws Exception {
        JsonNode l8 = ref.get("logits_first_8_positions");
        int[] ids = ints(l8.get("input_ids"));
        float[] gguf, bin, hf;
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"))) {
            gguf = logits(mf, ids);
            writeAsHuggingFace(mf, tmp);
        }
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K.bin"))) {
            assertEquals("llama2c", mf.format());
            bin = logits(mf, ids);
        }
        try (ModelFile mf = ModelLoader.open(tmp)) {
            assertEquals("hf", mf.format());
            assertTrue(mf.config().ropeHalf());
            hf = logits(mf, ids);
        }
        int V = 512;
        for (int p = 0; p < ids.length; p++) {
            for (int j = 0; j < V; j++) {
                double want = l8.get("logits").get(p).get(j).asDouble();
                assertEquals(want, gguf[p * V + j], 1e-4, "gguf logit " + j + " at " + p);
                assertEquals(gguf[p * V + j], bin[p * V + j], 1e-6, ".bin differs from .gguf at " + p);
                assertEquals(gguf[p * V + j], hf[p * V + j], 1e-4, "HF differs from .gguf at " + p);
            }
        }
    }

    /**
     * Writes the model as a Hugging Face checkpoint. GGUF and llama2.c rotate adjacent pairs (q/k rows interleaved);
     * HF rotates halves, so each head's q/k rows are un-permuted: HF row h*d + j comes from adjacent-pair row
     * h*d + 2j (j < d/2) or h*d + 2(j - d/2) + 1.
     */
    static void writeAsHuggingFace(ModelFile mf, Path dir) throws Exception {
        ModelConfig c = mf.config();
        SafetensorsWriter w = new SafetensorsWriter();
        for (RawTensor t : mf.tensors().values()) {
            byte[] data = t.data().toArray(ValueLayout.JAVA_BYTE);
            String n = t.name();
            if (n.endsWith("attn_q.weight")) data = unpermute(data, c.heads(), c.headDim(), c.dim());
            if (n.endsWith("attn_k.weight")) data = unpermute(data, c.kvHeads(), c.headDim(), c.dim());
            w.tensor(hfName(n), GgmlType.F32, t.shape(), data);
        }
        w.write(dir.resolve("model.safetensors"));
        Files.writeString(dir.resolve("config.json"), """
                {"model_type": "llama", "hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d,
                 "num_attention_heads": %d, "num_key_value_heads": %d, "vocab_size": %d, "max_position_embeddings": %d,
                 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true}
                """.formatted(c.dim(), c.ffnDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(), c.contextLength()));
    }

    static byte[] unpermute(byte[] rows, int heads, int d, int cols) {
        byte[] out = new byte[rows.length];
        int rowBytes = cols * 4;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < d; j++) {
                int src = h * d + (j < d / 2 ? 2 * j : 2 * (j - d / 2) + 1);
                System.arraycopy(rows, src * rowBytes, out, (h * d + j) * rowBytes, rowBytes);
            }
        }
        return out;
    }

    static String hfName(String gguf) {
        if (gguf.equals("token_embd.weight")) return "model.embed_tokens.weight";
        if (gguf.equals("output_norm.weight")) return "model.norm.weight";
        if (gguf.equals("output.weight")) return "lm_head.weight";
        String[] p = gguf.split("\\.", 3);
        String rest = switch (p[2]) {
            case "attn_norm.weight" -> "input_layernorm.weight";
            case "attn_q.weight" -> "self_attn.q_proj.weight";
            case "attn_k.weight" -> "self_attn.k_proj.weight";
            case "attn_v.weight" -> "self_attn.v_proj.weight";
            case "attn_output.weight" -> "self_attn.o_proj.weight";
            case "ffn_norm.weight" -> "post_attention_layernorm.weight";
            case "ffn_gate.weight" -> "mlp.gate_proj.weight";
            case "ffn_up.weight" -> "mlp.up_proj.weight";
            case "ffn_down.weight" -> "mlp.down_proj.weight";
            default -> throw new IllegalArgumentException(gguf);
        };
        return "model.layers." + p[1] + "." + rest;
    }

    @Test
    void llama2cTensorsEqualGgufTensorsByteForByte() {
        try (ModelFile bin = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K.bin"));
             ModelFile gguf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"))) {
            assertEquals(gguf.config(), bin.config().withContextLength(gguf.config().contextLength()));
            for (var e : gguf.tensors().entrySet()) {
                RawTensor b = bin.tensor(e.getKey());
                assertArrayEquals(e.getValue().shape(), b.shape(), e.getKey());
                assertEquals(-1L, e.getValue().data().mismatch(b.data()), e.getKey() + " bytes differ");
            }
        }
    }
}
