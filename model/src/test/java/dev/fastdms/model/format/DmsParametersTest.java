package dev.fastdms.model.format;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.TestAssets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** DMS parameters reach the config from every place a checkpoint can carry them, and CLI overrides win. */
class DmsParametersTest {
    @Test
    void fromGgufMetadata(@TempDir Path tmp) throws Exception {
        Path p = tmp.resolve("dms.gguf");
        TinyGguf.writer(TinyGguf.llama())
                .put("llama.dms.window_size", 128).put("llama.dms.alpha_scale", 50f).put("llama.dms.alpha_offset", 3f)
                .write(p);
        try (ModelFile mf = ModelLoader.open(p)) {
            assertEquals(new DmsConfig(128, 50f, 3f, DmsConfig.Convention.NVIDIA), mf.config().dms());
        }
    }

    @Test
    void fromDmsMetadataJsonBesideTheWeights(@TempDir Path dir) throws Exception {
        Path src = TestAssets.asset("models/tiny-llama-hf");
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(src.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        try (ModelFile mf = ModelLoader.open(dir)) {
            assertNull(mf.config().dms(), "tiny-llama-hf carries no DMS parameters");
        }
        Files.writeString(dir.resolve("dms_metadata.json"), "{\"dms_window_size\": 512, \"dms_alpha_scale\": 80.0, \"dms_alpha_offset\": 4.0}");
        try (ModelFile mf = ModelLoader.open(dir)) {
            assertEquals(new DmsConfig(512, 80f, 4f, DmsConfig.Convention.NVIDIA), mf.config().dms());
        }
    }

    @Test
    void configKeysAndOverrides() {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/tiny-qwen3-hf"))) {
            DmsConfig ck = mf.config().dms();
            assertEquals(new DmsConfig(16, 100f, 5f, DmsConfig.Convention.NVIDIA), ck);
            assertEquals(ck, KvSettings.resolveDms(null, ck, null), "a DMS checkpoint runs with DMS by default");
            assertNull(KvSettings.resolveDms("none", ck, null), "--kv-policy none turns it off");
            DmsConfig o = KvSettings.resolveDms(null, ck, new KvSettings.DmsOverrides(64, null, 2f, DmsConfig.Convention.FASTDMS));
            assertEquals(new DmsConfig(64, 100f, 2f, DmsConfig.Convention.FASTDMS), o);
            assertNull(KvSettings.resolveDms(null, null, null), "no DMS without parameters or flags");
            assertEquals(KvSettings.DEFAULT_WINDOW, KvSettings.resolveDms("dms", null, null).window());
        }
    }
}
