package dev.fastdms.model.format;

import dev.fastdms.model.ModelConfig;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The canonical tensors a {@link ModelConfig} implies, with their row-major shapes: the single place that says what a
 * loaded model must contain (checked by {@link ModelLoader}) and what a synthetic model writes.
 */
public final class TensorLayout {
    private TensorLayout() {}

    /** Tensors every model of this config has, in file order (embedding, layers, final norm, head). */
    public static Map<String, long[]> required(ModelConfig c) {
        Map<String, long[]> m = new LinkedHashMap<>();
        long dim = c.dim(), q = c.qDim(), kv = c.kvDim(), ffn = c.ffnDim();
        m.put("token_embd.weight", new long[]{c.vocabSize(), dim});
        for (int l = 0; l < c.layers(); l++) {
            String p = "blk." + l + ".";
            m.put(p + "attn_norm.weight", new long[]{dim});
            m.put(p + "attn_q.weight", new long[]{q, dim});
            m.put(p + "attn_k.weight", new long[]{kv, dim});
            m.put(p + "attn_v.weight", new long[]{kv, dim});
            m.put(p + "attn_output.weight", new long[]{dim, q});
            if (c.qkNorm()) {
                m.put(p + "attn_q_norm.weight", new long[]{c.headDim()});
                m.put(p + "attn_k_norm.weight", new long[]{c.headDim()});
            }
            m.put(p + "ffn_norm.weight", new long[]{dim});
            m.put(p + "ffn_gate.weight", new long[]{ffn, dim});
            m.put(p + "ffn_up.weight", new long[]{ffn, dim});
            m.put(p + "ffn_down.weight", new long[]{dim, ffn});
        }
        m.put("output_norm.weight", new long[]{dim});
        if (!c.tiedEmbeddings()) m.put("output.weight", new long[]{c.vocabSize(), dim});
        return m;
    }

    /** Tensors a model may carry (llama3 frequency divisors, DMS adapter projections); checked when present. */
    public static Map<String, long[]> optional(ModelConfig c) {
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("rope_freqs.weight", new long[]{c.headDim() / 2});
        for (int l = 0; l < c.layers(); l++) {
            String p = "blk." + l + ".";
            m.put(p + "dms_alpha.weight", new long[]{c.kvHeads(), c.dim()});
            m.put(p + "dms_alpha.bias", new long[]{c.kvHeads()});
            m.put(p + "dms_alpha_norm.weight", new long[]{c.dim()});
        }
        return m;
    }

    /** Fails with one line naming the first missing tensor or wrong shape. */
    static void check(ModelFile mf) {
        ModelConfig c = mf.config();
        for (var e : required(c).entrySet()) {
            RawTensor t = mf.tensors().get(e.getKey());
            if (t == null) throw new ModelFormatException(mf.path() + ": missing tensor " + e.getKey() + missingHint(mf, e.getKey()));
            checkShape(mf, t, e.getValue());
        }
        for (var e : optional(c).entrySet()) {
            RawTensor t = mf.tensors().get(e.getKey());
            if (t != null) checkShape(mf, t, e.getValue());
        }
    }

    private static String missingHint(ModelFile mf, String name) {
        if (name.endsWith("attn_q_norm.weight")) return " (Qwen3 needs per-head q/k norms)";
        if (name.equals("output.weight")) return " (the embeddings are not tied, so the model needs its own output head)";
        return "";
    }

    private static void checkShape(ModelFile mf, RawTensor t, long[] want) {
        // a 1-D weight stored as [1, n] (some converters) is the same vector
        long[] got = t.shape();
        boolean same = Arrays.equals(got, want) || (want.length == 1 && got.length == 2 && got[0] == 1 && got[1] == want[0]);
        if (!same) {
            throw new ModelFormatException(mf.path() + ": tensor " + t.name() + " has shape " + Arrays.toString(got)
                    + " but the config implies " + Arrays.toString(want) + " (config and weights disagree)");
        }
    }
}
