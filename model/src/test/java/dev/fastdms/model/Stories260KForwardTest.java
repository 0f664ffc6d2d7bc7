package dev.fastdms.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.format.GGUF;
import dev.fastdms.model.format.ModelFile;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class Stories260KForwardTest {
    @Test
    void greedyMatchesGolden() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(TestAssets.asset("reference/stories260K_greedy_reference.json").toFile());
        GGUF g = GGUF.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"));
        ModelConfig c = new ModelConfig("llama", 64, 5, 8, 4, 8, 172, 512, 512, 1e-5f, 10000f, null, false, true, false, null);
        ModelFile mf = new ModelFile("gguf", g.path(), c, g.tensors(), g.metadata(), null, g);
        Transformer t = new Transformer(c, new Weights(mf), 16);
        Sequence s = t.newSequence(KvDtype.F32, null);
        float[] logits = new float[512];
        int tok = 1;
        JsonNode ids = ref.get("greedy_token_ids");
        int[] got = new int[ids.size()];
        for (int i = 0; i < ids.size(); i++) {
            t.forward(s, new int[]{tok}, 0, 1, logits, false);
            tok = Sampler.argmax(logits, 0, 512);
            got[i] = tok;
        }
        int[] want = new int[ids.size()];
        for (int i = 0; i < want.length; i++) want[i] = ids.get(i).asInt();
        System.out.println(ref.get("logits_first_8_positions").fieldNames().next());
        assertArrayEquals(want, got);
    }
}
