package dev.fastdms.model.format;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.ModelConfig;
import dev.fastdms.model.tensor.GgmlType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Opens a model in any supported format — a GGUF file, a Hugging Face directory (config.json + safetensors) or a
 * llama2.c checkpoint — as a {@link ModelFile} with canonical tensor names. Any problem with the files is a
 * {@link ModelFormatException} with one clear line.
 */
public final class ModelLoader {
    private ModelLoader() {}

    /**
     * Detects the format (a directory is Hugging Face; a file is GGUF by its magic, else a llama2.c checkpoint), reads
     * the config, maps the tensors and checks them against the config. The caller closes the result.
     */
    public static ModelFile open(Path path) {
        if (!Files.exists(path)) throw new ModelFormatException(path + ": no such file or directory");
        try {
            ModelFile mf;
            if (Files.isDirectory(path)) mf = HuggingFace.open(path);
            // a pipe or device could block or never end: only plain files are read
            else if (!Files.isRegularFile(path)) throw new ModelFormatException(path + ": not a regular file");
            else if (GGUF.looksLikeGguf(path)) mf = openGguf(path);
            else if (path.getFileName().toString().endsWith(".json")) throw new ModelFormatException(path + ": pass the model directory, not its config file");
            else if (path.getFileName().toString().endsWith(".safetensors")) throw new ModelFormatException(path + ": pass the model directory (with config.json), not the safetensors file");
            else mf = Llama2c.open(path);
            return validate(mf);
        } catch (ModelFormatException e) {
            throw e;
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            // every check above should have caught a bad file first; this keeps the one-exception contract anyway
            throw new ModelFormatException(path + ": corrupt model file (" + e.getClass().getSimpleName() + ": "
                    + String.valueOf(e.getMessage()).lines().findFirst().orElse("") + ")", e);
        }
    }

    /** Reads the config from GGUF metadata (llama.cpp key names). */
    static ModelFile openGguf(Path path) {
        GGUF g = GGUF.open(path);
        try {
            String arch = g.requireString("general.architecture");
            if (!arch.equals("llama") && !arch.equals("qwen3")) {
                throw new ModelFormatException(path + ": unsupported architecture '" + arch + "' (llama and qwen3 are supported)");
            }
            int dim = g.requireInt(arch + ".embedding_length");
            int layers = g.requireInt(arch + ".block_count");
            int heads = g.requireInt(arch + ".attention.head_count");
            int kvHeads = (int) g.getLong(arch + ".attention.head_count_kv", heads);
            int headDim = (int) g.getLong(arch + ".attention.key_length", heads > 0 ? dim / heads : 0);
            int ffn = g.requireInt(arch + ".feed_forward_length");
            int ctx = (int) Math.min(Integer.MAX_VALUE, g.getLong(arch + ".context_length", 2048));
            float eps = g.getFloat(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
            float theta = g.getFloat(arch + ".rope.freq_base", 10000f);
            RawTensor emb = g.tensor("token_embd.weight");
            if (emb.shape().length != 2) throw new ModelFormatException(path + ": token_embd.weight has shape " + java.util.Arrays.toString(emb.shape()) + ", not [vocab, dim]");
            int vocab = (int) Math.min(Integer.MAX_VALUE, emb.rows());
            ModelConfig.RopeScaling rs = ropeScaling(g, arch);
            DmsConfig dms = null;
            if (g.metadata().containsKey(arch + ".dms.window_size")) {
                dms = new DmsConfig((int) g.getLong(arch + ".dms.window_size", 256),
                        g.getFloat(arch + ".dms.alpha_scale", DmsConfig.DEFAULT_ALPHA_SCALE),
                        g.getFloat(arch + ".dms.alpha_offset", DmsConfig.DEFAULT_ALPHA_OFFSET), DmsConfig.Convention.NVIDIA);
            }
            boolean qwen = arch.equals("qwen3");
            ModelConfig c = new ModelConfig(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, ctx, eps, theta, rs,
                    qwen, !g.tensors().containsKey("output.weight"), qwen, dms);
            return new ModelFile("gguf", path, c, g.tensors(), g.metadata(), null, g);
        } catch (RuntimeException e) {
            g.close();
            throw e;
        }
    }

    /**
     * llama3 scaling from {@code <arch>.rope.scaling.*} keys. llama.cpp files carry it as the rope_freqs.weight tensor
     * instead (which the forward pass prefers when both are present); other scaling kinds would silently give wrong
     * results, so they are refused.
     */
    private static ModelConfig.RopeScaling ropeScaling(GGUF g, String arch) {
        String type = g.getString(arch + ".rope.scaling.type", "none");
        float factor = g.getFloat(arch + ".rope.scaling.factor", 1f);
        if (type.equals("llama3")) {
            return new ModelConfig.RopeScaling(g.getFloat(arch + ".rope.scaling.factor", 8f),
                    g.getFloat(arch + ".rope.scaling.low_freq_factor", 1f), g.getFloat(arch + ".rope.scaling.high_freq_factor", 4f),
                    (int) g.getLong(arch + ".rope.scaling.original_context_length", 8192));
        }
        if (!type.equals("none") && factor != 1f) {
            throw new ModelFormatException(g.path() + ": unsupported RoPE scaling '" + type + "' (factor " + factor + "); llama3 scaling is supported");
        }
        return null;
    }

    /** Checks dimensions and tensor types before any weight is touched, so bad files fail early with one line. */
    static ModelFile validate(ModelFile mf) {
        ModelConfig c = mf.config();
        try {
            check(mf, c.dim() > 0 && c.layers() > 0 && c.heads() > 0 && c.kvHeads() > 0 && c.headDim() > 0 && c.ffnDim() > 0
                    && c.vocabSize() > 0 && c.contextLength() > 0, "non-positive dimension in " + c);
            check(mf, c.heads() % c.kvHeads() == 0, c.heads() + " query heads are not a multiple of " + c.kvHeads() + " KV heads");
            check(mf, c.headDim() % 2 == 0, "head dimension " + c.headDim() + " is odd");
            check(mf, c.dim() <= 1 << 16 && c.layers() <= 1024 && c.heads() <= 1024 && c.ffnDim() <= 1 << 20 && c.vocabSize() <= 1 << 22,
                    "absurd dimensions " + c);
            check(mf, c.contextLength() <= 1 << 24, "absurd context length " + c.contextLength());
            check(mf, c.rmsEps() > 0 && c.rmsEps() < 1 && c.ropeTheta() > 0 && Float.isFinite(c.ropeTheta()),
                    "implausible rms_eps " + c.rmsEps() + " or rope theta " + c.ropeTheta());
            ModelConfig.RopeScaling rs = c.ropeScaling();
            // a factor of 0 divides every frequency by zero: the model would run and produce garbage
            check(mf, rs == null || (rs.factor() > 0 && Float.isFinite(rs.factor()) && rs.lowFreqFactor() > 0
                            && rs.highFreqFactor() > rs.lowFreqFactor() && Float.isFinite(rs.highFreqFactor()) && rs.originalContext() > 0),
                    "implausible RoPE scaling " + rs);
            for (Map.Entry<String, RawTensor> e : mf.tensors().entrySet()) {
                GgmlType t = e.getValue().type();
                if (!t.supported()) throw new ModelFormatException(mf.path() + ": tensor " + e.getKey() + " has type " + t + ", which is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K are)");
            }
            TensorLayout.check(mf);
            return mf;
        } catch (RuntimeException e) {
            mf.close();
            throw e;
        }
    }

    private static void check(ModelFile mf, boolean ok, String what) {
        if (!ok) throw new ModelFormatException(mf.path() + ": " + what);
    }
}
