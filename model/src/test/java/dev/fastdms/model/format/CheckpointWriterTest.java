package dev.fastdms.model.format;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.cache.KvDtype;
import dev.fastdms.model.Engine;
import dev.fastdms.model.KvSettings;
import dev.fastdms.model.ProgressListener;
import dev.fastdms.model.TestAssets;
import dev.fastdms.model.tokenizer.Tokenizer;
import dev.fastdms.model.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A checkpoint written from a model's own tensors loads with the DMS parameters it was given and computes exactly the
 * source's logits under those parameters; a changed tensor really lands in the file.
 */
class CheckpointWriterTest {
    @TempDir Path tmp;

    static final DmsConfig DMS = new DmsConfig(4, 100f, 5f, DmsConfig.Convention.NVIDIA);

    @ParameterizedTest
    @ValueSource(strings = {"models/stories260K/stories260K.bin", "models/stories260K/stories260K-f32.gguf",
            "models/tiny-llama-hf", "models/tiny-qwen3-hf"})
    void unchangedTensorsGiveTheSourceLogitsUnderTheGivenDms(String asset) throws Exception {
        Path src = TestAssets.asset(asset);
        Path out = tmp.resolve(Files.isDirectory(src) ? "out-hf" : "out.gguf");
        try (ModelFile mf = ModelLoader.open(src)) {
            assertEquals(Files.isDirectory(src) ? "hf" : "gguf", CheckpointWriter.outputFormat(mf));
            CheckpointWriter.write(mf, CheckpointWriter.floats(mf), DMS, out);
        }
        try (ModelFile w = ModelLoader.open(out)) {
            assertEquals(DMS, w.config().dms(), "the checkpoint carries the DMS parameters");
        }
        float[] want = logits(src, true), got = logits(out, false);
        assertArrayEquals(want, got, asset + ": logits differ");
        assertFalse(Arrays.equals(want, logits(src, "none", null)), "DMS is active in the comparison");
    }

    @ParameterizedTest
    @ValueSource(strings = {"models/stories260K/stories260K.bin", "models/tiny-qwen3-hf"})
    void aChangedTensorIsWritten(String asset) throws Exception {
        Path src = TestAssets.asset(asset);
        Path out = tmp.resolve(Files.isDirectory(src) ? "changed-hf" : "changed.gguf");
        try (ModelFile mf = ModelLoader.open(src)) {
            Map<String, float[]> t = CheckpointWriter.floats(mf);
            float[] down = t.get("blk.1.ffn_down.weight");
            for (int i = 0; i < down.length; i++) down[i] *= 1.5f;
            CheckpointWriter.write(mf, t, DMS, out);
        }
        assertFalse(Arrays.equals(logits(src, true), logits(out, false)));
    }

    /** The llama2.c tokenizer becomes the metadata llama.cpp's converter wrote, and tokenizes as the .bin does. */
    @Test
    void llama2cTokenizerBecomesGgufMetadata() throws Exception {
        Path bin = TestAssets.asset("models/stories260K/stories260K.bin"), out = tmp.resolve("s.gguf");
        try (ModelFile mf = ModelLoader.open(bin)) {
            CheckpointWriter.write(mf, CheckpointWriter.floats(mf), DMS, out);
        }
        try (GGUF ours = GGUF.open(out); GGUF ref = GGUF.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"))) {
            for (String k : ref.metadata().keySet()) {
                if (k.equals("general.name")) continue;
                Object a = ref.metadata().get(k), b = ours.metadata().get(k);
                assertTrue(a.getClass().isArray() ? Arrays.deepEquals(new Object[]{a}, new Object[]{b}) : a.equals(b), k + ": " + b + " vs " + a);
            }
            assertEquals(4L, ours.metadata().get("llama.dms.window_size"));
        }
        try (ModelFile w = ModelLoader.open(out)) {
            Tokenizer ours = Tokenizers.forModel(w), theirs = Tokenizers.load(bin.resolveSibling("tok512.bin"));
            String text = "Once upon a time, Lily saw a big dog. \"Hi!\" she said.\nThe end.";
            assertArrayEquals(theirs.encode(text, true, false), ours.encode(text, true, false));
        }
    }

    /** HF names and config keys: the written directory holds the source's tensor names and its config plus dms_*. */
    @Test
    void hfDirectoryKeepsNamesAndConfig() throws Exception {
        Path src = TestAssets.asset("models/tiny-llama-hf"), out = tmp.resolve("hf");
        try (ModelFile mf = ModelLoader.open(src)) {
            CheckpointWriter.write(mf, CheckpointWriter.floats(mf), DMS, out);
        }
        try (Arena a = Arena.ofConfined()) {
            Set<String> want = new TreeSet<>(Safetensors.read(src.resolve("model.safetensors"), a).keySet());
            want.removeIf(n -> n.equals("lm_head.weight") || HuggingFace.canonical(n) == null); // tied, buffers
            Map<String, RawTensor> got = Safetensors.read(out.resolve("model.safetensors"), a);
            assertEquals(want, new TreeSet<>(got.keySet()));
            assertEquals(Safetensors.read(src.resolve("model.safetensors"), a).get("model.layers.0.self_attn.q_proj.weight").type(),
                    got.get("model.layers.0.self_attn.q_proj.weight").type(), "the source's BF16 is kept");
        }
        var om = new com.fasterxml.jackson.databind.ObjectMapper();
        var cfg = om.readTree(out.resolve("config.json").toFile());
        var orig = om.readTree(src.resolve("config.json").toFile());
        assertEquals(4, cfg.get("dms_window_size").asInt());
        orig.fieldNames().forEachRemaining(k -> assertEquals(orig.get(k), cfg.get(k), k));
    }

    @Test
    void refusesWhatItCannotWrite() throws Exception {
        try (ModelFile mf = ModelLoader.open(TestAssets.asset("models/stories260K/stories260K-f32.gguf"))) {
            Map<String, float[]> t = CheckpointWriter.floats(mf);
            Path out = tmp.resolve("x.gguf");
            t.put("output.weight", new float[512 * 64]);
            assertTrue(assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.write(mf, t, DMS, out)).getMessage().contains("tied"));
            t.remove("output.weight");
            float[] q = t.remove("blk.0.attn_q.weight");
            assertTrue(assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.write(mf, t, DMS, out)).getMessage().contains("missing"));
            t.put("blk.0.attn_q.weight", Arrays.copyOf(q, 10));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.write(mf, t, DMS, out)).getMessage().contains("10 values"));
            q[3] = Float.NaN;
            t.put("blk.0.attn_q.weight", q);
            assertTrue(assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.write(mf, t, DMS, out)).getMessage().contains("NaN"));
            q[3] = 0;
            assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.write(mf, t, new DmsConfig(4, 1, 1, DmsConfig.Convention.FASTDMS), out));
            assertFalse(Files.exists(out), "nothing half-written");
        }
    }

    /** Logits of every position of a fixed token sequence; the source is forced to {@link #DMS}, a checkpoint uses its own. */
    static float[] logits(Path model, boolean forceDms) {
        return logits(model, forceDms ? "dms" : null,
                forceDms ? new KvSettings.DmsOverrides(DMS.window(), DMS.alphaScale(), DMS.alphaOffset(), DMS.convention()) : null);
    }

    static float[] logits(Path model, String policy, KvSettings.DmsOverrides dms) {
        var o = new Engine.Options(model, null, 0, 0, "jvm", KvDtype.F32, policy, dms, 0, 0, 0);
        try (Engine e = Engine.open(o, ProgressListener.NONE)) {
            int n = 24, v = e.config().vocabSize();
            int[] ids = new int[n];
            ids[0] = 1;
            for (int i = 1; i < n; i++) ids[i] = (i * 37 + 11) % v;
            float[] logits = new float[n * v];
            e.forward().forward(e.newSequence(), ids, 0, n, logits, true);
            return logits;
        }
    }
}
