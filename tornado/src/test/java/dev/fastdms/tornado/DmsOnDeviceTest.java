package dev.fastdms.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.DmsGolden;
import dev.fastdms.model.Weights;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import org.junit.jupiter.api.Test;

/**
 * The DMS golden the JVM backend passes (model's {@link DmsGolden}) with decisions, eviction and compaction on the
 * device, i.e. the kernels that mirror cache/'s DmsStep: every flag, argmax, retained counts, the device's own live
 * counts and CR, ppl/KLD, probe logits.
 */
class DmsOnDeviceTest {
    @Test
    void reproducesStories260KDmsGoldenOnTheDevice() throws Exception {
        JsonNode ref = Assets.json("reference/stories260K_dms_reference.json");
        try (ModelFile mf = ModelLoader.open(Assets.asset("models/stories260K/stories260K-f32.gguf"))) {
            int maxWindow = 0;
            for (JsonNode cs : ref.get("cases")) maxWindow = Math.max(maxWindow, cs.get("dms").get("window").asInt());
            // 16 rows per step: the 200-token prompt goes in 13 chunks, so eviction crosses chunk borders
            try (TornadoForward dev = new TornadoForward("opencl", Devices.pick("opencl", 0), mf.config(), new Weights(mf),
                    new TornadoForward.Settings(16, 2, 0, maxWindow, KvDtype.F32, true, 16, false))) {
                DmsGolden.assertReproduces(dev, ref, "opencl");
                DmsGolden.assertDecodeKeepsGoldenSlots(dev, ref, "opencl");
            }
        }
    }
}
