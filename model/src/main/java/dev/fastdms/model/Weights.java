package dev.fastdms.model;

import dev.fastdms.model.format.ModelFile;
import dev.fastdms.model.format.ModelFormatException;
import dev.fastdms.model.format.RawTensor;
import dev.fastdms.model.tensor.FloatTensor;

/**
 * The tensors of a Llama/Qwen3 model, resolved from a {@link ModelFile} under their canonical names. Large matrices
 * stay in their stored type (memory-mapped); small vectors (norm weights) are dequantised to float[].
 */
public final class Weights {
    public final FloatTensor tokenEmbedding;  // [vocab, dim]
    public final float[][] attnNorm, ffnNorm;  // [layer][dim]
    public final float[][] qNorm, kNorm;       // [layer][headDim] (Qwen3) or null
    public final FloatTensor[] wq, wk, wv, wo, wGate, wUp, wDown;
    public final float[] outputNorm;
    public final FloatTensor output;           // [vocab, dim]; the embedding when tied
    public final float[] ropeFreqFactors;      // GGUF rope_freqs (llama3 scaling divisors) or null
    /** DMS adapter variant: decision projection [kvHeads][dim], its bias and the RMSNorm before it; null without. */
    public final float[][] dmsAlpha, dmsAlphaNorm;
    public final float[][] dmsAlphaBias;

    public Weights(ModelFile file) {
        ModelConfig c = file.config();
        int L = c.layers();
        tokenEmbedding = matrix(file, "token_embd.weight", c.vocabSize(), c.dim());
        attnNorm = new float[L][];
        ffnNorm = new float[L][];
        qNorm = c.qkNorm() ? new float[L][] : null;
        kNorm = c.qkNorm() ? new float[L][] : null;
        wq = new FloatTensor[L]; wk = new FloatTensor[L]; wv = new FloatTensor[L]; wo = new FloatTensor[L];
        wGate = new FloatTensor[L]; wUp = new FloatTensor[L]; wDown = new FloatTensor[L];
        for (int l = 0; l < L; l++) {
            String p = "blk." + l + ".";
            attnNorm[l] = vector(file, p + "attn_norm.weight", c.dim());
            ffnNorm[l] = vector(file, p + "ffn_norm.weight", c.dim());
            if (c.qkNorm()) {
                qNorm[l] = vector(file, p + "attn_q_norm.weight", c.headDim());
                kNorm[l] = vector(file, p + "attn_k_norm.weight", c.headDim());
            }
            wq[l] = matrix(file, p + "attn_q.weight", c.qDim(), c.dim());
            wk[l] = matrix(file, p + "attn_k.weight", c.kvDim(), c.dim());
            wv[l] = matrix(file, p + "attn_v.weight", c.kvDim(), c.dim());
            wo[l] = matrix(file, p + "attn_output.weight", c.dim(), c.qDim());
            wGate[l] = matrix(file, p + "ffn_gate.weight", c.ffnDim(), c.dim());
            wUp[l] = matrix(file, p + "ffn_up.weight", c.ffnDim(), c.dim());
            wDown[l] = matrix(file, p + "ffn_down.weight", c.dim(), c.ffnDim());
        }
        outputNorm = vector(file, "output_norm.weight", c.dim());
        RawTensor out = file.optionalTensor("output.weight");
        output = out == null ? tokenEmbedding : matrix(file, "output.weight", c.vocabSize(), c.dim());
        if (file.optionalTensor("blk.0.dms_alpha.weight") != null) {
            dmsAlpha = new float[L][];
            dmsAlphaNorm = new float[L][];
            dmsAlphaBias = new float[L][];
            for (int l = 0; l < L; l++) {
                String p = "blk." + l + ".";
                dmsAlpha[l] = vector(file, p + "dms_alpha.weight", c.kvHeads() * c.dim());
                dmsAlphaNorm[l] = vector(file, p + "dms_alpha_norm.weight", c.dim());
                dmsAlphaBias[l] = file.optionalTensor(p + "dms_alpha.bias") == null ? new float[c.kvHeads()] : vector(file, p + "dms_alpha.bias", c.kvHeads());
            }
        } else {
            dmsAlpha = dmsAlphaNorm = dmsAlphaBias = null;
        }
        RawTensor rf = file.optionalTensor("rope_freqs.weight");
        ropeFreqFactors = rf == null ? null : vector(file, "rope_freqs.weight", c.headDim() / 2);
    }

    private static FloatTensor matrix(ModelFile f, String name, long rows, long cols) {
        RawTensor t = f.tensor(name);
        if (t.elements() != rows * cols || t.cols() != cols) {
            throw new ModelFormatException(f.path() + ": tensor " + name + " has shape " + java.util.Arrays.toString(t.shape())
                    + ", expected [" + rows + ", " + cols + "]");
        }
        return FloatTensor.of(t.type(), t.data(), t.elements());
    }

    private static float[] vector(ModelFile f, String name, int n) {
        RawTensor t = f.tensor(name);
        if (t.elements() != n) {
            throw new ModelFormatException(f.path() + ": tensor " + name + " has " + t.elements() + " elements, expected " + n);
        }
        return t.floats();
    }
}
