package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.format.ModelFile;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A chat turn continues the compacted cache: prompt A (prefill), a few decode steps, prompt B (prefill on top)
 * must give the logits of one causal pass over the whole token sequence under the same DMS rule.
 */
class MultiTurnDmsTest {
    @ParameterizedTest
    @CsvSource({"16,NVIDIA,7", "4,FASTDMS,5", "0,NVIDIA,3", "0,FASTDMS,64"})
    void prefillAfterDecodeEqualsOnePass(int window, DmsConfig.Convention conv, int chunk) {
        ModelFile mf = dev.fastdms.model.format.ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"));
        ModelConfig c = mf.config();
                Weights w = new Weights(mf);
        // a low offset makes many tokens evictable so the rule is exercised hard
        DmsConfig dms = new DmsConfig(window, 100f, 0.5f, conv);
        int V = c.vocabSize(), a = 50, d = 20, b = 60, T = a + d + b;
        int[] ids = new int[T];
        SplittableRandom r = new SplittableRandom(7);
        ids[0] = 1;
        for (int i = 1; i < T; i++) ids[i] = 3 + r.nextInt(V - 3);

        Transformer one = new Transformer(c, w, 64);
        float[] want = new float[T * V];
        Sequence s1 = one.newSequence(KvDtype.F32, dms);
        one.forward(s1, ids, 0, T, want, true);

        Transformer t = new Transformer(c, w, chunk);
        Sequence s = t.newSequence(KvDtype.F32, dms);
        float[] got = new float[T * V];
        float[] part = new float[Math.max(a, b) * V];
        t.forward(s, ids, 0, a, part, true);
        System.arraycopy(part, 0, got, 0, a * V);
        float[] step = new float[V];
        for (int i = a; i < a + d; i++) {
            t.forward(s, ids, i, 1, step, false);
            System.arraycopy(step, 0, got, i * V, V);
        }
        t.forward(s, ids, a + d, b, part, true);
        System.arraycopy(part, 0, got, (a + d) * V, b * V);
        for (int i = 0; i < T * V; i++) assertEquals(want[i], got[i], 1e-4, "logit " + (i % V) + " at position " + (i / V));
        assertEquals(T, s.position());
        for (int l = 0; l < c.layers(); l++) {
            for (int h = 0; h < c.kvHeads(); h++) assertEquals(JvmSequence.of(s1).cache().head(l, h).live(), JvmSequence.of(s).cache().head(l, h).live());
        }
        if (window < T) assertTrue(JvmSequence.of(s).cache().compressionRatio() > 1.05, "the rule should have evicted something");
    }
}
