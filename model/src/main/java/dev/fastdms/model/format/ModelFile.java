package dev.fastdms.model.format;

import dev.fastdms.model.ModelConfig;

import java.nio.file.Path;
import java.util.Map;

/**
 * A model opened from any supported format: its config, its tensors under GGUF-style names (see {@link ModelConfig}),
 * and what a tokenizer loader needs. Tensor bytes stay memory-mapped until {@link #close()}.
 *
 * @param format    "gguf", "hf" (safetensors + config.json) or "llama2c"
 * @param path      the file or directory the user named
 * @param metadata  GGUF metadata (tokenizer.ggml.*, chat template, ...); empty for other formats
 * @param tokenizerFile a tokenizer file found beside the weights (tokenizer.json or a llama2.c tokenizer .bin), or null
 */
public record ModelFile(String format, Path path, ModelConfig config, Map<String, RawTensor> tensors,
                        Map<String, Object> metadata, Path tokenizerFile, AutoCloseable resources) implements AutoCloseable {

    public RawTensor tensor(String name) {
        RawTensor t = tensors.get(name);
        if (t == null) throw new ModelFormatException(path + ": missing tensor " + name);
        return t;
    }

    public RawTensor optionalTensor(String name) { return tensors.get(name); }

    @Override
    public void close() {
        try {
            if (resources != null) resources.close();
        } catch (Exception e) {
            throw new ModelFormatException(path + ": close failed: " + e.getMessage(), e);
        }
    }
}
