package dev.fastdms.model.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.TestAssets;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.format.ModelFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class EvaluatorTest {
    static Transformer model;
    static JsonNode ref;
    static int[] ids;

    @BeforeAll
    static void load() throws Exception {
        ref = new ObjectMapper().readTree(TestAssets.asset("reference/stories260K_dms_reference.json").toFile());
        ModelFile mf = dev.fastdms.model.format.ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"));
        ModelConfig c = mf.config();
        model = new Transformer(c, new Weights(mf), 64);
        ids = new int[ref.get("input_ids").size()];
        for (int i = 0; i < ids.length; i++) ids[i] = ref.get("input_ids").get(i).asInt();
    }

    @Test
    void oneWindowReproducesGoldenPplAndKld() {
        for (JsonNode cs : ref.get("cases")) {
            JsonNode d = cs.get("dms");
            DmsConfig dms = new DmsConfig(d.get("window").asInt(), 100f, 5f, DmsConfig.Convention.NVIDIA);
            var r = new Evaluator(model).run(ids, 512, 512, () -> model.newSequence(KvDtype.F32, null),
                    List.of(new Evaluator.Config("dms", () -> model.newSequence(KvDtype.F32, dms))), null).get(0);
            assertEquals(ids.length - 1, r.scoredTokens());
            assertEquals(cs.get("ppl_full_cache").asDouble(), r.pplFull(), 1e-4 * r.pplFull());
            assertEquals(cs.get("ppl_dms").asDouble(), r.ppl(), 1e-4 * r.ppl());
            assertEquals(cs.get("kld_full_to_dms").asDouble(), r.kld(), 1e-4 * r.kld());
            assertTrue(r.tokenMatch() > 0.3 && r.tokenMatch() < 1.0, "DMS changes some argmaxes: " + r.tokenMatch());
            // the golden counts the keys the last query sees: so must the cache (not its state for a next query)
            assertEquals(cs.get("compression_ratio").asDouble(), r.compressionRatio(), 1e-12);
            assertTrue(r.kvBytes() > 0 && r.kvBytesDenseBf16() == 2L * 5 * 4 * 8 * 2 * ids.length);
        }
    }

    @Test
    void slidingWindowsScoreEveryPositionOnceAndNoCompressionIsExact() {
        var r = new Evaluator(model).run(ids, 64, 24, () -> model.newSequence(KvDtype.F32, null),
                List.of(new Evaluator.Config("none", () -> model.newSequence(KvDtype.F32, null))), null).get(0);
        assertEquals(ids.length - 1, r.scoredTokens());
        assertEquals(r.pplFull(), r.ppl(), 1e-9);
        assertEquals(0.0, r.kld(), 1e-9);
        assertEquals(1.0, r.tokenMatch());
        assertEquals(1.0, r.compressionRatio(), 1e-12);
        assertTrue(new Evaluator(model).run(ids, 512, 512, () -> model.newSequence(KvDtype.F32, null), List.of(), null).isEmpty());
        assertThrows(IllegalArgumentException.class, () -> new Evaluator(model).run(ids, 1024, 512, () -> null, List.of(), null));
    }
}
