package dev.fastdms.model.train;

import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.TestAssets;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import dev.fastdms.model.tensor.FloatTensor;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The training model without DMS is the engine's model, and an untrained trainer exports the source unchanged. */
class EngineAgreementTest {
    static final int[] TOKENS = {1, 403, 407, 261, 378, 282, 397, 268, 305, 344, 267, 411, 301, 262, 453, 394};

    @Test
    void forwardWithoutDmsEqualsTheEngine() {
        for (String model : new String[]{"models/stories260K/stories260K.bin", "models/tiny-qwen3-hf"}) {
            try (ModelFile mf = ModelLoader.open(TestAssets.asset(model))) {
                var c = mf.config();
                Transformer engine = new Transformer(c.withDms(null), new Weights(mf), 8);
                float[] expected = new float[TOKENS.length * c.vocabSize()];
                engine.forward(engine.newSequence(KvDtype.F32, null), TOKENS, 0, TOKENS.length, expected, true);
                Params p = Params.load(mf);
                SequencePass pass = new SequencePass(c, p.ropeFreqs, TOKENS.length, null, 0);
                pass.forward(p, p.transposed(), TOKENS, 0, null);
                double maxAbs = 0;
                for (float e : expected) maxAbs = Math.max(maxAbs, Math.abs(e));
                for (int i = 0; i < expected.length; i++) assertEquals(expected[i], pass.logits[i], 2e-4 * maxAbs, model + " logit " + i);
            }
        }
    }

    @Test
    void untrainedTensorsAreTheSourceBitForBit() {
        for (String model : new String[]{"models/stories260K/stories260K-f32.gguf", "models/tiny-llama-hf", "models/tiny-qwen3-hf"}) {
            try (ModelFile mf = ModelLoader.open(TestAssets.asset(model))) {
                DmsTrainer trainer = new DmsTrainer(mf, TOKENS, new TrainOptions(1, 2, 1, 8, 1, 1e-3, 0, 1, 1));
                Map<String, float[]> out = trainer.tensors();
                assertEquals(mf.tensors().keySet().stream().filter(n -> !n.startsWith("dms")).collect(java.util.stream.Collectors.toSet()), out.keySet(), model);
                for (var e : out.entrySet()) {
                    var t = mf.tensor(e.getKey());
                    float[] src = new float[Math.toIntExact(t.elements())];
                    FloatTensor.of(t.type(), t.data(), t.elements()).copyTo(0, src, 0, src.length);
                    assertArrayEquals(src, e.getValue(), model + " " + e.getKey());
                }
            }
        }
    }
}
