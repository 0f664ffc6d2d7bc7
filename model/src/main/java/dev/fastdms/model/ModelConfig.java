package dev.fastdms.model;

import dev.fastdms.cache.DmsConfig;

/**
 * Hyper-parameters of a decoder-only transformer (Llama 2/3.x, Qwen3), whatever file format it came from.
 *
 * <p>Tensors are named as in GGUF (llama.cpp) whatever the source format: {@code token_embd.weight} [vocab, dim],
 * {@code output_norm.weight}, {@code output.weight} (absent when tied), optional {@code rope_freqs.weight}
 * [headDim/2], and per layer {@code blk.N.} + {@code attn_norm, attn_q [heads*headDim, dim], attn_k, attn_v,
 * attn_output [dim, heads*headDim], ffn_norm, ffn_gate [ffn, dim], ffn_up, ffn_down [dim, ffn]} + {@code .weight},
 * and for Qwen3 {@code attn_q_norm.weight, attn_k_norm.weight} [headDim]; DMS adapter checkpoints add
 * {@code dms_alpha.weight} [kvHeads, dim], optional {@code dms_alpha.bias} [kvHeads] and {@code dms_alpha_norm.weight}
 * [dim]. Shapes are row-major.
 *
 * @param ropeHalf      true when RoPE rotates the two halves of a head (HF checkpoints, Qwen3 GGUF: "NeoX" style);
 *                      false when it rotates adjacent pairs (Llama GGUF, whose q/k rows were permuted, and llama2.c)
 * @param ropeScaling   llama3-style frequency scaling, or null
 * @param dms           DMS parameters carried by the checkpoint, or null when it has none
 */
public record ModelConfig(
        String architecture,
        int dim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int ffnDim,
        int vocabSize,
        int contextLength,
        float rmsEps,
        float ropeTheta,
        RopeScaling ropeScaling,
        boolean ropeHalf,
        boolean tiedEmbeddings,
        boolean qkNorm,
        DmsConfig dms) {

    /** Llama 3.1-style RoPE frequency scaling ("rope_type": "llama3"). */
    public record RopeScaling(float factor, float lowFreqFactor, float highFreqFactor, int originalContext) {}

    public int kvDim() { return kvHeads * headDim; }
    public int qDim() { return heads * headDim; }
    public int groupSize() { return heads / kvHeads; }

    public ModelConfig withDms(DmsConfig d) {
        return new ModelConfig(architecture, dim, layers, heads, kvHeads, headDim, ffnDim, vocabSize, contextLength,
                rmsEps, ropeTheta, ropeScaling, ropeHalf, tiedEmbeddings, qkNorm, d);
    }

    public ModelConfig withContextLength(int ctx) {
        return new ModelConfig(architecture, dim, layers, heads, kvHeads, headDim, ffnDim, vocabSize, ctx,
                rmsEps, ropeTheta, ropeScaling, ropeHalf, tiedEmbeddings, qkNorm, dms);
    }
}
