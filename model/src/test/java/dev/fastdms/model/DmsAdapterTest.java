package dev.fastdms.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import dev.fastdms.model.format.SafetensorsWriter;
import dev.fastdms.model.tensor.FloatTensor;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The DMS adapter variant (a separate per-layer projection dms_proj_alpha after an RMSNorm dms_proj_alpha_norm of
 * the layer input), added to tiny-qwen3-hf as a second safetensors shard.
 */
class DmsAdapterTest {
    @Test
    void decisionsComeFromTheAdapterProjection(@TempDir Path dir) throws Exception {
        Path src = TestAssets.asset("models/tiny-qwen3-hf");
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(src.resolve("model.safetensors"), dir.resolve("model-00001-of-00002.safetensors"));
        byte[] st = Files.readAllBytes(src.resolve("model.safetensors"));
        long hl = ByteBuffer.wrap(st).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        JsonNode header = new ObjectMapper().readTree(new String(st, 8, (int) hl, StandardCharsets.UTF_8));
        ObjectMapper om = new ObjectMapper();
        ObjectNode index = om.createObjectNode(), map = index.putObject("weight_map");
        header.fieldNames().forEachRemaining(n -> { if (!n.equals("__metadata__")) map.put(n, "model-00001-of-00002.safetensors"); });

        int layers = 3, kvHeads = 2, dim = 64;
        SplittableRandom r = new SplittableRandom(4);
        float[][] W = new float[layers][kvHeads * dim], B = new float[layers][kvHeads], N = new float[layers][dim];
        SafetensorsWriter w = new SafetensorsWriter();
        for (int l = 0; l < layers; l++) {
            for (int i = 0; i < W[l].length; i++) W[l][i] = (float) (r.nextGaussian() * 0.1);
            for (int i = 0; i < kvHeads; i++) B[l][i] = 0.05f + (float) (r.nextGaussian() * 0.01);
            for (int i = 0; i < dim; i++) N[l][i] = 1f + (float) (r.nextGaussian() * 0.1);
            String p = "model.layers." + l + ".self_attn.";
            w.tensor(p + "dms_proj_alpha.weight", GgmlType.F32, new long[]{kvHeads, dim}, f32(W[l]));
            w.tensor(p + "dms_proj_alpha.bias", GgmlType.F32, new long[]{kvHeads}, f32(B[l]));
            w.tensor(p + "dms_proj_alpha_norm.weight", GgmlType.F32, new long[]{dim}, f32(N[l]));
            for (String t : new String[]{"dms_proj_alpha.weight", "dms_proj_alpha.bias", "dms_proj_alpha_norm.weight"}) {
                map.put(p + t, "model-00002-of-00002.safetensors");
            }
        }
        w.write(dir.resolve("model-00002-of-00002.safetensors"));
        Files.writeString(dir.resolve("model.safetensors.index.json"), om.writeValueAsString(index));

        JsonNode golden = om.readTree(src.resolve("golden.json").toFile());
        int[] ids = new int[golden.get("input_ids").size()];
        for (int i = 0; i < ids.length; i++) ids[i] = golden.get("input_ids").get(i).asInt();
        try (ModelFile mf = ModelLoader.open(dir)) {
            Weights weights = new Weights(mf);
            assertNotNull(weights.dmsAlpha);
            Transformer t = new Transformer(mf.config(), weights, 16);
            Sequence s = t.newSequence(KvDtype.F32, mf.config().dms());
            boolean[][] flags = new boolean[kvHeads][ids.length];
            s.setObserver((layer, head, pos, evict) -> { if (layer == 0) flags[head][pos] = evict; });
            float[] logits = new float[ids.length * mf.config().vocabSize()];
            t.forward(s, ids, 0, ids.length, logits, true);
            // layer 0's input is the token embedding: the decision for position p comes from token p+1 (NVIDIA)
            FloatTensor emb = weights.tokenEmbedding;
            int evicted = 0;
            for (int p = 0; p + 1 < ids.length; p++) {
                double ss = 0;
                double[] x = new double[dim];
                for (int j = 0; j < dim; j++) { x[j] = emb.getFloat((long) ids[p + 1] * dim + j); ss += x[j] * x[j]; }
                double inv = 1 / Math.sqrt(ss / dim + mf.config().rmsEps());
                for (int g = 0; g < kvHeads; g++) {
                    double z = B[0][g];
                    for (int j = 0; j < dim; j++) z += W[0][g * dim + j] * (x[j] * inv * N[0][j]);
                    boolean want = 100 * z - 5 > 0;
                    assertEquals(want, flags[g][p], "layer 0 head " + g + " position " + p + " (z=" + z + ")");
                    if (want) evicted++;
                }
            }
            assertTrue(evicted > 10 && evicted < 2 * (ids.length - 1) - 10, "the adapter must make both decisions: " + evicted);
            for (float f : logits) assertTrue(Float.isFinite(f));
        }
    }

    static byte[] f32(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) b.putFloat(x);
        return b.array();
    }
}
