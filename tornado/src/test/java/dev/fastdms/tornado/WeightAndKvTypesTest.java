package dev.fastdms.tornado;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Sequence;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import dev.fastdms.model.format.SyntheticModel;
import dev.fastdms.model.tensor.GgmlType;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Device vs JVM on the same weights for every weight type the kernels read (synthetic random weights, GQA, tied
 * embeddings and llama3 RoPE scaling) and for every KV type the device stores, with DMS forced to evict (so slot
 * reuse and compaction run): all-position logits within a bound set by the precision.
 */
class WeightAndKvTypesTest {
    @TempDir static Path tmp;

    @ParameterizedTest(name = "{0} weights, {1} KV")
    @CsvSource({"f32,F32,2e-4", "f16,F32,2e-3", "bf16,F32,2e-3", "q8_0,F32,2e-3", "q4_0,F32,2e-3", "q8_0,Q8,2e-3", "f32,FP8_E4M3,2e-3", "q4_0,FP8_E4M3,2e-3"})
    void deviceMatchesJvm(String weights, KvDtype kv, double relTol) throws Exception {
        // 64 dims: 2 Q8 blocks per row; 4 query heads over 2 KV heads; head dim 16; 300-token context: two attention splits
        var shape = new SyntheticModel.Shape("llama", 64, 2, 4, 2, 16, 96, 300, 300, 10000f, 8f, true);
        Path file = tmp.resolve("tiny-" + weights + ".gguf");
        if (!file.toFile().exists()) SyntheticModel.write(file, shape, SyntheticModel.type(weights), null, 11);
        try (ModelFile mf = ModelLoader.open(file)) {
            var c = mf.config();
            Weights w = new Weights(mf);
            int T = 280, V = c.vocabSize();
            int[] ids = new int[T];
            java.util.SplittableRandom r = new java.util.SplittableRandom(3);
            for (int i = 0; i < T; i++) ids[i] = r.nextInt(V);
            DmsConfig dms = new DmsConfig(8, 100f, 5f, DmsConfig.Convention.NVIDIA);
            float[] jvm = new float[T * V], dev = new float[T * V];
            Transformer t = new Transformer(c, w, 32);
            Sequence js = t.newSequence(kv, dms);
            js.forceEvictFraction(0.7);
            t.forward(js, ids, 0, T, jvm, true);
            TornadoForward d = new TornadoForward("opencl", Devices.pick("opencl", 0), c, w,
                    new TornadoForward.Settings(32, 1, 0, 8, kv, false, 16, false));
            Sequence ds = d.newSequence(kv, dms);
            ds.forceEvictFraction(0.7);
            d.forward(ds, ids, 0, T, dev, true);
            double scale = 0;
            for (float x : jvm) scale = Math.max(scale, Math.abs(x));
            double worst = 0;
            for (int i = 0; i < jvm.length; i++) worst = Math.max(worst, Math.abs(jvm[i] - dev[i]));
            System.out.printf("%s weights, %s KV: max |device - jvm| = %.3g (logit scale %.3g)%n", weights, kv, worst, scale);
            assertTrue(worst <= relTol * scale, "max |device - jvm| " + worst + " over logits up to " + scale);
            // the forced 70% eviction really compacted both caches the same way
            for (int l = 0; l < c.layers(); l++) for (int g = 0; g < c.kvHeads(); g++) {
                assertEquals(js.kv().live(l, g), ds.kv().live(l, g), "live slots l" + l + " g" + g);
                assertTrue(ds.kv().live(l, g) < T / 2, "eviction happened");
            }
            d.close();
        }
    }
}
