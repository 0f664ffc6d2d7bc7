package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.format.ModelFile;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class BatchDecoderTest {
    @Test
    void batchedGreedyEqualsEachSequenceAlone() {
        ModelFile mf = dev.fastdms.model.format.ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"));
        ModelConfig c = mf.config();
        Weights w = new Weights(mf);
        DmsConfig dms = new DmsConfig(8, 100f, 1f, DmsConfig.Convention.NVIDIA);
        Transformer alone = new Transformer(c, w, 32);
        Transformer batched = new Transformer(c, w, 32);
        SplittableRandom r = new SplittableRandom(3);
        int requests = 11;
        Map<Integer, int[]> want = new HashMap<>();
        BatchDecoder bd = new BatchDecoder(batched, () -> batched.newSequence(KvDtype.F32, dms), 4);
        for (int id = 0; id < requests; id++) {
            int[] prompt = new int[1 + r.nextInt(40)];
            prompt[0] = 1;
            for (int i = 1; i < prompt.length; i++) prompt[i] = 3 + r.nextInt(500);
            int max = 5 + r.nextInt(60);
            // token 13 ends some sequences early, so places free up at different steps
            var res = new Generator(alone).generate(alone.newSequence(KvDtype.F32, dms), prompt, max,
                    new Sampler(Sampler.Settings.greedy()), t -> t == 13, null);
            want.put(id, res.ids());
            bd.submit(new BatchDecoder.Request(id, prompt, max, new Sampler(Sampler.Settings.greedy()), t -> t == 13));
        }
        int maxActive = 0, completed = 0;
        while (!bd.idle()) {
            for (var comp : bd.step()) {
                assertArrayEquals(want.get(comp.id()), comp.ids(), "request " + comp.id());
                completed++;
            }
            maxActive = Math.max(maxActive, bd.active());
        }
        assertEquals(requests, completed);
        assertEquals(4, maxActive, "the batch should fill up");
    }
}
