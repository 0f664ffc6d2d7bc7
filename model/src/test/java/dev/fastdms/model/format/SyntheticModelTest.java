package dev.fastdms.model.format;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Sampler;
import dev.fastdms.model.TestAssets;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.tensor.GgmlType;
import dev.fastdms.model.tokenizer.Tokenizers;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class SyntheticModelTest {
    @TempDir Path tmp;

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "F16", "BF16"})
    void smallShapeRoundTripsThroughGguf(GgmlType type) throws Exception {
        var shape = new SyntheticModel.Shape("llama", 64, 2, 4, 2, 16, 128, 128300, 4096, 500000f, 32f, true);
        Path out = tmp.resolve("s.gguf");
        SyntheticModel.write(out, shape, type, TestAssets.asset("tokenizers/llama3/tokenizer.json"), 3);
        try (ModelFile mf = ModelLoader.open(out)) {
            ModelConfig c = mf.config();
            assertEquals(64, c.dim());
            assertEquals(2, c.layers());
            assertEquals(2, c.kvHeads());
            assertEquals(16, c.headDim());
            assertEquals(128300, c.vocabSize());
            assertTrue(c.tiedEmbeddings());
            assertEquals(type, mf.tensor("blk.0.attn_q.weight").type());
            assertArrayEquals(SyntheticModel.llama3FreqFactors(16, 500000f, 32f, 1f, 4f, 8192),
                    new Weights(mf).ropeFreqFactors);
            var tok = Tokenizers.forModel(mf);
            assertEquals(128000, tok.bos());
            assertArrayEquals(Tokenizers.load(TestAssets.asset("tokenizers/llama3/tokenizer.json")).encode("Hello world, 12345!"),
                    tok.encode("Hello world, 12345!"));
            Transformer t = new Transformer(c, new Weights(mf), 4);
            float[] logits = new float[c.vocabSize()];
            t.forward(t.newSequence(KvDtype.F32, null), new int[]{128000, 9906}, 0, 2, logits, false);
            for (float f : logits) assertTrue(Float.isFinite(f));
            assertTrue(Sampler.argmax(logits, 0, logits.length) >= 0);
        }
    }
}
