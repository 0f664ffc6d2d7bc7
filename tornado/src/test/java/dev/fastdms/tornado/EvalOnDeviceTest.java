package dev.fastdms.tornado;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.Transformer;
import dev.fastdms.model.Weights;
import dev.fastdms.model.eval.Evaluator;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** `fastdms eval` on the device: perplexity, KLD to the full cache and CR equal the JVM's within tolerance. */
class EvalOnDeviceTest {
    @Test
    void evaluatorNumbersMatchTheJvm() throws Exception {
        int[] ids = Assets.ints(Assets.json("reference/stories260K_dms_reference.json").get("input_ids"));
        try (ModelFile mf = ModelLoader.open(Assets.asset("models/stories260K/stories260K-f32.gguf"))) {
            Weights w = new Weights(mf);
            DmsConfig dms = new DmsConfig(16, 100f, 5f, DmsConfig.Convention.NVIDIA);
            Transformer t = new Transformer(mf.config(), w, 16);
            TornadoForward d = new TornadoForward("opencl", Devices.pick("opencl", 0), mf.config(), w,
                    new TornadoForward.Settings(16, 2, 0, 16, KvDtype.F32, false, 16, false));
            var jvm = new Evaluator(t).run(ids, 100, 50, () -> t.newSequence(KvDtype.F32, null),
                    List.of(new Evaluator.Config("dms", () -> t.newSequence(new KvSettings(KvDtype.F32, dms)))), null);
            var dev = new Evaluator(d).run(ids, 100, 50, () -> d.newSequence(KvDtype.F32, null),
                    List.of(new Evaluator.Config("dms", () -> d.newSequence(new KvSettings(KvDtype.F32, dms)))), null);
            assertEquals(jvm.size(), dev.size());
            for (int i = 0; i < jvm.size(); i++) {
                System.out.println("jvm    " + jvm.get(i));
                System.out.println("device " + dev.get(i));
                assertEquals(jvm.get(i).ppl(), dev.get(i).ppl(), 1e-4 * jvm.get(i).ppl());
                assertEquals(jvm.get(i).kld(), dev.get(i).kld(), 1e-4 + 1e-3 * jvm.get(i).kld());
                assertEquals(jvm.get(i).compressionRatio(), dev.get(i).compressionRatio(), 1e-9);
            }
            d.close();
        }
    }
}
