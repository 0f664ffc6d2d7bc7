package dev.fastdms.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelLoader;
import org.junit.jupiter.api.Test;

/** The DMS golden on the JVM backend (the device runs the same {@link DmsGolden} in tornado's DmsOnDeviceTest). */
class DmsReferenceTest {
    @Test
    void reproducesStories260KDmsGolden() throws Exception {
        var ref = new ObjectMapper().readTree(TestAssets.asset("reference/stories260K_dms_reference.json").toFile());
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"))) {
            Transformer t = new Transformer(mf.config(), new Weights(mf), 64);
            DmsGolden.assertReproduces(t, ref, "jvm");
            DmsGolden.assertDecodeKeepsGoldenSlots(t, ref, "jvm");
        }
    }
}
