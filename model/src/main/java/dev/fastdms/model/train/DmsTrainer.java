package dev.fastdms.model.train;

import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.format.ModelFile;

import java.util.Map;

/**
 * Retrofits a Llama/Qwen3 model with learned DMS (Łańcucki et al., 2025): all weights train with AdamW on logit
 * distillation from the frozen original plus a compression term, decisions relaxed by a Gumbel-sigmoid.
 */
public final class DmsTrainer {
    /**
     * @param source      the model to retrofit (also the frozen teacher)
     * @param trainTokens training token stream (already tokenized, BOS included where documents start)
     */
    public DmsTrainer(ModelFile source, int[] trainTokens, TrainOptions options) {
        throw new UnsupportedOperationException("not yet");
    }

    /** Runs one optimizer step. */
    public TrainStats step() { throw new UnsupportedOperationException("not yet"); }

    /**
     * Every tensor of the trained model under the canonical names of {@link dev.fastdms.model.ModelConfig}
     * (row-major float32, in the source file's layout, e.g. GGUF Llama's permuted q/k rows), ready to write back.
     */
    public Map<String, float[]> tensors() { throw new UnsupportedOperationException("not yet"); }

    /** The DMS parameters the checkpoint must carry (window, alpha scale, alpha offset, NVIDIA convention). */
    public DmsConfig dms() { throw new UnsupportedOperationException("not yet"); }
}
