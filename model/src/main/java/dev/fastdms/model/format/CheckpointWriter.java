package dev.fastdms.model.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.format.GGUF.ValueType;
import dev.fastdms.model.tensor.GgmlType;
import dev.fastdms.model.tensor.Quantizer;
import dev.fastdms.model.tokenizer.Llama2cGguf;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes a model's (retrofitted) tensors back as a checkpoint that carries DMS parameters where the loaders read them:
 * a GGUF source gives GGUF (its metadata and tokenizer kept, {@code <arch>.dms.*} set), a llama2.c checkpoint gives
 * GGUF too (llama2.c has no place for them; its tokenizer.bin becomes GGUF tokenizer metadata), a Hugging Face
 * directory gives a directory (config.json with {@code dms_*} keys, model.safetensors under HF names, tokenizer files
 * copied).
 *
 * <p>Tensors come as row-major floats under the canonical names, in the source's own layout. Each is stored in its
 * source type when that is F32, F16 or BF16 (so unchanged weights come back bit for bit), else as F32: quantising a
 * retrofit back to Q8_0/Q4_K is a separate step. Source tensors outside the model proper (llama3 {@code rope_freqs})
 * that the map leaves out are copied as they are. Every file is written beside its target and moved into place, so
 * a failed write leaves no half checkpoint (and a memory-mapped source is never overwritten while it is read).
 */
public final class CheckpointWriter {
    private CheckpointWriter() {}

    /** "gguf" (one file) or "hf" (a directory): what {@link #write} makes from this source. */
    public static String outputFormat(ModelFile source) { return source.format().equals("hf") ? "hf" : "gguf"; }

    /** The source's tensors dequantised to floats: what an untouched retrofit would hand back (tests, tools). */
    public static Map<String, float[]> floats(ModelFile source) {
        Map<String, float[]> m = new LinkedHashMap<>();
        for (String name : modelTensors(source.config(), source)) {
            RawTensor t = source.optionalTensor(name);
            if (t != null) m.put(name, t.floats());
        }
        return m;
    }

    public static void write(ModelFile source, Map<String, float[]> tensors, DmsConfig dms, Path out) throws IOException {
        if (dms.convention() != DmsConfig.Convention.NVIDIA) {
            throw new IllegalArgumentException("checkpoints carry the NVIDIA DMS convention only (the loaders assume it), not " + dms.convention());
        }
        List<Entry> plan = plan(source, tensors);
        switch (source.format()) {
            case "gguf", "llama2c" -> writeGguf(source, plan, dms, out);
            case "hf" -> writeHf(source, plan, dms, out);
            default -> throw new IllegalArgumentException("cannot write a checkpoint for format " + source.format());
        }
    }

    /** One tensor to write: new values in a stored type, or (values null) the source's bytes as they are. */
    private record Entry(String name, long[] shape, GgmlType type, float[] values, RawTensor raw) {
        long bytes() { return type.byteSize(Arrays.stream(shape).reduce(1, Math::multiplyExact)); }

        void write(OutputStream o) throws IOException {
            if (values == null) { GGUFWriter.copy(raw.data(), o); return; }
            switch (type) {
                case F32 -> {
                    ByteBuffer b = ByteBuffer.allocate(4 << 14).order(ByteOrder.LITTLE_ENDIAN);
                    for (int i = 0; i < values.length; i += 1 << 14) {
                        b.clear();
                        for (int j = i; j < Math.min(values.length, i + (1 << 14)); j++) b.putFloat(values[j]);
                        o.write(b.array(), 0, b.position());
                    }
                }
                case F16 -> o.write(Quantizer.toF16(values));
                case BF16 -> o.write(Quantizer.toBF16(values));
                default -> throw new IllegalStateException(name + ": no writer for " + type);
            }
        }
    }

    /** The config's tensors in file order, then the source's other tensors. */
    private static Set<String> modelTensors(ModelConfig c, ModelFile source) {
        Set<String> names = new LinkedHashSet<>(TensorLayout.required(c).keySet());
        for (String n : TensorLayout.optional(c).keySet()) if (source.optionalTensor(n) != null) names.add(n);
        names.addAll(source.tensors().keySet());
        return names;
    }

    private static List<Entry> plan(ModelFile source, Map<String, float[]> tensors) {
        ModelConfig c = source.config();
        Map<String, long[]> required = TensorLayout.required(c), optional = TensorLayout.optional(c);
        for (String name : tensors.keySet()) {
            if (!required.containsKey(name) && !optional.containsKey(name) && source.optionalTensor(name) == null) {
                throw new IllegalArgumentException("tensor " + name + " is not part of this model"
                        + (name.equals("output.weight") ? " (its embeddings are tied: give token_embd.weight only)" : ""));
            }
        }
        Set<String> names = modelTensors(c, source);
        names.addAll(tensors.keySet()); // new DMS adapter projections
        List<Entry> plan = new ArrayList<>();
        for (String name : names) {
            RawTensor src = source.optionalTensor(name);
            float[] v = tensors.get(name);
            if (v == null) {
                if (required.containsKey(name)) throw new IllegalArgumentException("tensor " + name + " is missing");
                plan.add(new Entry(name, src.shape(), src.type(), null, src));
                continue;
            }
            long[] shape = src != null ? src.shape() : required.getOrDefault(name, optional.get(name));
            long n = Arrays.stream(shape).reduce(1, Math::multiplyExact);
            if (v.length != n) throw new IllegalArgumentException("tensor " + name + " has " + v.length + " values, its shape " + Arrays.toString(shape) + " holds " + n);
            for (float x : v) {
                if (!Float.isFinite(x)) throw new IllegalArgumentException("tensor " + name + " holds " + x + " (did the training diverge?)");
            }
            GgmlType type = src != null && (src.type() == GgmlType.F16 || src.type() == GgmlType.BF16) ? src.type() : GgmlType.F32;
            plan.add(new Entry(name, shape, type, v, null));
        }
        return plan;
    }

    private static void writeGguf(ModelFile source, List<Entry> plan, DmsConfig dms, Path out) throws IOException {
        GGUFWriter w = new GGUFWriter();
        String arch = source.config().architecture();
        if (source.resources() instanceof GGUF g) {
            w.putAll(g);
        } else {
            llama2cMetadata(source, w);
        }
        w.put(arch + ".dms.window_size", ValueType.UINT32, dms.window());
        w.put(arch + ".dms.alpha_scale", ValueType.FLOAT32, dms.alphaScale());
        w.put(arch + ".dms.alpha_offset", ValueType.FLOAT32, dms.alphaOffset());
        // ggml's "all F32" when every tensor is, so the stored file type does not claim a quantisation it lost
        if (plan.stream().allMatch(e -> e.type() == GgmlType.F32)) w.put("general.file_type", ValueType.UINT32, 0);
        for (Entry e : plan) w.tensor(e.name(), e.type(), e.shape(), e::write);
        if (Files.isDirectory(out)) throw new IllegalArgumentException(out + " is a directory; a GGUF checkpoint is a file");
        replace(out, w::write);
    }

    /** The keys llama.cpp's converter writes for a llama2.c model (as in stories260K-f32.gguf) and its tokenizer. */
    private static void llama2cMetadata(ModelFile source, GGUFWriter w) {
        ModelConfig c = source.config();
        w.put("general.architecture", "llama");
        w.put("general.name", source.path().getFileName().toString().replaceFirst("\\.bin$", "") + " (DMS retrofit of a llama2.c checkpoint)");
        w.put("llama.context_length", ValueType.UINT32, c.contextLength());
        w.put("llama.embedding_length", ValueType.UINT32, c.dim());
        w.put("llama.feed_forward_length", ValueType.UINT32, c.ffnDim());
        w.put("llama.block_count", ValueType.UINT32, c.layers());
        w.put("llama.attention.head_count", ValueType.UINT32, c.heads());
        w.put("llama.attention.head_count_kv", ValueType.UINT32, c.kvHeads());
        w.put("llama.rope.dimension_count", ValueType.UINT32, c.headDim());
        w.put("llama.attention.layer_norm_rms_epsilon", ValueType.FLOAT32, c.rmsEps());
        w.put("llama.rope.freq_base", ValueType.FLOAT32, c.ropeTheta());
        w.put("llama.vocab_size", ValueType.UINT32, c.vocabSize());
        if (source.tokenizerFile() != null) {
            // token ids as uint32, as the converter stores them
            Llama2cGguf.metadata(source.tokenizerFile(), c.vocabSize()).forEach((k, v) -> {
                if (v instanceof Integer i) w.put(k, ValueType.UINT32, i); else w.put(k, v);
            });
        }
    }

    /** Files beside the weights that a HF directory carries along (tokenizer, generation defaults). */
    private static final List<String> HF_SIDE_FILES = List.of("tokenizer.json", "tokenizer_config.json", "tokenizer.model",
            "special_tokens_map.json", "generation_config.json", "chat_template.jinja");

    private static void writeHf(ModelFile source, List<Entry> plan, DmsConfig dms, Path out) throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) throw new IllegalArgumentException(out + " is a file; a Hugging Face checkpoint is a directory");
        Files.createDirectories(out);
        Path dir = source.path();
        SafetensorsWriter st = new SafetensorsWriter().metadata("format", "pt");
        for (Entry e : plan) {
            // HF keeps llama3 frequency scaling in config.json's rope_scaling, not as a tensor
            if (e.name().equals("rope_freqs.weight") && source.optionalTensor(e.name()) == null) continue;
            String hf = HuggingFace.hfName(e.name());
            if (hf == null) throw new IllegalArgumentException("tensor " + e.name() + " has no Hugging Face name");
            st.tensor(hf, e.type(), e.shape(), e::write);
        }
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        // dms_metadata.json, when the source has one, is read before config.json: both must say the same
        for (String json : List.of("config.json", "dms_metadata.json")) {
            if (!Files.isRegularFile(dir.resolve(json))) continue;
            ObjectNode cfg = (ObjectNode) om.readTree(dir.resolve(json).toFile());
            cfg.put("dms_window_size", dms.window());
            cfg.put("dms_alpha_scale", (double) dms.alphaScale());
            cfg.put("dms_alpha_offset", (double) dms.alphaOffset());
            replace(out.resolve(json), tmp -> om.writeValue(tmp.toFile(), cfg));
        }
        replace(out.resolve("model.safetensors"), st::write);
        // a stale index from an earlier sharded write would be read before model.safetensors
        Files.deleteIfExists(out.resolve("model.safetensors.index.json"));
        for (String f : HF_SIDE_FILES) {
            if (Files.isRegularFile(dir.resolve(f))) replace(out.resolve(f), tmp -> Files.copy(dir.resolve(f), tmp, StandardCopyOption.REPLACE_EXISTING));
        }
    }

    private interface FileWrite { void to(Path tmp) throws IOException; }

    private static void replace(Path target, FileWrite write) throws IOException {
        Path tmp = temp(target);
        try {
            write.to(tmp);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static Path temp(Path target) {
        Path abs = target.toAbsolutePath();
        return abs.resolveSibling("." + abs.getFileName() + ".tmp");
    }
}
