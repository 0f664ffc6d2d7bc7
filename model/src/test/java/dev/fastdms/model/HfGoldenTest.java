package dev.fastdms.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.*;

/** Tiny random HF checkpoints (BF16 safetensors) against their float64 goldens: argmax everywhere, logits, ppl. */
class HfGoldenTest {
    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama-hf", "tiny-qwen3-hf"})
    void reproducesGolden(String name) throws Exception {
        JsonNode g = new ObjectMapper().readTree(TestAssets.asset("models/" + name + "/golden.json").toFile());
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/" + name))) {
            ModelConfig c = mf.config();
            Transformer t = new Transformer(c, new Weights(mf), 32);
            int[] ids = ints(g.get("input_ids"));
            check(g, t, t.newSequence(KvDtype.F32, null), ids);
            if (g.has("dms_from_config")) {
                assertNotNull(c.dms(), "config.json carries dms_* keys");
                assertEquals(16, c.dms().window());
                check(g.get("dms_from_config"), t, t.newSequence(KvDtype.F32, c.dms()), ids);
            }
        }
    }

    static void check(JsonNode g, Transformer t, Sequence s, int[] ids) {
        int V = t.config().vocabSize(), T = ids.length;
        float[] logits = new float[T * V];
        t.forward(s, ids, 0, T, logits, true);
        int[] want = ints(g.get("argmax"));
        for (int i = 0; i < T; i++) assertEquals(want[i], Sampler.argmax(logits, i * V, V), "argmax at " + i);
        g.get("logits_at_positions").fields().forEachRemaining(e -> {
            int p = Integer.parseInt(e.getKey());
            for (int j = 0; j < V; j++) assertEquals(e.getValue().get(j).asDouble(), logits[p * V + j], 1e-3, "logit " + j + " at " + p);
        });
        double nll = 0;
        for (int i = 0; i + 1 < T; i++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < V; j++) max = Math.max(max, logits[i * V + j]);
            for (int j = 0; j < V; j++) sum += Math.exp(logits[i * V + j] - max);
            nll -= logits[i * V + ids[i + 1]] - max - Math.log(sum);
        }
        assertEquals(g.get("ppl").asDouble(), Math.exp(nll / (T - 1)), 1e-4 * g.get("ppl").asDouble());
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }
}
