package dev.fastdms.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Generator;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.Sampler;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The real stories260K weights on the OpenCL device: the same greedy tokens and logits as the JVM and the goldens. */
class Stories260KOnDeviceTest {
    static ModelFile mf;
    static Weights w;
    static TornadoForward dev;

    @BeforeAll
    static void open() {
        mf = ModelLoader.open(Assets.asset("models/stories260K/stories260K-f32.gguf"));
        w = new Weights(mf);
        dev = new TornadoForward("opencl", Devices.pick("opencl", 0), mf.config(), w,
                new TornadoForward.Settings(16, 2, 0, 0, KvDtype.F32, false, 16, true));
    }

    @AfterAll
    static void close() {
        dev.close();
        mf.close();
    }

    @Test
    void firstEightLogitsMatchGoldenAndJvm() throws Exception {
        JsonNode l8 = Assets.json("reference/stories260K_greedy_reference.json").get("logits_first_8_positions");
        int[] ids = Assets.ints(l8.get("input_ids"));
        ModelConfig c = mf.config();
        int V = c.vocabSize();
        float[] onDevice = new float[ids.length * V], jvm = new float[ids.length * V];
        Sequence s = dev.newSequence(KvDtype.F32, null);
        dev.forward(s, ids, 0, ids.length, onDevice, true);
        s.kv().release();
        Transformer t = new Transformer(c, w, 16);
        t.forward(t.newSequence(KvDtype.F32, null), ids, 0, ids.length, jvm, true);
        for (int p = 0; p < ids.length; p++) {
            for (int j = 0; j < V; j++) {
                assertEquals(l8.get("logits").get(p).get(j).asDouble(), onDevice[p * V + j], 1e-4, "logit " + j + " at " + p);
                assertEquals(jvm[p * V + j], onDevice[p * V + j], 1e-4, "device vs jvm, logit " + j + " at " + p);
            }
        }
    }

    @Test
    void greedyTokensMatchGoldenWithOnlyTokenIdsCrossingTheBus() throws Exception {
        int[] want = Assets.ints(Assets.json("reference/stories260K_greedy_reference.json").get("greedy_token_ids"));
        Sequence s = dev.newSequence(KvDtype.F32, null);
        long in0 = dev.bytesIn(), out0 = dev.bytesOut(), steps0 = dev.steps();
        var r = new Generator(dev).generate(s, new int[]{1}, 200, new Sampler(Sampler.Settings.greedy()), null, null);
        assertArrayEquals(want, r.ids());
        long steps = dev.steps() - steps0;
        double inPerStep = (dev.bytesIn() - in0) / (double) steps, outPerStep = (dev.bytesOut() - out0) / (double) steps;
        System.out.printf("stories260K on %s: %d steps, %.0f bytes in and %.0f bytes out per decode step (profiler)%n",
                dev.backend(), steps, inPerStep, outPerStep);
        s.kv().release();
    }
}
